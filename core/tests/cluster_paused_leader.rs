//! STRICT reads at a leader that was paused while the others moved on (three `journalkeeper
//! server` processes): set `A` through the leader; SIGSTOP it; once a new leader is elected, set
//! `B` there; send 8 STRICT gets over 8 connections to the paused node, so they sit in its socket
//! queues; SIGCONT it. Whatever it does first on resuming, none of the gets may return `A` (`B` was
//! acknowledged before they were sent). Every round's history is checked with the project's
//! linearizability checker. `JK_PAUSED_LEADER_ROUNDS` rounds (default 5; `make soak`: 100).
//!
//! The defect this guards against: the node judged its leader lease by the time of its last
//! tick, so a pass that handled the queued reads before the next tick served them from a lease
//! that had expired seconds earlier (found by an independent fault test, 1 probe in 43).

mod support {
    pub mod cluster;
    pub mod linearizability;
}

use std::time::{Duration, Instant};

use journalkeeper::api::QueryConsistency;
use journalkeeper::cli::local_client_config;
use journalkeeper::client::Client;
use support::cluster::*;
use support::linearizability::{CheckResult, KvInput, KvOutput, Operation, check_kv_history};

const READERS: usize = 8;
const A: u64 = 1;
const B: u64 = 2;

fn rounds() -> u64 {
    std::env::var("JK_PAUSED_LEADER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn value(v: &[u8]) -> u64 {
    match v {
        b"A" => A,
        b"B" => B,
        other => panic!("unexpected value {other:?}"),
    }
}

/// Established TCP connections on `port` (the local side) whose receive queue holds bytes the
/// process has not read: requests waiting in a stopped node's sockets.
fn queued_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let rx = f
                .get(4)
                .and_then(|q| q.split(':').nth(1))
                .and_then(|r| u64::from_str_radix(r, 16).ok());
            local_port == Some(port) && f.get(3) == Some(&"01") && rx.unwrap_or(0) > 0
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_reads_queued_at_a_paused_leader_never_return_a_value_overwritten_meanwhile() {
    let (mut c, mut leader) = started(3).await;
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_micros() as u64;
    let (mut stale, mut answered, mut refused) = (0, 0, 0);
    for round in 0..rounds() {
        let key = format!("probe/{round}");
        let k = round;
        let mut history: Vec<Operation<KvInput, KvOutput>> = Vec::new();

        // 1. A, through the leader.
        let writer = c.client_of(leader).await.expect("client of the leader");
        let call = now();
        writer.kv().set(&key, b"A".to_vec()).await.expect("set A");
        history.push(Operation::completed(
            0,
            KvInput::Put { key: k, value: A },
            KvOutput::Put,
            call,
            now(),
        ));
        writer.close();

        // 2. Eight readers, each with its own connection to the leader, connected beforehand;
        //    their attempts outlast the pause.
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let mut cfg = local_client_config(c.cluster_id());
            cfg.attempt_timeout = Duration::from_secs(15);
            let r = Client::connect([c.addr(leader)], cfg)
                .await
                .expect("reader");
            r.admin()
                .status(&c.addr(leader))
                .await
                .expect("reader connected");
            readers.push(r);
        }

        // 3. Pause the leader; the others elect a new one, which takes B.
        c.pause(leader).expect("SIGSTOP");
        let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        let (new_leader, _) = leader_among(&c, &others).await;
        let addrs: Vec<String> = others.iter().map(|&i| c.addr(i)).collect();
        let writer = Client::connect(addrs, local_client_config(c.cluster_id()))
            .await
            .expect("client of the others");
        let call = now();
        writer.kv().set(&key, b"B".to_vec()).await.expect("set B");
        history.push(Operation::completed(
            0,
            KvInput::Put { key: k, value: B },
            KvOutput::Put,
            call,
            now(),
        ));
        writer.close();

        // 4. Eight STRICT gets to the paused node, strictly after B was acknowledged; wait until
        //    they sit in its socket queues (the peers' connections there already hold traffic).
        let port = c.addr(leader).rsplit(':').next().unwrap().parse().unwrap();
        let before = queued_connections(port);
        let mut gets = Vec::new();
        for (i, r) in readers.into_iter().enumerate() {
            let key = key.clone();
            let call = now();
            gets.push(tokio::spawn(async move {
                let got = r
                    .kv()
                    .with_consistency(QueryConsistency::Strict)
                    .get(&key)
                    .await;
                let ret = now();
                r.close();
                (i as u64 + 1, call, got, ret)
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while queued_connections(port) < before + READERS && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let queued = queued_connections(port).saturating_sub(before);

        // 5. Resume it and collect the answers.
        c.resume(leader).expect("SIGCONT");
        for g in gets {
            let (client, call, got, ret) = g.await.expect("reader task");
            match got {
                Ok(v) => {
                    let v = v.as_deref().map(value);
                    answered += 1;
                    stale += (v == Some(A)) as u32;
                    history.push(Operation::completed(
                        client,
                        KvInput::Get { key: k },
                        KvOutput::Get(v),
                        call,
                        ret,
                    ));
                }
                // A refused read had no effect: it is no operation of the history.
                Err(_) => refused += 1,
            }
        }
        match check_kv_history(&history, 1_000_000) {
            CheckResult::Illegal(e) => panic!(
                "round {round}: not linearizable ({queued} of {READERS} gets were queued at the \
                 paused node {}): {e}\n{}",
                leader + 1,
                logs(&c)
            ),
            r => assert!(r.is_ok(), "round {round}: inconclusive check"),
        }
        println!(
            "round {round}: old leader node {}, new leader node {}, {queued} gets queued while paused",
            leader + 1,
            new_leader + 1
        );
        leader = new_leader;
    }
    println!(
        "{} rounds: {answered} gets answered ({stale} stale), {refused} refused",
        rounds()
    );
    assert_eq!(stale, 0);
    assert!(answered > 0, "no get was answered at all");
}
