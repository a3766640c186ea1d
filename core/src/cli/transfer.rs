//! The write pause of a leader transfer (`journalkeeper bench transfer`): one writer appends
//! continuously (REPLICATION, one record per call) while leadership is handed round the
//! cluster; for each transfer, the longest interval between two consecutive acknowledged
//! appends that overlaps the transfer, next to the longest one in an equally long window just
//! before it (the baseline, measured in the same run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::LocalCluster;
use crate::api::{Error, ErrorKind, ResponseConfig};
use crate::client::{Client, ClientConfig};

/// Upper bound of every wait of a round.
const ROUND_WAIT: Duration = Duration::from_secs(30);

/// One transfer.
#[derive(Debug, Clone)]
pub struct TransferSample {
    /// Positions (0-based) of the old and the new leader.
    pub from: usize,
    pub to: usize,
    /// From the request to its answer (the target leads).
    pub took: Duration,
    /// Longest interval between acknowledged appends overlapping the transfer.
    pub gap: Duration,
    /// Longest interval between acknowledged appends in a window as long, just before.
    pub baseline_gap: Duration,
}

/// What [`transfer_gaps`] measured.
#[derive(Debug, Clone)]
pub struct TransferReport {
    pub samples: Vec<TransferSample>,
    pub acked: u64,
    pub write_errors: u64,
}

type AckTimes = Arc<Mutex<Vec<Instant>>>;

/// Transfers leadership `transfers` times (each to the next node) under a continuous writer.
/// Every node of `cluster` must be running.
pub async fn transfer_gaps(
    cluster: &LocalCluster,
    transfers: usize,
    client: ClientConfig,
) -> Result<TransferReport, Error> {
    let all: Vec<usize> = (0..cluster.len()).collect();
    let (mut leader, _) = cluster.wait_for_leader(&all, ROUND_WAIT).await?;
    let writer_client = Client::connect(cluster.addrs(), client.clone()).await?;
    let admin_client = Client::connect(cluster.addrs(), client).await?;
    let acks: AckTimes = Arc::default();
    let writer = tokio::spawn(write_continuously(writer_client.clone(), acks.clone()));
    let result = async {
        let mut samples = Vec::new();
        for _ in 0..transfers {
            wait_for_acks(&acks, 20).await?;
            let to = (leader + 1) % all.len();
            let start = Instant::now();
            admin_client.admin().transfer_leader(to as u64 + 1).await?;
            let done = Instant::now();
            let after = wait_for_ack_after(&acks, done).await?;
            let times = lock(&acks).clone();
            let took = done - start;
            samples.push(TransferSample {
                from: leader,
                to,
                took,
                gap: longest_gap(&times, start, after),
                baseline_gap: longest_gap(&times, start.checked_sub(took).unwrap_or(start), start),
            });
            leader = to;
        }
        Ok::<_, Error>(samples)
    }
    .await;
    writer_client.close();
    admin_client.close();
    let write_errors = writer
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("writer task: {e}")))?;
    let acked = lock(&acks).len() as u64;
    Ok(TransferReport {
        samples: result?,
        acked,
        write_errors,
    })
}

fn lock(acks: &AckTimes) -> std::sync::MutexGuard<'_, Vec<Instant>> {
    acks.lock().unwrap_or_else(|p| p.into_inner())
}

/// The longest interval between consecutive `times` (ascending) that overlaps `[from, to]`.
pub fn longest_gap(times: &[Instant], from: Instant, to: Instant) -> Duration {
    times
        .windows(2)
        .filter(|w| w[1] >= from && w[0] <= to)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

async fn write_continuously(client: Client, acks: AckTimes) -> u64 {
    let mut errors = 0;
    for seq in 0u64.. {
        let record = format!("transfer-{seq}").into_bytes();
        match client
            .journal()
            .append(0, vec![record], ResponseConfig::Replication)
            .await
        {
            Ok(_) => lock(&acks).push(Instant::now()),
            Err(e) if e.kind == ErrorKind::Closed => break,
            Err(_) => errors += 1,
        }
    }
    errors
}

async fn wait_for_acks(acks: &AckTimes, more: usize) -> Result<(), Error> {
    let target = lock(acks).len() + more;
    poll(|| lock(acks).len() >= target).await
}

async fn wait_for_ack_after(acks: &AckTimes, t: Instant) -> Result<Instant, Error> {
    poll(|| lock(acks).last().is_some_and(|&a| a > t)).await?;
    Ok(lock(acks).last().copied().unwrap_or(t))
}

async fn poll(done: impl Fn() -> bool) -> Result<(), Error> {
    let deadline = Instant::now() + ROUND_WAIT;
    while !done() {
        if Instant::now() > deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("the writer made no progress within {ROUND_WAIT:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_counts_intervals_that_overlap_the_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(10), at(50), at(55), at(200), at(201)];
        assert_eq!(
            longest_gap(&times, at(52), at(60)),
            Duration::from_millis(145)
        );
        assert_eq!(
            longest_gap(&times, at(0), at(12)),
            Duration::from_millis(40)
        );
        assert_eq!(longest_gap(&times, at(300), at(400)), Duration::ZERO);
    }
}
