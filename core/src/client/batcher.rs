//! [`Batcher`]: client-side natural batching of journal appends.
//!
//! Why: sent one by one, every append costs a request frame, a raft proposal, a reply and
//! their task wake-ups; with many concurrent appenders that per-request overhead, not the
//! disk, caps throughput. What: concurrent appends made through one client (and its clones)
//! to the same *lane* — (partition, `ResponseConfig`) — are coalesced into one request while
//! earlier requests of that lane are in flight, like Kafka's producer batching but with no
//! linger: while fewer than `max_in_flight` requests of the lane are in flight, an append goes
//! out at once, so latency at low load is that of a plain append.
//!
//! A request carries the queued batches in order, never splitting one, up to the protocol
//! bounds: one batch as a plain `Append` (the bytes of an uncoalesced call), several as
//! `AppendBatches` (each keeps its batch identity in the journal). Each request takes ONE
//! write session, so a retry under [`Cluster::call`]'s rules is applied once; the reply's
//! first index is split back into each caller's first index; every caller of a failed request
//! gets (a clone of) its error.
//!
//! Requests are sent by a task spawned on the client's runtime, so they never depend on a
//! caller's future being polled. A caller that drops its future after enqueueing just does not
//! see the result: like any cancelled request, the append may still happen (it is skipped only
//! if it was still queued).
//!
//! Never does: argument checks of a single batch (the journal facade does them first),
//! routing or retries (the cluster layer).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::cluster::{Cluster, Target};
use super::protocol::{MAX_APPEND_BYTES, MAX_APPEND_ENTRIES, ReplyBody, RequestBody};
use super::unexpected;
use crate::api::{Error, ErrorKind, ResponseConfig};

type Lane = (u16, ResponseConfig);
type Answer = Result<Option<u64>, Error>;

/// One caller's batch waiting in its lane.
struct Pending {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    tx: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct LaneState {
    queue: VecDeque<Pending>,
    /// Requests of this lane sent and not yet answered (each has a task running it).
    in_flight: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The coalescing state of one client (shared by its clones).
pub(crate) struct Batcher {
    lanes: Mutex<HashMap<Lane, LaneState>>,
    max_in_flight: usize,
    /// Most payload bytes coalesced into one request (a lone larger batch still goes alone).
    max_bytes: usize,
    runtime: Handle,
    /// Append requests sent (coalesced or not; a retry is the same request).
    sent: AtomicU64,
}

impl Batcher {
    /// `max_frame_size` bounds the coalesced payload to half a frame, so joining batches never
    /// makes a request too large for the connection when each alone fits.
    pub fn new(max_in_flight: usize, max_frame_size: u32, runtime: Handle) -> Self {
        let half_frame = usize::try_from(max_frame_size / 2).unwrap_or(usize::MAX);
        Batcher {
            lanes: Mutex::new(HashMap::new()),
            max_in_flight: max_in_flight.max(1),
            max_bytes: MAX_APPEND_BYTES.min(half_frame),
            runtime,
            sent: AtomicU64::new(0),
        }
    }

    /// Append requests this client sent (see [`Client::append_requests_sent`](super::Client)).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts an append request sent without coalescing.
    pub fn count_request(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends `entries` (already checked against the bounds) through its lane; resolves with
    /// the partition index of its first entry (`None` for levels that return no result).
    pub async fn append(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        partition: u16,
        entries: Vec<Vec<u8>>,
        response: ResponseConfig,
    ) -> Answer {
        let lane = (partition, response);
        let (tx, rx) = oneshot::channel();
        let bytes = entries.iter().map(Vec::len).sum();
        let start = {
            let mut lanes = lock(&self.lanes);
            let state = lanes.entry(lane).or_default();
            state.queue.push_back(Pending { entries, bytes, tx });
            if state.in_flight < self.max_in_flight {
                state.in_flight += 1;
                Some(self.take(&mut state.queue))
            } else {
                None
            }
        };
        if let Some(batch) = start {
            let task = self.clone().run(cluster.clone(), lane, batch);
            self.runtime.spawn(task);
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Closed,
                "the client's runtime stopped before the append was answered",
            ))
        })
    }

    /// The next request's batches: queued callers still waiting, in order, within the bounds.
    fn take(&self, queue: &mut VecDeque<Pending>) -> Vec<Pending> {
        queue.retain(|p| !p.tx.is_closed());
        take_within(
            queue,
            |p| (p.entries.len(), p.bytes),
            MAX_APPEND_ENTRIES,
            self.max_bytes,
        )
    }

    /// One in-flight slot of `lane`: sends `batch`, then whatever queued meanwhile, until the
    /// queue is empty.
    async fn run(self: Arc<Self>, cluster: Arc<Cluster>, lane: Lane, mut batch: Vec<Pending>) {
        loop {
            if !batch.is_empty() {
                self.send(&cluster, lane, batch).await;
            }
            let mut lanes = lock(&self.lanes);
            let Some(state) = lanes.get_mut(&lane) else {
                return;
            };
            batch = self.take(&mut state.queue);
            if batch.is_empty() {
                state.in_flight = state.in_flight.saturating_sub(1);
                if state.in_flight == 0 {
                    lanes.remove(&lane);
                }
                return;
            }
        }
    }

    async fn send(&self, cluster: &Cluster, (partition, response): Lane, batch: Vec<Pending>) {
        let lens: Vec<usize> = batch.iter().map(|p| p.entries.len()).collect();
        let (mut batches, txs): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.entries, p.tx)).unzip();
        let session = cluster.begin_write();
        let body = if batches.len() == 1 {
            RequestBody::Append {
                partition,
                entries: batches.pop().unwrap_or_default(),
                response,
                session: session.id,
            }
        } else {
            RequestBody::AppendBatches {
                partition,
                batches,
                response,
                session: session.id,
            }
        };
        self.sent.fetch_add(1, Ordering::Relaxed);
        let result = cluster.call(Target::Leader, body).await;
        drop(session);
        match result {
            Ok(ReplyBody::Appended { first_index }) => {
                for (tx, first) in txs.into_iter().zip(first_indices(first_index, &lens)) {
                    let _ = tx.send(Ok(first));
                }
            }
            Ok(other) => {
                let e = unexpected("Append", &other);
                txs.into_iter().for_each(|tx| drop(tx.send(Err(e.clone()))));
            }
            Err(e) => txs.into_iter().for_each(|tx| drop(tx.send(Err(e.clone())))),
        }
    }
}

/// Pops from the front of `queue` while the totals stay within `max_entries` and `max_bytes`;
/// the first item is always taken (alone it is within the protocol bounds).
pub(crate) fn take_within<T>(
    queue: &mut VecDeque<T>,
    size: impl Fn(&T) -> (usize, usize),
    max_entries: usize,
    max_bytes: usize,
) -> Vec<T> {
    let mut out = Vec::new();
    let (mut entries, mut bytes) = (0usize, 0usize);
    while let Some(next) = queue.front() {
        let (n, b) = size(next);
        if !out.is_empty() && (entries + n > max_entries || bytes + b > max_bytes) {
            break;
        }
        entries += n;
        bytes += b;
        out.extend(queue.pop_front());
    }
    out
}

/// Each caller's first index, given the request's first index and the callers' entry counts.
fn first_indices(first: Option<u64>, lens: &[usize]) -> Vec<Option<u64>> {
    let mut before = 0u64;
    lens.iter()
        .map(|&n| {
            let mine = first.and_then(|f| f.checked_add(before));
            before = before.saturating_add(n as u64);
            mine
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_takes_whole_batches_in_order_within_the_bounds() {
        let size = |&(n, b): &(usize, usize)| (n, b);
        let mut q: VecDeque<(usize, usize)> = [(2, 10), (3, 10), (4, 10), (1, 10)].into();
        assert_eq!(take_within(&mut q, size, 6, 100), vec![(2, 10), (3, 10)]);
        assert_eq!(
            take_within(&mut q, size, 6, 15),
            vec![(4, 10)],
            "bytes bound"
        );
        assert_eq!(take_within(&mut q, size, 6, 100), vec![(1, 10)]);
        assert!(take_within(&mut q, size, 6, 100).is_empty());
        // A batch that alone exceeds the coalescing bound still goes, alone.
        let mut q: VecDeque<(usize, usize)> = [(1, 50), (1, 1)].into();
        assert_eq!(take_within(&mut q, size, 6, 20), vec![(1, 50)]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn each_caller_gets_the_first_index_after_the_batches_before_it() {
        assert_eq!(
            first_indices(Some(10), &[1, 3, 2]),
            vec![Some(10), Some(11), Some(14)]
        );
        assert_eq!(first_indices(None, &[1, 3]), vec![None, None]);
        assert_eq!(
            first_indices(Some(u64::MAX), &[1, 1]),
            vec![Some(u64::MAX), None],
            "a hostile reply never overflows"
        );
    }

    #[tokio::test]
    async fn coalescing_stays_within_half_a_frame_and_skips_cancelled_callers() {
        let b = Batcher::new(2, 1 << 20, Handle::current());
        assert_eq!(b.max_bytes, 1 << 19, "half a frame");
        let (tx, _rx) = oneshot::channel();
        let mut q: VecDeque<Pending> = VecDeque::new();
        q.push_back(Pending {
            entries: vec![vec![1]],
            bytes: 1,
            tx,
        });
        let (tx, rx) = oneshot::channel();
        q.push_back(Pending {
            entries: vec![vec![2]],
            bytes: 1,
            tx,
        });
        drop(rx);
        let taken = b.take(&mut q);
        assert_eq!(taken.len(), 1, "a cancelled caller still queued is skipped");
        assert!(q.is_empty());
    }
}
