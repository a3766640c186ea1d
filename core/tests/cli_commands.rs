//! The CLI's client commands against a real 1-node `journalkeeper server`: level names are
//! parsed in any case (`-` or `_`), and roles print with their canonical names in text and
//! `--json`; logs to a pipe or a file carry no ANSI colour.

mod support {
    pub mod cluster;
}

use std::process::{Command, Output};

use journalkeeper::api::NodeRole;
use support::cluster::*;

fn jk(c: &LocalCluster, args: &[&str]) -> Output {
    let servers = c.addrs().join(",");
    // The connection arguments belong to the command (`admin`, `kv`, `append`, …), before
    // any subcommand of it.
    Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
        .args(&args[..1])
        .args([
            "--servers",
            &servers,
            "--cluster-id",
            &c.cluster_id().to_string(),
        ])
        .args(&args[1..])
        .output()
        .expect("run journalkeeper")
}

fn stdout_ok(c: &LocalCluster, args: &[&str]) -> String {
    let out = jk(c, args);
    assert!(
        out.status.success(),
        "journalkeeper {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_parse_in_any_case_and_roles_print_canonical_names() {
    let (c, _) = started(1).await;

    // Every spelling of every level is accepted; the index only comes back at REPLICATION/ALL.
    for ack in [
        "One-Way",
        "one_way",
        "RECEIVE",
        "Persistence",
        "replication",
        "aLL",
    ] {
        let out = stdout_ok(&c, &["append", "--partition", "0", "--ack", ack, "x"]);
        assert!(!out.is_empty(), "--ack {ack}: no output");
    }
    for consistency in ["strict", "Sequential", "NONE"] {
        let out = stdout_ok(
            &c,
            &[
                "get",
                "--partition",
                "0",
                "--consistency",
                consistency,
                "--json",
            ],
        );
        assert!(
            out.contains("\"index\""),
            "--consistency {consistency}: {out}"
        );
    }
    let bad = jk(
        &c,
        &["append", "--partition", "0", "--ack", "majority", "x"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("ONE_WAY, RECEIVE, PERSISTENCE, REPLICATION, ALL"),
        "the error lists the names: {err}"
    );

    // Roles: the canonical name, in the text line and in --json.
    let text = stdout_ok(&c, &["status"]);
    assert!(text.contains("\tLEADER\t"), "text status: {text}");
    let json = stdout_ok(&c, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(v["role"], NodeRole::Leader.name());
    // The monitoring detail (protocol 1.4): indices, partitions, disk, in text and JSON.
    assert!(text.contains("\tdurable "), "text status: {text}");
    assert!(text.contains("\tpartitions 0:[0,"), "text status: {text}");
    let d = &v["detail"];
    assert!(
        d["durable_index"].as_u64() >= v["commit_index"].as_u64(),
        "{v}"
    );
    assert_eq!(d["partitions"][0]["partition"], 0, "{v}");
    assert!(d["disk"]["total_bytes"].as_u64() > Some(0), "{v}");
    assert_eq!(
        d["followers"],
        serde_json::json!([]),
        "one node: no followers: {v}"
    );
    assert_eq!(v["configuration"]["joint"], false, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_or_file_carry_no_ansi_escapes() {
    let (c, _) = started(1).await;
    // The node's stderr is a file: its log has lines, and no ESC byte.
    let log = std::fs::read(c.log_path(0)).expect("node log");
    assert!(
        String::from_utf8_lossy(&log).contains("INFO"),
        "the node logged at info"
    );
    assert!(!log.contains(&0x1b), "ANSI escape in the node's log file");
    // A client command's stderr is a pipe: its warnings and errors are plain too.
    let out = Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
        .args(["status", "--servers", "127.0.0.1:1", "--json"])
        .env("RUST_LOG", "debug")
        .output()
        .expect("run journalkeeper");
    assert!(!out.stderr.is_empty(), "debug logging wrote something");
    assert!(
        !out.stderr.contains(&0x1b),
        "ANSI escape in stderr to a pipe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_change_and_show_the_cluster() {
    let (mut c, _) = started(3).await;
    let members = stdout_ok(&c, &["admin", "members"]);
    assert_eq!(
        members.lines().filter(|l| l.starts_with("voter\t")).count(),
        3
    );
    assert_eq!(members.matches("\tleader").count(), 1, "{members}");

    let i = c.add_joining_node().unwrap();
    let id = (i + 1).to_string();
    let out = stdout_ok(&c, &["admin", "add-voter", &id, &c.addr(i)]);
    assert!(out.contains(&format!("node {id} is a voter")), "{out}");
    let json = stdout_ok(&c, &["admin", "members", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["voters"].as_array().unwrap().len(), 4, "{v}");

    // convert-role: the new voter becomes an observer (it pulls from the voters) and back.
    let bad = jk(&c, &["admin", "convert-role", &id, "LEADER"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("expected VOTER or OBSERVER"), "{err}");
    let out = stdout_ok(&c, &["admin", "convert-role", &id, "OBSERVER"]);
    assert!(out.contains(&format!("node {id} is observer")), "{out}");
    let json = stdout_ok(&c, &["admin", "members", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["voters"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["observers"][0]["node_id"], i as u64 + 1, "{v}");
    let out = stdout_ok(&c, &["admin", "convert-role", &id, "voter"]);
    assert!(out.contains(&format!("node {id} is voter")), "{out}");
    let json = stdout_ok(&c, &["admin", "members", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["voters"].as_array().unwrap().len(), 4, "{v}");

    stdout_ok(&c, &["admin", "transfer-leader", &id]);
    let events = stdout_ok(&c, &["admin", "events", "--count", "2"]);
    let first = events.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("leader\t{id}\t")), "{events}");
    assert!(
        events.lines().nth(1).unwrap().starts_with("voters\t"),
        "{events}"
    );
    stdout_ok(&c, &["admin", "preferred-leader", "2"]);
    stdout_ok(&c, &["admin", "preferred-leader", "none"]);

    let bad = jk(&c, &["admin", "transfer-leader", "9"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("not a voter"), "{err}");
    let bad = jk(&c, &["admin", "preferred-leader", "x"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a node id nor `none`"));

    let out = stdout_ok(&c, &["admin", "snapshot"]);
    let index: u64 = out
        .strip_prefix("snapshot at index ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let listed = stdout_ok(&c, &["admin", "snapshots"]);
    assert!(listed.contains(&format!("index {index}\t")), "{listed}");
    let out = stdout_ok(&c, &["admin", "recover-snapshot", &index.to_string()]);
    assert!(
        out.contains(&format!("rolled back to snapshot {index}")),
        "{out}"
    );

    stdout_ok(&c, &["admin", "remove-voter", &id]);
    let members = stdout_ok(&c, &["admin", "members"]);
    assert_eq!(
        members.lines().filter(|l| l.starts_with("voter\t")).count(),
        3,
        "{members}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_reads_at_an_index_see_the_state_of_then() {
    let (c, _) = started(1).await;
    stdout_ok(&c, &["kv", "set", "color", "red"]);
    stdout_ok(&c, &["kv", "set", "size", "L"]);
    let index = stdout_ok(&c, &["kv", "applied-index"]);
    let index = index.trim();
    assert!(index.parse::<u64>().is_ok(), "{index:?}");
    stdout_ok(&c, &["kv", "set", "color", "blue"]);
    stdout_ok(&c, &["kv", "remove", "size"]);
    let then = stdout_ok(&c, &["kv", "get", "color", "--at-index", index]);
    assert_eq!(then.trim(), "red");
    assert_eq!(stdout_ok(&c, &["kv", "get", "color"]).trim(), "blue");
    let listed = stdout_ok(&c, &["kv", "list", "--at-index", index]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("size"), "{listed}");
    let json = stdout_ok(&c, &["kv", "--json", "get", "size", "--at-index", index]);
    assert!(json.contains("\"value\":\"L\""), "{json}");
    let ahead = jk(&c, &["kv", "get", "color", "--at-index", "999999"]);
    assert!(!ahead.status.success());
    assert!(String::from_utf8_lossy(&ahead.stderr).contains("INDEX_OVERFLOW"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coord_commands_grant_lock_count_and_list() {
    let (c, _) = started(1).await;
    let lease = stdout_ok(&c, &["coord", "grant", "--ttl-ms", "30000"]);
    let lease = lease.trim();
    assert!(lease.parse::<u64>().is_ok(), "{lease:?}");
    stdout_ok(&c, &["coord", "put", "svc/a", "up", "--lease", lease]);
    let ttl = stdout_ok(&c, &["coord", "ttl", lease]);
    assert!(ttl.contains("keys: svc/a"), "{ttl}");
    // `lock` runs the command with the fencing token in its environment, then releases.
    let out = stdout_ok(
        &c,
        &[
            "coord",
            "lock",
            "job",
            "--",
            "sh",
            "-c",
            "echo token=$JK_FENCING_TOKEN",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1], format!("token={}", lines[0]));
    let ids = stdout_ok(&c, &["coord", "next-id", "orders", "--count", "3"]);
    assert_eq!(ids.trim(), "1..4");
    assert_eq!(stdout_ok(&c, &["coord", "next-id", "orders"]).trim(), "4");
    assert_eq!(
        stdout_ok(&c, &["coord", "leader", "svc"]).trim(),
        "(no leader)"
    );
    let json = stdout_ok(&c, &["coord", "--json", "revoke", lease]);
    assert!(json.contains("\"existed\":true"), "{json}");
    let gone = jk(&c, &["coord", "keep-alive", lease]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("LEASE_EXPIRED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_commands_create_append_list_commit_and_abort() {
    let (c, _) = started(1).await;
    let tx = stdout_ok(&c, &["tx", "create", "--context", "order=7"]);
    let tx = tx.trim();
    assert!(tx.parse::<u64>().is_ok(), "{tx:?}");
    let held = stdout_ok(&c, &["tx", "append", tx, "0", "first", "second"]);
    assert!(held.contains("holds 2 entries"), "{held}");
    let list = stdout_ok(&c, &["tx", "--json", "list"]);
    assert!(list.contains("\"phase\":\"OPEN\""), "{list}");
    assert!(list.contains("\"order\":\"7\""), "{list}");
    // Nothing is visible before the commit, everything after it.
    let before = jk(&c, &["get", "--partition", "0"]);
    assert!(
        !before.status.success(),
        "read before the commit: {before:?}"
    );
    assert_eq!(stdout_ok(&c, &["tx", "commit", tx]).trim(), "committed");
    let after = stdout_ok(&c, &["get", "--partition", "0"]);
    assert!(
        after.contains("first") && after.contains("second"),
        "{after}"
    );
    let other = stdout_ok(&c, &["tx", "create"]);
    stdout_ok(&c, &["tx", "append", other.trim(), "0", "never"]);
    assert_eq!(
        stdout_ok(&c, &["tx", "abort", other.trim()]).trim(),
        "aborted"
    );
    assert!(stdout_ok(&c, &["tx", "list"]).trim().is_empty());
    let late = jk(&c, &["tx", "commit", tx]);
    assert!(!late.status.success());
    assert!(String::from_utf8_lossy(&late.stderr).contains("not open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_command_executes_in_one_transaction_and_queries() {
    let (c, _) = started(1).await;
    let out = stdout_ok(
        &c,
        &[
            "sql",
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)",
            "INSERT INTO kv VALUES ('a', 1), ('b', 2)",
        ],
    );
    assert_eq!(out.trim(), "rows affected: 2, last insert id: 2");
    let out = stdout_ok(
        &c,
        &[
            "sql",
            "--param",
            "b",
            "--param",
            "40",
            "UPDATE kv SET v = ?2 WHERE k = ?1",
        ],
    );
    assert!(out.contains("rows affected: 1"), "{out}");
    let refused = jk(&c, &["sql", "INSERT INTO kv VALUES ('c', abs(random()))"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("random()"), "{err}");
    let out = stdout_ok(
        &c,
        &[
            "sql",
            "--query",
            "--consistency",
            "sequential",
            "SELECT k, v FROM kv ORDER BY k",
        ],
    );
    assert_eq!(out, "k\tv\na\t1\nb\t40\n");
    let out = stdout_ok(
        &c,
        &["sql", "--json", "--query", "SELECT count(*) AS n FROM kv"],
    );
    assert_eq!(out.trim(), r#"{"n":2}"#);
}
