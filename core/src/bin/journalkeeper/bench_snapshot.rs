//! `journalkeeper bench snapshot-transfer`: a state of `--gib` GiB (the blob machine, hosted by
//! `bench blob-host` child processes; scaled down when the disk cannot hold the copies) is
//! transferred by snapshot to a fresh node, with the peak RSS of the sender (the leader) and of
//! the receiver next to `--max-rss-mib`, and the transfer rate next to the disk's sequential
//! write rate measured in the same run; then the built-in KV with `--kv-mib` MiB of values,
//! which lives in memory: there the limit applies to the sender's growth from its peak once the
//! state was built and to the receiver's peak above the data. One JSON line per case; exits
//! non-zero when a case crosses the limit. The logic is `journalkeeper::cli::snapshot_bench`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use journalkeeper::cli::LocalCluster;
use journalkeeper::cli::snapshot_bench::{self, Case, TransferReport};
use serde_json::json;

use crate::AnyResult;

/// Copies of the state the run keeps on disk at once: three voters' state and snapshot, the
/// fresh node's received snapshot and state, the disk-rate file; one more for slack.
const DISK_COPIES: u64 = 10;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size of the blob state in GiB (0: skip the blob case).
    #[arg(long, default_value_t = 1.0)]
    gib: f64,
    /// Limit on the sender's and the receiver's peak RSS in the blob case, and on what the
    /// transfer adds to each in the KV case.
    #[arg(long, default_value_t = 128)]
    max_rss_mib: u64,
    /// MiB of KV values for the second case (0: skip it).
    #[arg(long, default_value_t = 64)]
    kv_mib: u64,
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Bytes free on `dir`'s file system (`df -Pk`), if `df` answers.
fn available_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One case's report, the disk's write rate in bytes/s and the bytes it was measured with.
async fn case(case: Case, bytes: u64) -> AnyResult<(TransferReport, f64, u64)> {
    let mut cluster =
        LocalCluster::create(std::env::current_exe()?, snapshot_bench::cluster_options())?;
    if case == Case::Blob {
        cluster.set_server_command(&["bench", "blob-host"]);
    }
    let timeout = Duration::from_secs(120.max(bytes / 2_000_000));
    let report = snapshot_bench::measure(&mut cluster, case, bytes, timeout).await;
    cluster.kill_all();
    let report = report?;
    // Same run, same directory, the cluster stopped: the disk's sequential write rate.
    let disk_bytes = bytes.clamp(16 << 20, 1 << 30);
    let disk = snapshot_bench::disk_write_rate(cluster.root(), disk_bytes)?;
    Ok((report, disk, disk_bytes))
}

pub async fn run(args: Args) -> AnyResult<()> {
    if !(args.gib >= 0.0 && args.gib.is_finite()) || args.kv_mib > 4096 {
        return Err("--gib must be >= 0 and --kv-mib at most 4096".into());
    }
    let blob_over = if args.gib > 0.0 {
        blob_case(&args).await?
    } else {
        false
    };
    let kv_over = if args.kv_mib > 0 {
        kv_case(&args).await?
    } else {
        false
    };
    if blob_over || kv_over {
        return Err(format!(
            "the snapshot transfer's memory crossed {} MiB (see within_rss_limit above)",
            args.max_rss_mib
        )
        .into());
    }
    Ok(())
}

/// The blob case; `true` when a peak RSS crossed the limit.
async fn blob_case(args: &Args) -> AnyResult<bool> {
    let requested = (args.gib * (1u64 << 30) as f64) as u64;
    let free = available_bytes(&std::env::temp_dir()).unwrap_or(u64::MAX);
    let bytes = requested.min(free / DISK_COPIES).max(1 << 20);
    let (blob, disk, disk_bytes) = case(Case::Blob, bytes).await?;
    let rate = blob.state_bytes as f64 / blob.transfer.as_secs_f64();
    let over = blob.sender_peak_rss_kib.max(blob.receiver_peak_rss_kib) > args.max_rss_mib * 1024;
    println!(
        "{}",
        json!({
            "bench": "snapshot_transfer",
            "machine": "blob",
            "state_bytes": blob.state_bytes,
            "state_gib": round2(blob.state_bytes as f64 / (1u64 << 30) as f64),
            "requested_gib": args.gib,
            "build_s": round2(blob.build.as_secs_f64()),
            "transfer_s": round2(blob.transfer.as_secs_f64()),
            "transfer_mb_s": round2(rate / 1e6),
            "disk_write_mb_s": round2(disk / 1e6),
            "disk_write_bytes": disk_bytes,
            "ratio_to_disk": (rate / disk * 1000.0).round() / 1000.0,
            "sender_rss_mib_built": mib(blob.sender_rss_built_kib),
            "sender_rss_mib_before": mib(blob.sender_rss_before_kib),
            "sender_peak_rss_mib": mib(blob.sender_peak_rss_kib),
            "receiver_peak_rss_mib": mib(blob.receiver_peak_rss_kib),
            "max_rss_mib": args.max_rss_mib,
            "within_rss_limit": !over,
        })
    );
    Ok(over)
}

/// The KV case: it lives in memory, so the limit applies to what taking, sending and restoring
/// the snapshot add — the sender's peak above its peak once the state was built, the
/// receiver's peak above the data. `true` when either crossed it.
async fn kv_case(args: &Args) -> AnyResult<bool> {
    let (kv, disk, disk_bytes) = case(Case::Kv, args.kv_mib << 20).await?;
    let rate = kv.state_bytes as f64 / kv.transfer.as_secs_f64();
    let data = mib(kv.state_bytes / 1024);
    let sender_growth = mib(kv
        .sender_peak_rss_kib
        .saturating_sub(kv.sender_rss_built_kib));
    let receiver_overhead = round2(mib(kv.receiver_peak_rss_kib) - data);
    let over = sender_growth.max(receiver_overhead) > args.max_rss_mib as f64;
    println!(
        "{}",
        json!({
            "bench": "snapshot_transfer",
            "machine": "kv",
            "state_bytes": kv.state_bytes,
            "build_s": round2(kv.build.as_secs_f64()),
            "transfer_s": round2(kv.transfer.as_secs_f64()),
            "transfer_mb_s": round2(rate / 1e6),
            "disk_write_mb_s": round2(disk / 1e6),
        "disk_write_bytes": disk_bytes,
            "sender_rss_mib_built": mib(kv.sender_rss_built_kib),
            "sender_rss_mib_before": mib(kv.sender_rss_before_kib),
            "sender_peak_rss_mib": mib(kv.sender_peak_rss_kib),
            "receiver_peak_rss_mib": mib(kv.receiver_peak_rss_kib),
            "sender_overhead_mib": round2(mib(kv.sender_peak_rss_kib) - data),
            "sender_growth_mib": sender_growth,
            "receiver_overhead_mib": receiver_overhead,
            "max_rss_mib": args.max_rss_mib,
            "within_rss_limit": !over,
        })
    );
    Ok(over)
}
