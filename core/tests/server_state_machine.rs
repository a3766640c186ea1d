//! User state machines hosted by an embedded 3-node cluster and driven by the real client:
//! results and refusals, batches, a leader stopped under concurrent transfers (every node ends
//! equal, the total conserved), a lagging node restored from a snapshot, the fail-stop of a
//! node whose machine panics, and the refusal of nodes that host other names.

mod server_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{ReadAt, ReplyBody, RequestBody};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::server::Server;
use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use server_support::*;

/// Accounts with text commands: `deposit A N`, `transfer A B N` (refused when A has less
/// than N); queries `balance A`, `balances` (`A=N` lines, sorted). `boom` panics on the node
/// built with `fragile` (a bug on one node) and is a no-op elsewhere.
#[derive(Default)]
struct Bank {
    accounts: BTreeMap<String, i64>,
    fragile: bool,
    last_ts: u64,
}

fn rejected(msg: String) -> StateError {
    StateError::Rejected(msg)
}

impl StateMachine for Bank {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        assert!(ctx.timestamp_ms >= self.last_ts, "leader time went back");
        assert!(ctx.timestamp_ms > 1_600_000_000_000, "no leader time");
        self.last_ts = ctx.timestamp_ms;
        let text = std::str::from_utf8(command).map_err(|e| rejected(e.to_string()))?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let amount = |s: &str| s.parse::<i64>().map_err(|e| rejected(format!("{s}: {e}")));
        match words.as_slice() {
            ["deposit", a, n] => {
                let n = amount(n)?;
                let b = self.accounts.entry(a.to_string()).or_default();
                *b += n;
                Ok(b.to_string().into_bytes())
            }
            ["transfer", from, to, n] => {
                let n = amount(n)?;
                let have = self.accounts.get(*from).copied().unwrap_or(0);
                if have < n {
                    return Err(rejected(format!("{from} has {have}, short of {n}")));
                }
                *self.accounts.entry(from.to_string()).or_default() -= n;
                *self.accounts.entry(to.to_string()).or_default() += n;
                Ok((have - n).to_string().into_bytes())
            }
            ["boom"] if self.fragile => panic!("the fragile bank exploded"),
            ["boom"] => Ok(Vec::new()),
            _ => Err(rejected(format!("unknown command {text:?}"))),
        }
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        match std::str::from_utf8(query).unwrap_or("") {
            "balances" => Ok(self
                .accounts
                .iter()
                .map(|(a, b)| format!("{a}={b}\n"))
                .collect::<String>()
                .into_bytes()),
            q => match q.strip_prefix("balance ") {
                Some(a) => Ok(self
                    .accounts
                    .get(a)
                    .copied()
                    .unwrap_or(0)
                    .to_string()
                    .into_bytes()),
                None => Err(StateError::InvalidArgument(format!("unknown query {q:?}"))),
            },
        }
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        for (a, b) in &self.accounts {
            writeln!(out, "{a} {b}").map_err(|e| io_error("bank snapshot", &e))?;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut text = String::new();
        input
            .read_to_string(&mut text)
            .map_err(|e| io_error("bank snapshot", &e))?;
        self.accounts.clear();
        for line in text.lines() {
            let (a, b) = line
                .split_once(' ')
                .ok_or_else(|| rejected(format!("bad snapshot line {line:?}")))?;
            let b = b
                .parse()
                .map_err(|_| rejected(format!("bad balance {b:?}")))?;
            self.accounts.insert(a.to_string(), b);
        }
        Ok(())
    }
}

fn bank(_: usize) -> Vec<(String, Box<dyn StateMachine>)> {
    vec![("bank".to_string(), Box::new(Bank::default()))]
}

async fn client(c: &Cluster) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    cfg.attempt_timeout = Duration::from_secs(2);
    Client::connect(c.addrs.iter().map(|a| a.to_string()), cfg)
        .await
        .expect("client connects")
}

/// Node `i`'s balances once it applied at least `min_applied`.
async fn balances_on(c: &Cluster, i: usize, min_applied: u64) -> String {
    let mut t = c.client(i).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (r, applied) = t
            .call(RequestBody::SmQuery {
                machine: "bank".into(),
                query: b"balances".to_vec(),
                read: ReadAt {
                    consistency: QueryConsistency::Sequential,
                    min_applied,
                },
            })
            .await;
        match r {
            Ok(ReplyBody::SmAnswer(b)) => return String::from_utf8(b).unwrap(),
            Err(e) if e.kind == ErrorKind::IndexOverflow => {}
            other => panic!("{other:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {} stays at {applied} < {min_applied}",
            i + 1
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn total(balances: &str) -> i64 {
    balances
        .lines()
        .map(|l| l.split_once('=').unwrap().1.parse::<i64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_return_results_refusals_and_batches_and_every_read_level_answers() {
    init_tracing();
    let c = Cluster::start_hosting(3, 0, |_| {}, bank).await;
    let cl = client(&c).await;
    let sm = cl.state_machine("bank");
    assert_eq!(
        sm.update(b"deposit alice 100".to_vec()).await.unwrap(),
        b"100"
    );
    assert_eq!(
        sm.update(b"transfer alice bob 30".to_vec()).await.unwrap(),
        b"70"
    );
    let e = sm
        .update(b"transfer bob carol 31".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Rejected, "{e}");
    assert!(e.message.contains("bob has 30, short of 31"), "{e}");

    let results = sm
        .update_batch(
            vec![
                b"deposit carol 5".to_vec(),
                b"transfer carol dave 6".to_vec(),
                b"transfer carol dave 5".to_vec(),
            ],
            ResponseConfig::All,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(results[0].as_deref().unwrap(), b"5");
    assert_eq!(results[1].as_ref().unwrap_err().kind, ErrorKind::Rejected);
    assert_eq!(results[2].as_deref().unwrap(), b"0");

    for level in [ResponseConfig::Receive, ResponseConfig::Persistence] {
        let r = sm.update_with(b"deposit erin 1".to_vec(), level).await;
        assert_eq!(r.unwrap(), None, "{level:?}");
    }
    let erin = eventually("both deposits applied", WAIT, || async {
        let v = sm
            .query(b"balance erin".to_vec(), QueryConsistency::Strict)
            .await
            .unwrap();
        (v == b"2").then_some(v)
    })
    .await;
    assert_eq!(erin, b"2");
    for level in QueryConsistency::ALL {
        let b = sm.query(b"balance alice".to_vec(), level).await.unwrap();
        // NONE may lag, but never shows a balance alice never had.
        assert!(
            b == b"70" || level == QueryConsistency::None,
            "{level:?}: {b:?}"
        );
    }
    let e = sm
        .query(b"nonsense".to_vec(), QueryConsistency::Strict)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = cl
        .state_machine("ledger")
        .update(b"x".to_vec())
        .await
        .unwrap_err();
    assert!(
        e.kind == ErrorKind::InvalidArgument && e.message.contains("no state machine named"),
        "{e}"
    );
    let e = cl
        .state_machine("bad name")
        .query(Vec::new(), QueryConsistency::None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = sm
        .update_batch(Vec::new(), ResponseConfig::Replication)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_under_transfers_leaves_equal_banks_and_a_conserved_total() {
    init_tracing();
    // Snapshots every 40 entries: restarts restore the bank from a snapshot plus the log.
    let mut c = Cluster::start_hosting(3, 40, |_| {}, bank).await;
    let cl = client(&c).await;
    let accounts = ["a", "b", "c", "d"];
    for a in accounts {
        cl.state_machine("bank")
            .update(format!("deposit {a} 1000").into_bytes())
            .await
            .unwrap();
    }
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let cl = cl.clone();
            tokio::spawn(async move {
                let sm = cl.state_machine("bank");
                let mut refused = 0;
                for k in 0..60usize {
                    let from = accounts[(w + k) % 4];
                    let to = accounts[(w + k + 1) % 4];
                    let amount = 1 + (k * 37 + w * 11) % 300;
                    match sm
                        .update(format!("transfer {from} {to} {amount}").into_bytes())
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.kind == ErrorKind::Rejected => refused += 1,
                        Err(e) => panic!("transfer failed: {e}"),
                    }
                }
                refused
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old = c.leader().await;
    c.stop_node(old).await;
    for w in workers {
        w.await.unwrap();
    }
    c.start_node(old).await;
    let applied = cl.sync().await.unwrap();
    let views: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(balances_on(&c, i, applied).await);
        }
        v
    };
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    assert_eq!(total(&views[0]), 4000, "{}", views[0]);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_is_restored_from_a_snapshot_and_equals_the_others() {
    init_tracing();
    let mut c = Cluster::start_hosting(3, 30, |cfg| cfg.max_segment_bytes = 5 << 20, bank).await;
    let l = c.leader().await;
    let lag = (l + 1) % 3;
    c.stop_node(lag).await;
    let cl = client(&c).await;
    let sm = cl.state_machine("bank");
    // Fill segments so compaction drops the entries the lagging node misses.
    let filler = vec![7u8; 1_000_000];
    for _ in 0..6 {
        cl.journal()
            .append(1, vec![filler.clone()], ResponseConfig::Replication)
            .await
            .unwrap();
    }
    for k in 0..150 {
        sm.update(format!("deposit acct{} {k}", k % 7).into_bytes())
            .await
            .unwrap();
    }
    cl.admin().take_snapshot().await.unwrap();
    c.start_node(lag).await;
    let applied = cl.sync().await.unwrap();
    let others = balances_on(&c, l, applied).await;
    let restored = balances_on(&c, lag, applied).await;
    assert_eq!(restored, others);
    assert_eq!(total(&others), (0..150).sum::<i64>());
    // And after a restart every node restores its own snapshot plus the log.
    for i in 0..3 {
        c.stop_node(i).await;
    }
    for i in 0..3 {
        c.start_node(i).await;
    }
    let applied = cl.sync().await.unwrap();
    for i in 0..3 {
        assert_eq!(balances_on(&c, i, applied).await, others, "node {}", i + 1);
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_apply_stops_that_node_and_the_cluster_keeps_serving() {
    init_tracing();
    fn fragile_third(i: usize) -> Vec<(String, Box<dyn StateMachine>)> {
        let bank = Bank {
            fragile: i == 2,
            ..Bank::default()
        };
        vec![("bank".to_string(), Box::new(bank))]
    }
    let c = Cluster::start_hosting(3, 0, |_| {}, fragile_third).await;
    let cl = client(&c).await;
    let sm = cl.state_machine("bank");
    sm.update(b"deposit a 1".to_vec()).await.unwrap();
    // Whichever node leads, the update is applied once and answered (a failed leader's
    // client retries at the next leader, whose session table has the result).
    sm.update(b"boom".to_vec()).await.unwrap();
    let third = c.servers[2].as_ref().unwrap();
    third
        .wait_for(WAIT, |s| s.failed)
        .await
        .expect("the fragile node stops");
    let status = third.status();
    assert!(status.failed);
    let stuck = status.applied_index;
    let mut t = c.client(2).await;
    let (r, _) = t.call(RequestBody::Status).await;
    assert!(r.is_ok(), "a failed node still reports its status: {r:?}");
    let (r, _) = t
        .call(RequestBody::SmQuery {
            machine: "bank".into(),
            query: b"balance a".to_vec(),
            read: ReadAt::default(),
        })
        .await;
    let e = r.unwrap_err();
    assert!(
        e.kind == ErrorKind::Unavailable && e.message.contains("panicked"),
        "{e}"
    );

    for k in 0..5 {
        sm.update(format!("deposit a {k}").into_bytes())
            .await
            .unwrap();
    }
    assert_eq!(
        sm.query(b"balance a".to_vec(), QueryConsistency::Strict)
            .await
            .unwrap(),
        b"11"
    );
    assert_eq!(c.servers[2].as_ref().unwrap().status().applied_index, stuck);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_host_other_names_are_refused() {
    init_tracing();
    fn third_differs(i: usize) -> Vec<(String, Box<dyn StateMachine>)> {
        let name = if i == 2 { "ledger" } else { "bank" };
        vec![(name.to_string(), Box::new(Bank::default()))]
    }
    let mut c = Cluster::start_hosting(3, 0, |_| {}, third_differs).await;
    let cl = client(&c).await;
    for k in 0..5 {
        cl.state_machine("bank")
            .update(format!("deposit a {k}").into_bytes())
            .await
            .unwrap();
    }
    let applied = cl.sync().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = c.servers[2].as_ref().unwrap().status();
    assert!(
        third.applied_index < applied && !third.failed && !third.is_leader(),
        "the odd node got nothing: {third:?}"
    );

    // A node whose snapshot holds other names refuses to start.
    cl.admin().take_snapshot().await.unwrap();
    let first = 0;
    c.stop_node(first).await;
    c.machines = |_| {
        vec![(
            "ledger".to_string(),
            Box::new(Bank::default()) as Box<dyn StateMachine>,
        )]
    };
    let e = c.try_start_node(first).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(
        e.message.contains("must host the same state machines"),
        "{e}"
    );
    c.machines = bank;
    let e = Server::builder(c.config(first))
        .state_machine("jk.mine", Bank::default())
        .start()
        .await
        .unwrap_err();
    assert!(e.message.contains("reserved"), "{e}");
    let e = Server::builder(c.config(first))
        .state_machine("bank", Bank::default())
        .state_machine("bank", Bank::default())
        .start()
        .await
        .unwrap_err();
    assert!(e.message.contains("hosted twice"), "{e}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_updates_and_queries_a_hosted_machine() {
    init_tracing();
    let c = Cluster::start_hosting(3, 0, |_| {}, bank).await;
    let servers: Vec<String> = c.addrs.iter().map(|a| a.to_string()).collect();
    let jk = |args: &[&str]| {
        let servers = servers.join(",");
        let cluster_id = CLUSTER_ID.to_string();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
                    .args(["sm", "--servers", &servers, "--cluster-id", &cluster_id])
                    .args(&args)
                    .output()
                    .expect("run journalkeeper")
            })
            .await
            .unwrap()
        }
    };
    let out = jk(&["update", "bank", "deposit a 10", "transfer a b 3"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10\n7\n");

    let out = jk(&["update", "bank", "transfer b a 4"]).await;
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error REJECTED: b has 3, short of 4"),
        "{text}"
    );

    let out = jk(&[
        "--json",
        "query",
        "bank",
        "balances",
        "--consistency",
        "sequential",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], "a=7\nb=3\n");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_sql_machine_executes_batches_and_answers_at_every_level() {
    use journalkeeper::state::sql::{SqlStatement, SqlValue};
    init_tracing();
    let mut c = Cluster::start_hosting(3, 0, |_| {}, bank).await;
    let cl = client(&c).await;
    let sql = cl.sql();
    sql.execute(vec![
        SqlStatement::new(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, qty INTEGER, at INTEGER)",
            vec![],
        ),
        SqlStatement::new(
            "INSERT INTO orders (item, qty, at) VALUES (?1, ?2, :jk_timestamp_ms)",
            vec![SqlValue::Text("apple".into()), SqlValue::Integer(3)],
        ),
    ])
    .await
    .unwrap();
    let r = sql
        .execute(vec![
            SqlStatement::new("INSERT INTO orders (item, qty) VALUES ('pear', 1)", vec![]),
            SqlStatement::new("UPDATE orders SET qty = qty * 10", vec![]),
        ])
        .await
        .unwrap();
    assert_eq!((r.rows_affected, r.last_insert_id), (3, 2));
    // A failing batch changes nothing.
    let e = sql
        .execute(vec![
            SqlStatement::new("INSERT INTO orders (item) VALUES ('plum')", vec![]),
            SqlStatement::new("INSERT INTO orders (item) VALUES (NULL)", vec![]),
        ])
        .await
        .unwrap_err();
    assert!(
        e.kind == ErrorKind::Rejected && e.message.contains("statement 2"),
        "{e}"
    );
    let e = sql
        .execute_one("INSERT INTO orders (item) VALUES (random())", vec![])
        .await
        .unwrap_err();
    assert!(
        e.kind == ErrorKind::Rejected && e.message.contains("random()"),
        "{e}"
    );

    let applied = cl.sync().await.unwrap();
    for level in QueryConsistency::ALL {
        let q = sql
            .query("SELECT item, qty FROM orders ORDER BY id", vec![], level)
            .await
            .unwrap();
        if level != QueryConsistency::None {
            assert_eq!(q.columns, ["item", "qty"]);
            assert_eq!(
                q.rows,
                vec![
                    vec![SqlValue::Text("apple".into()), SqlValue::Integer(30)],
                    vec![SqlValue::Text("pear".into()), SqlValue::Integer(10)],
                ],
                "{level:?}"
            );
        }
    }
    let at = sql
        .query(
            "SELECT at FROM orders WHERE id = 1",
            vec![],
            QueryConsistency::Strict,
        )
        .await
        .unwrap();
    assert!(
        matches!(at.rows[0][0], SqlValue::Integer(t) if t > 1_600_000_000_000),
        "the leader's time: {at:?}"
    );
    // Every node restores the database from its snapshot after a restart.
    cl.admin().take_snapshot().await.unwrap();
    let _ = applied;
    for i in 0..3 {
        c.stop_node(i).await;
        c.start_node(i).await;
    }
    let q = sql
        .query(
            "SELECT count(*), sum(qty) FROM orders",
            vec![],
            QueryConsistency::Strict,
        )
        .await
        .unwrap();
    assert_eq!(
        q.rows,
        vec![vec![SqlValue::Integer(2), SqlValue::Integer(40)]]
    );
    c.shutdown().await;
}
