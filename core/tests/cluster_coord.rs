//! Locks with fencing tokens and leases on three `journalkeeper server` processes, under a
//! leader kill -9 and a SIGSTOPped leader: a fenced resource (it refuses any token lower than
//! the highest it has seen) accepts no stale write — including the write of a holder that
//! stalled past its lease while a contender took the lock — every acquisition gets a token no
//! other acquisition had, IDs taken by concurrent callers through both faults are unique and
//! increasing per caller, a kept-alive lease survives the failovers, and a lease whose holder
//! stopped renewing expires within its TTL plus the election slack.

mod support {
    pub mod cluster;
}

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use journalkeeper::api::ErrorKind;
use support::cluster::*;

/// The resource a lock protects: it remembers the highest token it accepted.
#[derive(Default)]
struct Fenced {
    highest: u64,
    /// token → the contender whose writes carried it.
    writers: BTreeMap<u64, usize>,
    accepted: u64,
    rejected: u64,
}

impl Fenced {
    fn write(&mut self, token: u64, contender: usize) -> bool {
        if token < self.highest {
            self.rejected += 1;
            return false;
        }
        self.highest = token;
        let first = *self.writers.entry(token).or_insert(contender);
        assert_eq!(first, contender, "token {token} was used by two contenders");
        self.accepted += 1;
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_reject_every_stale_holder_across_a_leader_kill_and_a_paused_leader() {
    let (mut c, first_leader) = started(3).await;
    let resource = Arc::new(Mutex::new(Fenced::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut contenders = Vec::new();
    for me in 0..2 {
        let client = c.client().await.unwrap();
        let (resource, stop) = (resource.clone(), stop.clone());
        contenders.push(tokio::spawn(async move {
            let coord = client.coord();
            let mut rounds = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let lease = coord.grant(Duration::from_secs(2)).await.unwrap();
                let keeper = coord.keep_alive_forever(lease).await.unwrap();
                let token = match coord.lock("fenced", lease).await {
                    Ok(t) => t,
                    Err(e) if e.kind == ErrorKind::LeaseExpired => continue,
                    Err(e) => panic!("lock: {e}"),
                };
                for _ in 0..3 {
                    resource.lock().unwrap().write(token, me);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = coord.unlock("fenced", lease).await;
                let _ = keeper.revoke().await;
                rounds += 1;
            }
            rounds
        }));
    }

    // ID callers through both faults: every range unique, each caller's strictly increasing.
    let mut id_callers = Vec::new();
    for _ in 0..3 {
        let client = c.client().await.unwrap();
        let stop = stop.clone();
        id_callers.push(tokio::spawn(async move {
            let mut got: Vec<std::ops::Range<u64>> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(r) = client.coord().next_ids("ids", 10).await {
                    got.push(r);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            got
        }));
    }

    // A long-lived lease kept alive through both faults.
    let observer = c.client().await.unwrap();
    let kept = observer
        .coord()
        .grant(Duration::from_millis(1_000))
        .await
        .unwrap();
    let keeper = observer.coord().keep_alive_forever(kept).await.unwrap();

    tokio::time::sleep(Duration::from_millis(500)).await;
    c.kill(first_leader).unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != first_leader).collect();
    let (second_leader, _) = leader_among(&c, &others).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.start(first_leader).unwrap();
    c.pause(second_leader).unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    c.resume(second_leader).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A holder that stalls past its lease: it still holds its old token when it wakes.
    let staller = c.client().await.unwrap();
    let lease = staller
        .coord()
        .grant(Duration::from_millis(500))
        .await
        .unwrap();
    let stale_token = tokio::time::timeout(WAIT, staller.coord().lock("fenced", lease))
        .await
        .expect("the staller gets the lock")
        .unwrap();
    assert!(resource.lock().unwrap().write(stale_token, 2));
    // No keep-alive: the lease expires, a contender takes the lock and writes.
    let taken_over = Instant::now();
    loop {
        let highest = resource.lock().unwrap().highest;
        if highest > stale_token {
            break;
        }
        assert!(taken_over.elapsed() < WAIT, "nobody took the lock over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !resource.lock().unwrap().write(stale_token, 2),
        "the stale holder's write is refused"
    );
    let e = staller.coord().keep_alive(lease).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LeaseExpired);

    stop.store(true, Ordering::SeqCst);
    let mut total_rounds = 0;
    for t in contenders {
        let rounds = tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
        assert!(rounds > 0, "each contender held the lock");
        total_rounds += rounds;
    }
    let mut all_ids = Vec::new();
    for t in id_callers {
        let ranges = tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
        assert!(ranges.len() > 10, "{} ranges", ranges.len());
        for w in ranges.windows(2) {
            assert!(w[0].end <= w[1].start, "a caller's ranges go back: {w:?}");
        }
        all_ids.extend(ranges.into_iter().flatten());
    }
    let unique: std::collections::BTreeSet<u64> = all_ids.iter().copied().collect();
    assert_eq!(unique.len(), all_ids.len(), "an ID was handed out twice");
    {
        let r = resource.lock().unwrap();
        assert_eq!(r.rejected, 1, "only the stale write was refused");
        assert!(r.writers.len() as u64 > total_rounds / 2);
    }

    // The kept-alive lease survived the kill and the pause.
    let status = observer.coord().time_to_live(kept).await.unwrap();
    assert_eq!(status.lease, kept);
    assert!(matches!(
        keeper.state(),
        journalkeeper::client::KeepAliveState::Alive { .. }
    ));
    // Its holder "dies" (stops renewing): it expires within ttl + election timeouts + slack.
    let died = Instant::now();
    drop(keeper);
    loop {
        match observer.coord().time_to_live(kept).await {
            Err(e) if e.kind == ErrorKind::LeaseExpired => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lived = died.elapsed();
    assert!(
        lived < Duration::from_millis(1_000 + 2 * 600 + 1_000),
        "{lived:?}"
    );
}
