//! `journalkeeper bench snapshot-transfer` at a tiny size (8 MiB of blob, 4 MiB of KV): the
//! blob-host children, the compaction, the fresh node's catch-up by snapshot (the bench checks
//! its log shows the install and its state equals the leader's) and the JSON lines; and a limit
//! the run crosses makes it exit non-zero after printing its line.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journalkeeper"))
        .args(["bench", "snapshot-transfer", "--gib", "0.0078125"])
        .args(args)
        .output()
        .expect("run journalkeeper")
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn a_small_state_is_transferred_by_snapshot_and_reported() {
    let out = bench(&["--kv-mib", "4"]);
    assert!(
        out.status.success(),
        "the bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    assert_eq!(
        lines.len(),
        2,
        "{lines:?}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (blob, kv) = (&lines[0], &lines[1]);
    assert_eq!(blob["machine"], "blob");
    assert_eq!(blob["state_bytes"], 8 << 20);
    assert_eq!(blob["within_rss_limit"], true);
    for key in [
        "transfer_mb_s",
        "disk_write_mb_s",
        "ratio_to_disk",
        "sender_peak_rss_mib",
        "receiver_peak_rss_mib",
    ] {
        assert!(blob[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {blob}");
    }
    assert_eq!(kv["machine"], "kv");
    assert_eq!(kv["state_bytes"], 4 << 20);
    assert!(kv["receiver_overhead_mib"].as_f64().is_some(), "{kv}");
    assert!(kv["sender_growth_mib"].as_f64().is_some(), "{kv}");
    assert_eq!(kv["within_rss_limit"], true, "{kv}");
}

#[test]
fn crossing_the_rss_limit_fails_the_run_after_its_report() {
    let out = bench(&["--kv-mib", "0", "--max-rss-mib", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let lines = lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}; stderr: {stderr}");
    assert_eq!(lines[0]["within_rss_limit"], false);
    assert!(stderr.contains("memory crossed 1 MiB"), "{stderr}");
}
