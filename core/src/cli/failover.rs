//! Failover measurements on a [`LocalCluster`], shared by `journalkeeper bench failover` and
//! the multi-process test `core/tests/cluster_failover.rs`.
//!
//! - [`kill_gaps`]: one writer appends continuously (REPLICATION); each round SIGKILLs the
//!   leader and measures the time from the signal to the writer's next acknowledged append,
//!   then restarts the node and waits until it has caught up.
//! - [`paused_first`]: SIGSTOPs a follower and puts it first in a fresh client's server list;
//!   measures `Client::connect` and that client's first read (and, with a second fresh client,
//!   its first write).
//!
//! Never does: anything inside a node — it only signals processes and talks the client protocol.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::LocalCluster;
use crate::api::{Error, ErrorKind, QueryConsistency, ResponseConfig};
use crate::client::{Client, ClientConfig};

/// Upper bound for every wait of a round (leader agreement, catch-up, the next ack).
const ROUND_WAIT: Duration = Duration::from_secs(30);

/// One leader kill.
#[derive(Debug, Clone)]
pub struct KillSample {
    /// Position (0-based) of the killed leader.
    pub killed: usize,
    /// From the SIGKILL to the next acknowledged append.
    pub gap: Duration,
}

/// What [`kill_gaps`] measured.
#[derive(Debug, Clone)]
pub struct KillReport {
    pub samples: Vec<KillSample>,
    /// Appends acknowledged over the whole run.
    pub acked: u64,
    /// Appends that failed (each after the client's own retries), and the last error.
    pub write_errors: u64,
    pub last_error: Option<String>,
}

/// The writer's progress: (acknowledged appends, when the last one was acknowledged).
type Acks = watch::Sender<(u64, Instant)>;

/// Kills the leader `kills` times under a continuous REPLICATION writer using `client`
/// settings; see the module documentation. Every node of `cluster` must be running.
pub async fn kill_gaps(
    cluster: &mut LocalCluster,
    kills: usize,
    client: ClientConfig,
) -> Result<KillReport, Error> {
    let all: Vec<usize> = (0..cluster.len()).collect();
    let (mut leader, _) = cluster.wait_for_leader(&all, ROUND_WAIT).await?;
    let writer_client = Client::connect(cluster.addrs(), client).await?;
    let (acks, mut acks_rx) = watch::channel((0u64, Instant::now()));
    let writer = tokio::spawn(write_continuously(writer_client.clone(), acks));
    let result = async {
        let mut samples = Vec::new();
        for _ in 0..kills {
            // The writer is acknowledged by the current leader.
            wait_acks(&mut acks_rx, 5).await?;
            let signalled = Instant::now();
            cluster
                .kill(leader)
                .map_err(|e| io_error("kill the leader", e))?;
            // Acknowledgements the old leader sent before it died do not count.
            let before = acks_rx.borrow_and_update().0;
            let acked_at =
                tokio::time::timeout(ROUND_WAIT, acks_rx.wait_for(|(count, _)| *count > before))
                    .await
                    .map_err(|_| timeout("no append acknowledged after the leader kill"))?
                    .map_err(|_| Error::new(ErrorKind::Internal, "the writer stopped"))?
                    .1;
            samples.push(KillSample {
                killed: leader,
                gap: acked_at.saturating_duration_since(signalled),
            });
            cluster
                .start(leader)
                .map_err(|e| io_error("restart the killed node", e))?;
            let restarted = leader;
            let (new_leader, status) = cluster.wait_for_leader(&all, ROUND_WAIT).await?;
            cluster
                .wait_for_applied(restarted, status.commit_index, ROUND_WAIT)
                .await?;
            leader = new_leader;
        }
        Ok::<_, Error>(samples)
    }
    .await;
    writer_client.close();
    let (write_errors, last_error) = writer
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("writer task: {e}")))?;
    let acked = acks_rx.borrow().0;
    Ok(KillReport {
        samples: result?,
        acked,
        write_errors,
        last_error,
    })
}

/// Appends one small record at a time until the client is closed; returns the failures.
async fn write_continuously(client: Client, acks: Acks) -> (u64, Option<String>) {
    let mut errors = 0;
    let mut last = None;
    for seq in 0u64.. {
        let record = format!("failover-{seq}").into_bytes();
        match client
            .journal()
            .append(0, vec![record], ResponseConfig::Replication)
            .await
        {
            Ok(_) => {
                let now = Instant::now();
                acks.send_modify(|(count, at)| {
                    *count += 1;
                    *at = now;
                });
            }
            Err(e) if e.kind == ErrorKind::Closed => break,
            Err(e) => {
                errors += 1;
                last = Some(e.to_string());
            }
        }
    }
    (errors, last)
}

async fn wait_acks(rx: &mut watch::Receiver<(u64, Instant)>, more: u64) -> Result<(), Error> {
    let target = rx.borrow_and_update().0 + more;
    tokio::time::timeout(ROUND_WAIT, rx.wait_for(|(count, _)| *count >= target))
        .await
        .map_err(|_| timeout("the writer made no progress"))?
        .map_err(|_| Error::new(ErrorKind::Internal, "the writer stopped"))?;
    Ok(())
}

/// One round of [`paused_first`].
#[derive(Debug, Clone)]
pub struct PauseSample {
    /// Position (0-based) of the paused follower (first in the clients' server lists).
    pub paused: usize,
    /// `Client::connect` of the client that then reads.
    pub connect: Duration,
    /// Its first read (a SEQUENTIAL `get`).
    pub first_read: Duration,
    /// `Client::connect` plus the first REPLICATION append of a second fresh client.
    pub connect_and_first_write: Duration,
}

/// `rounds` times: SIGSTOP a follower, then time fresh clients (settings `client`) whose
/// server list starts with it; SIGCONT it and wait until it caught up.
pub async fn paused_first(
    cluster: &mut LocalCluster,
    rounds: usize,
    client: ClientConfig,
) -> Result<Vec<PauseSample>, Error> {
    let all: Vec<usize> = (0..cluster.len()).collect();
    let setup = Client::connect(cluster.addrs(), client.clone()).await?;
    let written = setup
        .journal()
        .append(
            0,
            vec![b"paused-first".to_vec()],
            ResponseConfig::Replication,
        )
        .await;
    setup.close();
    written?;
    let mut samples = Vec::new();
    for round in 0..rounds {
        let (leader, _) = cluster.wait_for_leader(&all, ROUND_WAIT).await?;
        let followers: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let paused = followers[round % followers.len()];
        let mut addrs = vec![cluster.addr(paused)];
        addrs.extend(
            all.iter()
                .filter(|&&i| i != paused)
                .map(|&i| cluster.addr(i)),
        );
        cluster
            .pause(paused)
            .map_err(|e| io_error("pause a follower", e))?;
        let measured = measure_paused_first(&addrs, &client).await;
        cluster
            .resume(paused)
            .map_err(|e| io_error("resume the follower", e))?;
        let (connect, first_read, connect_and_first_write) = measured?;
        samples.push(PauseSample {
            paused,
            connect,
            first_read,
            connect_and_first_write,
        });
        let (_, status) = cluster.wait_for_leader(&all, ROUND_WAIT).await?;
        cluster
            .wait_for_applied(paused, status.commit_index, ROUND_WAIT)
            .await?;
    }
    Ok(samples)
}

async fn measure_paused_first(
    addrs: &[String],
    config: &ClientConfig,
) -> Result<(Duration, Duration, Duration), Error> {
    let start = Instant::now();
    let reader = Client::connect(addrs, config.clone()).await?;
    let connect = start.elapsed();
    let start = Instant::now();
    let read = reader
        .journal()
        .get(0, 0, 1, QueryConsistency::Sequential)
        .await;
    let first_read = start.elapsed();
    reader.close();
    read?;
    let start = Instant::now();
    let writer = Client::connect(addrs, config.clone()).await?;
    let written = writer
        .journal()
        .append(
            0,
            vec![b"paused-first".to_vec()],
            ResponseConfig::Replication,
        )
        .await;
    let connect_and_first_write = start.elapsed();
    writer.close();
    written?;
    Ok((connect, first_read, connect_and_first_write))
}

/// The raft settings the nodes of a cluster made with `options` run with (election timeout,
/// clock-drift bound, pre-vote, check-quorum, …), for reports.
pub fn node_raft_config(options: &super::LocalClusterOptions) -> crate::raft::Config {
    crate::server::ServerConfig::new(1, std::net::SocketAddr::from(([127, 0, 0, 1], 0)), 42, "")
        .with_timeouts(options.election_timeout_ms, options.heartbeat_interval_ms)
        .raft_config()
}

/// Minimum, median, 90th percentile and maximum of `samples` in milliseconds (nearest rank).
pub fn summary_ms(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |q: f64| -> f64 {
        if ms.is_empty() {
            return 0.0;
        }
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        (ms[i] * 10.0).round() / 10.0
    };
    let median = if ms.is_empty() {
        0.0
    } else if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
    };
    Summary {
        min_ms: rank(0.0),
        median_ms: (median * 10.0).round() / 10.0,
        p90_ms: rank(0.9),
        max_ms: rank(1.0),
    }
}

/// See [`summary_ms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

fn timeout(what: &str) -> Error {
    Error::new(ErrorKind::Timeout, format!("{what} within {ROUND_WAIT:?}"))
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank_and_the_middle_for_the_median() {
        let d = |ms: u64| Duration::from_millis(ms);
        let s = summary_ms(&[d(400), d(100), d(300), d(200)]);
        assert_eq!(
            s,
            Summary {
                min_ms: 100.0,
                median_ms: 250.0,
                p90_ms: 400.0,
                max_ms: 400.0
            }
        );
        let s = summary_ms(&(1..=20).map(d).collect::<Vec<_>>());
        assert_eq!((s.median_ms, s.p90_ms, s.max_ms), (10.5, 18.0, 20.0));
        assert_eq!(summary_ms(&[]).max_ms, 0.0);
    }
}
