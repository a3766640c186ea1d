//! Snapshot transfer to a fresh node (`journalkeeper bench snapshot-transfer`): a large state
//! reaches a node that joins after the log behind it was compacted, so it can only catch up
//! through an InstallSnapshot stream, and the memory this takes on the sender (the leader) and
//! on the receiver is measured as each process' peak RSS — the nodes are separate processes.
//!
//! Two cases. [`Case::Blob`]: a disk-resident user machine, `"blob"`, hosted by
//! `journalkeeper bench blob-host` (its state is a file; `grow BYTES SEED` appends
//! deterministic pseudo-random bytes, the query answers `SIZE CRC32C`), so the state can be far
//! larger than any node's memory. [`Case::Kv`]: the built-in KV, which lives in memory by
//! design, for its overhead above the data. [`disk_write_rate`] is the same run's sequential
//! write baseline (1 MiB writes and one `fdatasync`).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{LocalCluster, LocalClusterOptions, local_client_config};
use crate::api::{Error, ErrorKind, QueryConsistency, ResponseConfig};
use crate::client::{Client, ClientConfig};

/// The name the blob machine is hosted under.
pub const BLOB_MACHINE: &str = "blob";
/// Largest `grow` of one command (the machine refuses more).
pub const MAX_GROW_BYTES: u64 = 64 << 20;
/// Log entries kept behind a snapshot: the filler after the state outnumbers them.
const RETAINED: u64 = 10;
/// Bytes per KV value.
const KV_VALUE_BYTES: usize = 64 << 10;
const WAIT: Duration = Duration::from_secs(60);

/// The `grow` command of the blob machine.
pub fn grow_command(bytes: u64, seed: u64) -> Vec<u8> {
    format!("grow {bytes} {seed}").into_bytes()
}

/// The blob machine's query answer `SIZE CRC32C` (decimal), parsed.
pub fn parse_blob_state(answer: &[u8]) -> Option<(u64, u32)> {
    let text = std::str::from_utf8(answer).ok()?;
    let (size, crc) = text.trim().split_once(' ')?;
    Some((size.parse().ok()?, crc.parse().ok()?))
}

/// Which state is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The blob user machine, `bytes` of state on each node's disk.
    Blob,
    /// The built-in KV: `bytes` of values (64 KiB each).
    Kv,
}

/// What [`measure`] found.
#[derive(Debug, Clone)]
pub struct TransferReport {
    pub case: Case,
    /// Bytes of state (the blob's size, or the KV's values).
    pub state_bytes: u64,
    /// Building the state on the three voters.
    pub build: Duration,
    /// From the fresh node's spawn until it applied the leader's index, the state checked.
    pub transfer: Duration,
    /// The leader's peak RSS once the state was built (before the snapshot was taken), before
    /// the fresh node started, and after the transfer.
    pub sender_rss_built_kib: u64,
    pub sender_rss_before_kib: u64,
    pub sender_peak_rss_kib: u64,
    /// The fresh node's peak RSS after the transfer.
    pub receiver_peak_rss_kib: u64,
}

/// Sequential write rate of `dir`'s disk in bytes per second: `bytes` written in 1 MiB
/// buffers, then one `fdatasync` (inside the timing), the file removed.
pub fn disk_write_rate(dir: &Path, bytes: u64) -> io::Result<f64> {
    let path = dir.join("disk-rate.bin");
    let mut buf = vec![0u8; 1 << 20];
    fill_pseudo_random(&mut buf, 0x5eed, 0);
    let start = Instant::now();
    let mut file = File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.sync_data()?;
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(bytes as f64 / secs.max(1e-9))
}

/// Fills `buf` with the pseudo-random bytes of block `block` of stream `seed` (splitmix64):
/// what the blob machine appends, a pure function of its arguments.
pub fn fill_pseudo_random(buf: &mut [u8], seed: u64, block: u64) {
    let mut x = seed ^ block.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for word in buf.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
    }
}

/// The cluster options of both cases: no automatic snapshots (the bench takes one), few
/// entries retained behind it and small segments, so the compaction drops the log's start.
pub fn cluster_options() -> LocalClusterOptions {
    LocalClusterOptions {
        snapshot_interval: 0,
        snapshot_retained_entries: RETAINED,
        max_segment_bytes: 5 << 20,
        // The snapshot install is logged at info: the check that the fresh node took one.
        rust_log: "warn,journalkeeper::server::apply=info".into(),
        ..LocalClusterOptions::server_defaults()
    }
}

fn io_err(e: io::Error) -> Error {
    Error::new(ErrorKind::Io, e.to_string())
}

/// Builds `bytes` of state of `case` on `cluster` (3 voters, not started; a blob cluster must
/// run `bench blob-host`), compacts the log behind a snapshot, starts a fresh node, adds it as
/// a voter and times its catch-up; `timeout` bounds the transfer.
pub async fn measure(
    cluster: &mut LocalCluster,
    case: Case,
    bytes: u64,
    timeout: Duration,
) -> Result<TransferReport, Error> {
    cluster.start_all().map_err(io_err)?;
    let voters: Vec<usize> = (0..cluster.len()).collect();
    cluster.wait_for_leader(&voters, WAIT).await?;
    let mut config: ClientConfig = local_client_config(cluster.cluster_id());
    config.request_timeout = timeout.max(WAIT);
    let client = Client::connect(cluster.addrs(), config).await?;
    let result = run(cluster, &client, case, bytes, timeout).await;
    client.close();
    result
}

async fn run(
    cluster: &mut LocalCluster,
    client: &Client,
    case: Case,
    bytes: u64,
    timeout: Duration,
) -> Result<TransferReport, Error> {
    let started = Instant::now();
    build_state(client, case, bytes).await?;
    let build = started.elapsed();
    let voters: Vec<usize> = (0..cluster.len()).collect();
    let (builder, _) = cluster.wait_for_leader(&voters, WAIT).await?;
    let sender_rss_built_kib = cluster.peak_rss_kib(builder).unwrap_or(0);
    // Journal records fill segments, then more entries than are retained, so the snapshot's
    // compaction point lies past whole segments: the log's start is gone.
    let filler = vec![7u8; 1 << 20];
    for _ in 0..12 {
        client
            .journal()
            .append(0, vec![filler.clone()], ResponseConfig::Replication)
            .await?;
    }
    for k in 0..RETAINED * 2 {
        client.kv().set(&format!("after/{k}"), Vec::new()).await?;
    }
    client.admin().take_snapshot().await?;
    let deadline = Instant::now() + timeout.max(WAIT);
    for i in 0..cluster.len() {
        loop {
            let status = cluster.status(i, WAIT).await?;
            if status.detail.map(|d| d.first_index).unwrap_or(0) > 1 {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("node {} never compacted its log", i + 1),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (leader, _) = cluster.wait_for_leader(&voters, WAIT).await?;
    let target = client.sync().await?;
    let expected = fingerprint(cluster, leader, case, bytes).await?;
    let sender_rss_before_kib = cluster.peak_rss_kib(leader).unwrap_or(0);

    let start = Instant::now();
    let fresh = cluster.add_joining_node().map_err(io_err)?;
    let add = {
        let admin_client = client.clone();
        let addr = cluster.addr(fresh);
        tokio::spawn(async move {
            admin_client
                .admin()
                .add_voter(fresh as u64 + 1, &addr)
                .await
        })
    };
    cluster.wait_for_applied(fresh, target, timeout).await?;
    let got = fingerprint(cluster, fresh, case, bytes).await?;
    let transfer = start.elapsed();
    let receiver_peak_rss_kib = cluster.peak_rss_kib(fresh).unwrap_or(0);
    let sender_peak_rss_kib = cluster.peak_rss_kib(leader).unwrap_or(0);
    add.await
        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))??;
    if got != expected {
        return Err(Error::new(
            ErrorKind::Internal,
            format!("the fresh node holds {got:?}, the leader {expected:?}"),
        ));
    }
    // The install is logged just after its index becomes visible in the status.
    let logged = Instant::now() + Duration::from_secs(10);
    while !cluster.log_tail(fresh, 200).contains("installed snapshot") {
        if Instant::now() > logged {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "the fresh node caught up without a snapshot:\n{}",
                    cluster.log_tail(fresh, 20)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(TransferReport {
        case,
        state_bytes: bytes,
        build,
        transfer,
        sender_rss_built_kib,
        sender_rss_before_kib,
        sender_peak_rss_kib,
        receiver_peak_rss_kib,
    })
}

/// Writes `bytes` of state: `grow` commands of at most [`MAX_GROW_BYTES`], or 64 KiB KV values.
async fn build_state(client: &Client, case: Case, bytes: u64) -> Result<(), Error> {
    match case {
        Case::Blob => {
            let blob = client.state_machine(BLOB_MACHINE);
            let (mut left, mut seed) = (bytes, 1u64);
            while left > 0 {
                let n = left.min(MAX_GROW_BYTES);
                blob.update(grow_command(n, seed)).await?;
                left -= n;
                seed += 1;
            }
        }
        Case::Kv => {
            let mut value = vec![0u8; KV_VALUE_BYTES];
            let (mut left, mut k) = (bytes, 0u64);
            while left > 0 {
                let n = left.min(value.len() as u64) as usize;
                fill_pseudo_random(&mut value[..n], 7, k);
                client.kv().set(&kv_key(k), value[..n].to_vec()).await?;
                left -= n as u64;
                k += 1;
            }
        }
    }
    Ok(())
}

/// What node `i` holds, read there: the blob's size and checksum, or the KV's first and last
/// values' checksums (the applied index past the target stands for the rest).
async fn fingerprint(
    cluster: &LocalCluster,
    i: usize,
    case: Case,
    bytes: u64,
) -> Result<String, Error> {
    let local = cluster.client_of(i).await?;
    let answer = match case {
        Case::Blob => local
            .state_machine(BLOB_MACHINE)
            .query(Vec::new(), QueryConsistency::None)
            .await
            .map(|a| format!("{:?}", parse_blob_state(&a))),
        Case::Kv => {
            let kv = local.kv().with_consistency(QueryConsistency::None);
            let last = bytes.div_ceil(KV_VALUE_BYTES as u64).saturating_sub(1);
            let mut crcs = Vec::new();
            for k in [0, last] {
                crcs.push(kv.get(&kv_key(k)).await?.map(|v| crc32c::crc32c(&v)));
            }
            Ok(format!("values 0 and {last}: {crcs:?}"))
        }
    };
    local.close();
    answer
}

fn kv_key(k: u64) -> String {
    format!("v/{k:08}")
}
