//! `StateChanged` events: a user state machine's changes (the log index of the last entry
//! that ran its commands) reach the subscriptions that ask for them — a client's, an embedded
//! server's and the CLI's — and never the ones that do not.

mod server_support;

use std::io::{Read, Write};
use std::time::Duration;

use journalkeeper::api::ResponseConfig;
use journalkeeper::client::{Client, ClientConfig, ClusterEvent, EventOptions, EventStream};
use journalkeeper::server::events::LocalEvents;
use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use server_support::*;

/// A counter: `add N` → the new value; any query → the value.
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    fn apply(&mut self, _: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let n = std::str::from_utf8(command)
            .ok()
            .and_then(|t| t.strip_prefix("add "))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| StateError::Rejected("expected `add N`".into()))?;
        self.0 += n;
        Ok(self.0.to_string().into_bytes())
    }

    fn query(&self, _: &[u8]) -> Result<Vec<u8>, StateError> {
        Ok(self.0.to_string().into_bytes())
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        out.write_all(&self.0.to_le_bytes())
            .map_err(|e| io_error("counter snapshot", &e))
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut b = [0u8; 8];
        input
            .read_exact(&mut b)
            .map_err(|e| io_error("counter restore", &e))?;
        self.0 = u64::from_le_bytes(b);
        Ok(())
    }
}

fn counters(_: usize) -> Vec<(String, Box<dyn StateMachine>)> {
    vec![
        ("a".to_string(), Box::new(Counter::default())),
        ("b".to_string(), Box::new(Counter::default())),
    ]
}

async fn client(c: &Cluster) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(c.addrs.iter().map(|a| a.to_string()), cfg)
        .await
        .expect("client connects")
}

/// An event stream of either kind.
trait Events {
    async fn next_event(&mut self) -> Option<ClusterEvent>;
}

impl Events for EventStream {
    async fn next_event(&mut self) -> Option<ClusterEvent> {
        self.next().await.ok()
    }
}

impl Events for LocalEvents {
    async fn next_event(&mut self) -> Option<ClusterEvent> {
        self.next().await
    }
}

/// The next event of `stream` matching `want`, within `WAIT`; the events on the way with it.
async fn until(
    stream: &mut impl Events,
    want: impl Fn(&ClusterEvent) -> bool,
) -> Vec<ClusterEvent> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let e = stream.next_event().await.expect("the stream ended");
            let done = want(&e);
            seen.push(e);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no matching event within {WAIT:?}; saw {seen:?}"
    );
    seen
}

fn state_changed(machine: &str, e: &ClusterEvent) -> Option<u64> {
    match e {
        ClusterEvent::StateChanged {
            machine: m,
            applied_index,
        } if m == machine => Some(*applied_index),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_reach_the_subscriptions_that_ask_and_only_those() {
    init_tracing();
    let c = Cluster::start_hosting(3, 0, |_| {}, counters).await;
    let cl = client(&c).await;
    let with = EventOptions {
        state_machines: true,
    };
    let mut remote = cl.events_with(with).await.unwrap();
    let mut plain = cl.events().await.unwrap();
    let l = c.leader().await;
    let mut local = c.servers[l].as_ref().unwrap().events_with(with);

    // The first events are the whole state: each machine, not yet changed.
    for machine in ["a", "b"] {
        let seen = until(&mut remote, |e| state_changed(machine, e).is_some()).await;
        assert_eq!(state_changed(machine, seen.last().unwrap()), Some(0));
    }

    // An update of `a`: its index is reported, by the client's and the server's streams.
    let a = cl.state_machine("a");
    a.update(b"add 5".to_vec()).await.unwrap();
    let applied = cl.sync().await.unwrap();
    let seen = until(&mut remote, |e| {
        state_changed("a", e).is_some_and(|i| i > 0)
    })
    .await;
    let index_a = state_changed("a", seen.last().unwrap()).unwrap();
    assert!(index_a > 0 && index_a <= applied, "{index_a} of {applied}");
    assert!(
        seen.iter()
            .all(|e| state_changed("b", e).is_none_or(|i| i == 0)),
        "b did not change: {seen:?}"
    );
    let seen = until(&mut local, |e| state_changed("a", e) == Some(index_a)).await;
    assert!(
        seen.iter()
            .all(|e| state_changed("b", e).is_none_or(|i| i == 0))
    );

    // Entries for other things (a journal append) change no machine; an update of `b` does.
    cl.journal()
        .append(0, vec![b"x".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    cl.state_machine("b")
        .update_batch(
            vec![b"add 1".to_vec(), b"add 2".to_vec()],
            ResponseConfig::Replication,
        )
        .await
        .unwrap();
    let seen = until(&mut remote, |e| {
        state_changed("b", e).is_some_and(|i| i > index_a)
    })
    .await;
    assert!(
        seen.iter()
            .all(|e| state_changed("a", e).is_none_or(|i| i == index_a)),
        "a did not change again: {seen:?}"
    );

    // A subscription without the option sees the journal change that followed the update of
    // `a`, and no state change before it (the pushes keep the node's order).
    let seen = until(&mut plain,
        |e| matches!(e, ClusterEvent::JournalChanged { partition: 0, max_index, .. } if *max_index > 0),
    )
    .await;
    assert!(
        seen.iter()
            .all(|e| !matches!(e, ClusterEvent::StateChanged { .. })),
        "{seen:?}"
    );
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_state_changes_when_asked() {
    init_tracing();
    let c = Cluster::start_hosting(3, 0, |_| {}, counters).await;
    let cl = client(&c).await;
    cl.state_machine("a")
        .update(b"add 1".to_vec())
        .await
        .unwrap();
    let applied = cl.sync().await.unwrap();
    let servers: Vec<String> = c.addrs.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
            .args(["admin", "--servers", &servers.join(","), "--cluster-id"])
            .arg(CLUSTER_ID.to_string())
            .args(["--json", "events", "--state-machines", "--count", "64"])
            .output()
            .expect("run journalkeeper")
    });
    // The first state has one event per kind and partition, then both machines; 64 events
    // need more changes than that, which these appends make.
    for _ in 0..64 {
        cl.journal()
            .append(1, vec![b"y".to_vec()], ResponseConfig::Replication)
            .await
            .unwrap();
    }
    let out = out.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each machine as JSON; `a` at the index of its update, `b` never changed (a subscription
    // may repeat the whole state, so an event can come twice).
    let index_of = |machine: &str| -> Vec<u64> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == "state_changed" && v["machine"] == machine)
            .map(|v| v["applied_index"].as_u64().unwrap())
            .collect()
    };
    let a = index_of("a");
    assert!(
        !a.is_empty() && a.iter().all(|&i| i == a[0] && i > 0 && i <= applied),
        "{text}"
    );
    let b = index_of("b");
    assert!(!b.is_empty() && b.iter().all(|&i| i == 0), "{text}");
    cl.close();
    c.shutdown().await;
}
