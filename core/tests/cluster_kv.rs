//! The coordination KV across a leader kill, on three `journalkeeper server` processes: a
//! counter incremented with compare-and-set by concurrent clients ends at exactly the number of
//! successful CAS calls, and a watch that is reopened from its last index sees every change
//! once, in order.

mod support {
    pub mod cluster;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use journalkeeper::state::watch::WatchFilter;
use support::cluster::*;

const CLIENTS: usize = 4;
const KEY: &str = "counter";

fn num(v: &Option<Vec<u8>>) -> u64 {
    v.as_ref()
        .map(|b| std::str::from_utf8(b).unwrap().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_counter_is_exact_and_a_resumed_watch_sees_every_change_once_across_a_leader_kill() {
    let (mut c, leader) = started(3).await;
    let all: Vec<usize> = (0..3).collect();
    let setup = c.client().await.unwrap();
    let watcher = c.client().await.unwrap();
    let mut watch = watcher
        .kv()
        .watch(WatchFilter::Key(KEY.into()), 0)
        .await
        .unwrap();
    setup.kv().set(KEY, b"0".to_vec()).await.unwrap();

    let successes = Arc::new(AtomicU64::new(0));
    let target = 120u64;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = c.client().await.unwrap();
        let successes = successes.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0u64;
            while successes.load(Ordering::SeqCst) < target {
                let current = client.kv().get(KEY).await.expect("strict get");
                let next = (num(&current) + 1).to_string().into_bytes();
                let r = client
                    .kv()
                    .compare_and_set(KEY, current, Some(next))
                    .await
                    .expect("every CAS gets a definite answer");
                if r.swapped {
                    mine += 1;
                    successes.fetch_add(1, Ordering::SeqCst);
                }
            }
            client.close();
            mine
        }));
    }

    // Read the first half of the events, then drop the watch and reopen it from its last index.
    let mut values = Vec::new();
    let mut indices = Vec::new();
    let mut recv = |e: journalkeeper::state::watch::KvEvent, values: &mut Vec<u64>| {
        indices.push(e.index);
        values.push(num(&e.new_value));
    };
    while values.len() < 30 {
        let e = tokio::time::timeout(WAIT, watch.next())
            .await
            .unwrap()
            .unwrap();
        recv(e, &mut values);
    }
    wait_count("CAS progress", &successes, 30).await;
    c.kill(leader).unwrap();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    leader_among(&c, &survivors).await;
    let resume_from = watch.next_index();
    drop(watch);
    let mut watch = watcher
        .kv()
        .watch(WatchFilter::Key(KEY.into()), resume_from)
        .await
        .unwrap();
    wait_count("CAS progress after the kill", &successes, 80).await;
    c.start(leader).unwrap();

    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let final_value = num(&setup.kv().get(KEY).await.unwrap());
    assert_eq!(final_value, total, "counter = successful CAS calls");
    assert!(total >= target);

    while values.last() != Some(&final_value) {
        let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch delivers every change")
            .unwrap();
        recv(e, &mut values);
    }
    let expected: Vec<u64> = (0..=final_value).collect();
    assert_eq!(values, expected, "every change once, in order");
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "indices increase");
    leader_among(&c, &all).await;
    setup.close();
    watcher.close();
}
