//! `journalkeeper append --ack one-way` against three `journalkeeper server` processes: the
//! command exits right after sending, and every entry is stored — also when its first server
//! is a follower.

mod support {
    pub mod cluster;
}

use std::process::Command;

use journalkeeper::api::QueryConsistency;
use support::cluster::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_one_way_appends_are_all_stored() {
    let (c, leader) = started(3).await;
    let follower = (leader + 1) % 3;
    let mut servers = vec![c.addr(follower)];
    servers.extend((0..3).filter(|&i| i != follower).map(|i| c.addr(i)));
    let servers = servers.join(",");
    let mut want = Vec::new();
    for k in 0..5 {
        let values = [format!("v{k}a"), format!("v{k}b")];
        let out = Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
            .args(["append", "--servers", &servers, "--cluster-id"])
            .arg(c.cluster_id().to_string())
            .args(["--partition", "1", "--ack", "one-way"])
            .args(&values)
            .output()
            .expect("run journalkeeper append");
        assert!(
            out.status.success(),
            "append {k}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            logs(&c)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sent 2 entries to partition 1"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        want.extend(values);
    }
    let client = c.client().await.unwrap();
    let got: Vec<String> = read_partition(&client, 1, QueryConsistency::Strict)
        .await
        .into_iter()
        .map(|e| String::from_utf8(e.payload).unwrap())
        .collect();
    assert_eq!(got, want, "every one-way entry, in order, once");
    client.close();
}
