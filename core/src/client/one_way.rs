//! [`OneWay`]: the sender of `ResponseConfig::OneWay` appends.
//!
//! Why: `OneWay` means *the caller gets no reply*, not "dropped when the first node tried is
//! a follower" or "dropped when the client closes before its frame was written". So the
//! caller's `append` only queues the batch here (a bounded queue: back-pressure when full) and
//! returns; a task per partition sends the queued batches to the **leader** like any other
//! write — through [`Cluster::call`]: `NotLeader` hints followed, lost connections and
//! timeouts retried, each request under ONE write session so a retry is applied once — at
//! `Replication`, the level at which the leader answers "committed on a majority". Nothing
//! of that reply reaches the caller; it only ends the batch's life in the queue.
//!
//! Why `Replication` on the wire rather than `OneWay` or `Receive`: a wire-level `OneWay`
//! has no reply, so a follower or a lost connection cannot tell the client to retry; a
//! `Receive` reply comes before the entry is committed, so a leader crash right after it
//! would still lose the entry and a STRICT read right after [`OneWay::flush`] might not see
//! it. With `Replication`, once a batch leaves the queue it is committed (or was finally
//! given up, logged and counted), and `flush` means "everything accepted is committed".
//!
//! Order: one request in flight per partition, so one client's `OneWay` batches to one
//! partition are stored in the order they were accepted (a retry is sent before the next
//! request). Coalescing: a request carries every batch queued for its partition, in order,
//! within the append bounds and half a frame (`AppendBatches`; one batch per request when
//! `append_coalescing` is off).
//!
//! Bounds: the queue holds at most `one_way_queue_bytes` (payload + a fixed cost per entry
//! and per batch, so empty entries count too); an append that does not fit waits for room up
//! to `request_timeout`, then fails with `Timeout`. A batch leaves the queue — and frees its
//! room — when its request is answered or finally fails (after the usual retry rules).
//!
//! Never does: argument checks (the journal facade did them), routing or retry policy (the
//! cluster layer's), or anything for other levels (those use the batcher or a plain call).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::warn;

use super::batcher::take_within;
use super::cluster::{Cluster, Target, closed_error};
use super::protocol::{MAX_APPEND_BYTES, MAX_APPEND_ENTRIES, ReplyBody, RequestBody};
use super::unexpected;
use crate::api::{Error, ErrorKind, ResponseConfig};

/// Queue cost of one entry beyond its payload (its `Vec` header).
const ENTRY_COST: usize = std::mem::size_of::<Vec<u8>>();
/// Queue cost of one batch beyond its entries.
const BATCH_COST: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One accepted batch; its permit is the room it takes in the queue.
struct Queued {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    room: OwnedSemaphorePermit,
}

struct State {
    /// Partition → batches not yet sent. A partition is present exactly while its sender
    /// task runs.
    lanes: HashMap<u16, VecDeque<Queued>>,
    /// `false` once the client started closing: later appends fail with `Closed`.
    accepting: bool,
}

/// The one-way queue of one client (shared by its clones).
pub(crate) struct OneWay {
    state: Mutex<State>,
    room: Arc<Semaphore>,
    capacity: usize,
    /// Most payload bytes per request (half a frame, at most the protocol bound).
    max_bytes: usize,
    /// Most batches per request (1 without `append_coalescing`).
    max_batches: usize,
    runtime: Handle,
    /// Batches accepted and not yet finished (stored or given up).
    pending: watch::Sender<u64>,
    requests: AtomicU64,
    stored: AtomicU64,
    dropped: AtomicU64,
    /// Batches given up since the last `flush` reported them, and the last reason.
    unreported: Mutex<(u64, Option<Error>)>,
}

/// What a sender task owns; if the task is dropped unfinished (its runtime shut down), the
/// lane's queue is given up and counted, so `flush` does not wait for a task that is gone.
struct LaneTask {
    one_way: Arc<OneWay>,
    partition: u16,
    finished: bool,
}

impl Drop for LaneTask {
    fn drop(&mut self) {
        if !self.finished {
            let left = lock(&self.one_way.state).lanes.remove(&self.partition);
            let n = left.map_or(0, |q| q.len() as u64);
            let e = Error::new(
                ErrorKind::Closed,
                "the client's runtime stopped before the one-way appends were sent",
            );
            self.one_way.finish(0, n, Some(e));
        }
    }
}

impl OneWay {
    pub fn new(capacity: usize, max_frame_size: u32, coalescing: bool, runtime: Handle) -> OneWay {
        let half_frame = usize::try_from(max_frame_size / 2).unwrap_or(usize::MAX);
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        OneWay {
            state: Mutex::new(State {
                lanes: HashMap::new(),
                accepting: true,
            }),
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_bytes: MAX_APPEND_BYTES.min(half_frame),
            max_batches: if coalescing { MAX_APPEND_ENTRIES } else { 1 },
            runtime,
            pending: watch::channel(0).0,
            requests: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: Mutex::new((0, None)),
        }
    }

    /// Append requests sent for one-way batches (a retry is the same request).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Batches accepted and not yet stored or given up.
    pub fn pending(&self) -> u64 {
        *self.pending.borrow()
    }

    /// Batches stored (acknowledged by the leader as committed) so far.
    #[cfg(test)]
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Batches given up so far (every retry failed, the client was closed, or refused).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Later appends fail with `Closed`; what is queued is still sent.
    pub fn stop_accepting(&self) {
        lock(&self.state).accepting = false;
    }

    /// Queues `entries` (already checked against the bounds) for `partition`. Waits for room
    /// up to `request_timeout` (then `Timeout`); `Closed` once the client is closing.
    pub async fn append(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        partition: u16,
        entries: Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        if cluster.is_closed() || !lock(&self.state).accepting {
            return Err(closed_error());
        }
        let bytes: usize = entries.iter().map(Vec::len).sum();
        let cost = bytes
            .saturating_add(entries.len().saturating_mul(ENTRY_COST))
            .saturating_add(BATCH_COST)
            .min(self.capacity);
        // `cost` ≤ capacity ≤ MAX_PERMITS < u32::MAX.
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let room = match self.room.clone().try_acquire_many_owned(cost) {
            Ok(room) => room,
            Err(_) => {
                let timeout = cluster.config.request_timeout;
                let wait = self.room.clone().acquire_many_owned(cost);
                tokio::select! {
                    r = tokio::time::timeout(timeout, wait) => match r {
                        Ok(Ok(room)) => room,
                        Ok(Err(_)) => return Err(closed_error()),
                        Err(_) => return Err(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "the one-way queue stayed full ({} bytes of accepted appends \
                                 not yet stored, one_way_queue_bytes) for {timeout:?}: the \
                                 cluster is not keeping up or has no leader",
                                self.capacity
                            ),
                        )),
                    },
                    _ = cluster.closed() => return Err(closed_error()),
                }
            }
        };
        let start = {
            let mut state = lock(&self.state);
            if !state.accepting || cluster.is_closed() {
                return Err(closed_error());
            }
            self.pending.send_modify(|p| *p += 1);
            let fresh = !state.lanes.contains_key(&partition);
            state.lanes.entry(partition).or_default().push_back(Queued {
                entries,
                bytes,
                room,
            });
            fresh
        };
        if start {
            let task = LaneTask {
                one_way: self.clone(),
                partition,
                finished: false,
            };
            self.runtime.spawn(run(task, cluster.clone()));
        }
        Ok(())
    }

    /// Waits until every accepted batch is stored or given up, at most `timeout`. `Timeout`
    /// (naming how many are left) when it passes; otherwise the error of the batches given up
    /// since the previous `flush` (how many, and the last reason), if any.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let mut rx = self.pending.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|p| *p == 0))
            .await
            .is_err()
        {
            let left = *rx.borrow();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("{left} one-way append batch(es) not yet stored after waiting {timeout:?}"),
            ));
        }
        let (n, last) = std::mem::take(&mut *lock(&self.unreported));
        match last {
            Some(e) if n > 0 => Err(Error::new(
                e.kind,
                format!("{n} one-way append batch(es) were given up; the last because: {e}"),
            )),
            _ => Ok(()),
        }
    }

    /// The next request's batches of `partition`, or `None` (and the lane removed) when its
    /// queue is empty.
    fn take(&self, partition: u16) -> Option<Vec<Queued>> {
        let mut state = lock(&self.state);
        let queue = state.lanes.get_mut(&partition)?;
        let max_entries = MAX_APPEND_ENTRIES;
        let mut batch = take_within(
            queue,
            |q| (q.entries.len(), q.bytes),
            max_entries,
            self.max_bytes,
        );
        // `take_within` bounds entries and bytes; `max_batches` bounds the batch count.
        while batch.len() > self.max_batches {
            if let Some(back) = batch.pop() {
                queue.push_front(back);
            }
        }
        if batch.is_empty() {
            state.lanes.remove(&partition);
            return None;
        }
        Some(batch)
    }

    async fn send(&self, cluster: &Cluster, partition: u16, batch: Vec<Queued>) {
        let n = batch.len() as u64;
        let session = cluster.begin_write();
        // The room is released when `batch` drops, after the request ended.
        let mut batches: Vec<Vec<Vec<u8>>> = Vec::with_capacity(batch.len());
        let mut rooms = Vec::with_capacity(batch.len());
        for q in batch {
            batches.push(q.entries);
            rooms.push(q.room);
        }
        let body = if batches.len() == 1 {
            RequestBody::Append {
                partition,
                entries: batches.pop().unwrap_or_default(),
                response: ResponseConfig::Replication,
                session: session.id,
            }
        } else {
            RequestBody::AppendBatches {
                partition,
                batches,
                response: ResponseConfig::Replication,
                session: session.id,
            }
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let result = cluster.call(Target::Leader, body).await;
        drop(session);
        drop(rooms);
        match result {
            Ok(ReplyBody::Appended { .. }) => self.finish(n, 0, None),
            Ok(other) => self.finish(0, n, Some(unexpected("Append", &other))),
            Err(e) => {
                warn!(partition, batches = n, error = %e, "one-way appends given up");
                self.finish(0, n, Some(e));
            }
        }
    }

    /// Accounts for `stored` + `dropped` batches that left the queue.
    fn finish(&self, stored: u64, dropped: u64, error: Option<Error>) {
        self.stored.fetch_add(stored, Ordering::Relaxed);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
            let mut u = lock(&self.unreported);
            u.0 += dropped;
            if error.is_some() {
                u.1 = error;
            }
        }
        self.pending
            .send_modify(|p| *p = p.saturating_sub(stored + dropped));
    }
}

/// The sender of one partition: one request at a time until its queue is empty.
async fn run(mut task: LaneTask, cluster: Arc<Cluster>) {
    let one_way = task.one_way.clone();
    while let Some(batch) = one_way.take(task.partition) {
        one_way.send(&cluster, task.partition, batch).await;
    }
    task.finished = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;

    fn cluster() -> Arc<Cluster> {
        let mut config = ClientConfig::new(1);
        config.request_timeout = Duration::from_millis(200);
        config.attempt_timeout = Duration::from_millis(100);
        config.backoff_initial = Duration::from_millis(10);
        config.backoff_max = Duration::from_millis(20);
        // Nothing listens on port 1: every request fails to connect.
        Arc::new(Cluster::new(vec!["127.0.0.1:1".into()], config, 7))
    }

    #[test]
    fn a_full_queue_pushes_back_until_request_timeout() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The sender tasks go to a runtime nobody drives: the room is never freed.
        let idle = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ow = Arc::new(OneWay::new(1000, 1 << 20, true, idle.handle().clone()));
        rt.block_on(async {
            let c = cluster();
            // 600 bytes + costs fit once, not twice.
            ow.append(&c, 0, vec![vec![0; 600]]).await.unwrap();
            let started = tokio::time::Instant::now();
            let e = ow.append(&c, 0, vec![vec![0; 600]]).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
            assert!(e.message.contains("one_way_queue_bytes"), "{e}");
            assert!(started.elapsed() >= c.config.request_timeout);
            assert_eq!(ow.pending(), 1, "the refused append was not queued");
        });
        drop(idle);
        assert_eq!(
            ow.pending(),
            0,
            "a sender dropped with its runtime gives its queue up"
        );
        assert_eq!(ow.dropped(), 1);
    }

    #[tokio::test]
    async fn a_batch_given_up_is_counted_and_reported_by_flush_once() {
        let c = cluster();
        let ow = Arc::new(OneWay::new(1000, 1 << 20, true, Handle::current()));
        ow.append(&c, 0, vec![vec![0; 600]]).await.unwrap();
        // The unreachable cluster makes the sender give the batch up: flush says so.
        let e = ow.flush(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(ow.pending(), 0);
        assert_eq!((ow.stored(), ow.dropped()), (0, 1));
        assert!(
            e.message
                .contains("1 one-way append batch(es) were given up"),
            "{e}"
        );
        // Reported once; the room is free again.
        ow.flush(Duration::from_secs(1)).await.unwrap();
        assert_eq!(ow.room.available_permits(), 1000);
    }

    #[tokio::test]
    async fn flush_is_bounded_and_closing_stops_accepting() {
        let mut config = ClientConfig::new(1);
        config.request_timeout = Duration::from_secs(30);
        config.attempt_timeout = Duration::from_secs(1);
        let c = Arc::new(Cluster::new(vec!["127.0.0.1:1".into()], config, 7));
        let ow = Arc::new(OneWay::new(1 << 20, 1 << 20, true, Handle::current()));
        ow.append(&c, 3, vec![b"x".to_vec()]).await.unwrap();
        let started = tokio::time::Instant::now();
        let e = ow.flush(Duration::from_millis(100)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(
            e.message
                .contains("1 one-way append batch(es) not yet stored"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        ow.stop_accepting();
        let e = ow.append(&c, 3, vec![b"y".to_vec()]).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Closed);
        // Closing the client ends the retries of what is queued: given up, and counted.
        c.close();
        let e = ow.flush(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Closed, "{e}");
        assert_eq!(ow.dropped(), 1);
    }

    #[test]
    fn a_request_takes_at_most_max_batches() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ow = OneWay::new(1 << 20, 1 << 20, false, rt.handle().clone());
        let room = Arc::new(Semaphore::new(10));
        let q = |n: u8| Queued {
            entries: vec![vec![n]],
            bytes: 1,
            room: room.clone().try_acquire_owned().unwrap(),
        };
        lock(&ow.state)
            .lanes
            .insert(4, [q(1), q(2), q(3)].into_iter().collect());
        for want in [1u8, 2, 3] {
            let b = ow.take(4).unwrap();
            assert_eq!(b.len(), 1, "no coalescing without append_coalescing");
            assert_eq!(b[0].entries, vec![vec![want]], "in order");
        }
        assert!(ow.take(4).is_none());
        assert!(!lock(&ow.state).lanes.contains_key(&4), "lane ends");
    }
}
