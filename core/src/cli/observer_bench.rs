//! Observers' cost and lag (`journalkeeper bench observers`): the write throughput of the
//! voters with no observers, with 4 observers attached in two levels (2 pulling from the
//! voters, 2 from those), and with none again (the observers killed) — the two runs without
//! them are the same-run baseline — and, while the observers are attached, how far each one
//! lags the leader: in entries (sampled every 10 ms) and in milliseconds (from when the leader
//! has applied an index until the observer has). Each phase also reports the CPU time the
//! voters (and the observers) used per acknowledged write, from `/proc`: on a machine with
//! fewer cores than processes a drop in throughput is then told apart from extra work on the
//! voters (observers that share the voters' cores slow them down without loading them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::LocalCluster;
use crate::api::{Error, ResponseConfig};
use crate::client::{Client, ClientConfig};

const WAIT: Duration = Duration::from_secs(30);

/// What [`measure`] found.
#[derive(Debug, Clone)]
pub struct ObserverBenchReport {
    /// Acknowledged appends per second: without observers (before, after) and with them.
    pub without_before: f64,
    pub with_observers: f64,
    pub without_after: f64,
    /// Per observer (its position and level 1 or 2): lag samples in entries and in time.
    pub lags: Vec<ObserverLag>,
    /// CPU time of the three voters together per acknowledged write, per phase (µs).
    pub voter_cpu_us_per_write: [f64; 3],
    /// CPU time of the four observers together per write acknowledged meanwhile (µs).
    pub observer_cpu_us_per_write: f64,
}

/// Acknowledged writes and their rate in one phase.
struct Phase {
    rate: f64,
    acked: u64,
}

/// CPU time used so far by `nodes` together.
fn cpu_of(cluster: &LocalCluster, nodes: &[usize]) -> Duration {
    nodes.iter().filter_map(|&i| cluster.cpu_time(i)).sum()
}

fn per_write_us(cpu: Duration, acked: u64) -> f64 {
    let us = cpu.as_secs_f64() * 1e6 / acked.max(1) as f64;
    (us * 10.0).round() / 10.0
}

#[derive(Debug, Clone, Default)]
pub struct ObserverLag {
    pub node: usize,
    pub level: u8,
    pub entries: Vec<u64>,
    pub times: Vec<Duration>,
}

/// Lowers the CPU priority of process `pid` to `nice` (`renice`), so that on a machine with
/// fewer cores than nodes the observers take the CPU the voters leave.
fn renice(pid: u32, nice: i32) -> Result<(), Error> {
    let out = std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p", &pid.to_string()])
        .output()
        .map_err(|e| Error::new(crate::api::ErrorKind::Io, format!("cannot run renice: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(
            crate::api::ErrorKind::Io,
            format!(
                "renice -n {nice} -p {pid} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// Runs the three phases on `cluster` (3 running voters), `writers` concurrent writers of
/// `payload` bytes for `phase` each; with `observer_nice`, the observers run at that CPU
/// priority.
pub async fn measure(
    cluster: &mut LocalCluster,
    writers: usize,
    payload: usize,
    phase: Duration,
    client: ClientConfig,
    observer_nice: Option<i32>,
) -> Result<ObserverBenchReport, Error> {
    let voters: Vec<usize> = (0..cluster.len()).collect();
    let (leader, _) = cluster.wait_for_leader(&voters, WAIT).await?;
    let io = |e: std::io::Error| Error::new(crate::api::ErrorKind::Io, e.to_string());
    let cpu0 = cpu_of(cluster, &voters);
    let without_before = throughput(cluster, writers, payload, phase, &client).await?;
    let cpu1 = cpu_of(cluster, &voters);
    let first = [
        cluster.add_observer(&voters).map_err(io)?,
        cluster.add_observer(&voters).map_err(io)?,
    ];
    let second = [
        cluster.add_observer(&[first[0], first[1]]).map_err(io)?,
        cluster.add_observer(&[first[1], first[0]]).map_err(io)?,
    ];
    let observers = [first[0], first[1], second[0], second[1]];
    if let Some(nice) = observer_nice {
        for &o in &observers {
            let pid = cluster.pid(o).ok_or_else(|| {
                Error::new(
                    crate::api::ErrorKind::Internal,
                    "an observer has no process",
                )
            })?;
            renice(pid, nice)?;
        }
    }
    let applied = cluster.status(leader, WAIT).await?.applied_index;
    for &o in &observers {
        cluster.wait_for_applied(o, applied, WAIT).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let addrs: Vec<String> = std::iter::once(leader)
            .chain(observers)
            .map(|i| cluster.addr(i))
            .collect();
        let client = client.clone();
        tokio::spawn(async move { sample_lags(addrs, client, stop).await })
    };
    let (vcpu, ocpu) = (cpu_of(cluster, &voters), cpu_of(cluster, &observers));
    let with_observers = throughput(cluster, writers, payload, phase, &client).await;
    let (vcpu2, ocpu2) = (cpu_of(cluster, &voters), cpu_of(cluster, &observers));
    stop.store(true, Ordering::SeqCst);
    let samples = sampler
        .await
        .map_err(|e| Error::new(crate::api::ErrorKind::Internal, e.to_string()))??;
    let with_observers = with_observers?;
    for &o in &observers {
        cluster.kill(o).map_err(io)?;
    }
    let cpu3 = cpu_of(cluster, &voters);
    let without_after = throughput(cluster, writers, payload, phase, &client).await?;
    let cpu4 = cpu_of(cluster, &voters);
    let voter_cpu_us_per_write = [
        per_write_us(cpu1 - cpu0, without_before.acked),
        per_write_us(vcpu2 - vcpu, with_observers.acked),
        per_write_us(cpu4 - cpu3, without_after.acked),
    ];
    let observer_cpu_us_per_write = per_write_us(ocpu2 - ocpu, with_observers.acked);
    let lags = observers
        .iter()
        .zip(samples)
        .enumerate()
        .map(|(k, (&node, (entries, times)))| ObserverLag {
            node,
            level: if k < 2 { 1 } else { 2 },
            entries,
            times,
        })
        .collect();
    Ok(ObserverBenchReport {
        without_before: without_before.rate,
        with_observers: with_observers.rate,
        without_after: without_after.rate,
        lags,
        voter_cpu_us_per_write,
        observer_cpu_us_per_write,
    })
}

/// Acknowledged REPLICATION appends of `writers` concurrent writers over `phase`.
async fn throughput(
    cluster: &LocalCluster,
    writers: usize,
    payload: usize,
    phase: Duration,
    client: &ClientConfig,
) -> Result<Phase, Error> {
    let c = Client::connect(cluster.addrs().into_iter().take(3), client.clone()).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + phase;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (c, acked) = (c.clone(), acked.clone());
            tokio::spawn(async move {
                let entry = vec![w as u8; payload];
                while Instant::now() < end {
                    if c.journal()
                        .append(
                            (w % 4) as u16,
                            vec![entry.clone()],
                            ResponseConfig::Replication,
                        )
                        .await
                        .is_ok()
                    {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    c.close();
    let acked = acked.load(Ordering::Relaxed);
    Ok(Phase {
        rate: acked as f64 / secs,
        acked,
    })
}

type Lags = Vec<(Vec<u64>, Vec<Duration>)>;

/// Every 10 ms: the leader's applied index (`addrs[0]`) and each observer's; the entry lag, and
/// for the leader's index noted every 50 ms, when each observer reached it.
async fn sample_lags(
    addrs: Vec<String>,
    client: ClientConfig,
    stop: Arc<AtomicBool>,
) -> Result<Lags, Error> {
    let c = Client::connect(addrs.clone(), client).await?;
    let admin = c.admin();
    let n = addrs.len() - 1;
    let mut lags: Lags = vec![(Vec::new(), Vec::new()); n];
    let mut pending: Vec<Vec<(u64, Instant)>> = vec![Vec::new(); n];
    let mut tick = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tick += 1;
        let Ok(lead) = admin.status(&addrs[0]).await else {
            continue;
        };
        let now = Instant::now();
        for k in 0..n {
            if tick.is_multiple_of(5) {
                pending[k].push((lead.applied_index, now));
            }
            let Ok(s) = admin.status(&addrs[k + 1]).await else {
                continue;
            };
            lags[k]
                .0
                .push(lead.applied_index.saturating_sub(s.applied_index));
            let seen = Instant::now();
            pending[k].retain(|&(index, at)| {
                let reached = s.applied_index >= index;
                if reached {
                    lags[k].1.push(seen - at);
                }
                !reached
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.close();
    Ok(lags)
}
