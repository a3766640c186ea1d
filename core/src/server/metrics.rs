//! [`Metrics`]: one node's Prometheus metrics (through `prometheus-client`), the handles the
//! driver and the storage writer update, and their encoding for `GET /metrics`.
//!
//! Owns: the metric names and help texts, [`LatencyHistogram`] (lock-free) and [`CommitTimer`]
//! (proposal → applied on the leader). Never does: I/O, or reading the node's state — the
//! values that are a state rather than an event (term, lag, connections, …) are set from a
//! status taken when the scrape comes ([`Metrics::encode`]).
//!
//! Hot paths only touch atomics: a request is one `fetch_add`, a latency two. The scrape
//! takes a mutex of its own, so two scrapes never interleave their gauge updates.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::client::protocol::{NodeRole, NodeStatus, RequestBody};
use crate::raft::Index;

/// Upper bounds (seconds) of the latency buckets: 50 µs doubling to ~6.6 s, then +Inf.
const LATENCY_BUCKETS: usize = 18;
const FIRST_BUCKET_SECONDS: f64 = 50e-6;

/// Most proposals [`CommitTimer`] tracks at once; a proposal beyond it is not timed.
const MAX_TIMED_PROPOSALS: usize = 4096;

/// A latency histogram of atomics: observing is one bucket increment and one sum addition.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS + 1],
    sum_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

fn bound(i: usize) -> f64 {
    if i >= LATENCY_BUCKETS {
        f64::INFINITY
    } else {
        FIRST_BUCKET_SECONDS * f64::from(1u32 << i)
    }
}

impl LatencyHistogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = (0..LATENCY_BUCKETS)
            .find(|&i| s <= bound(i))
            .unwrap_or(LATENCY_BUCKETS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (bound(i), b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' sum, so the two always agree in one scrape.
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Times each proposal of the leader from `propose_batch` until it is applied: one
/// observation per write in the proposal (each client write waited that long).
#[derive(Default)]
pub(crate) struct CommitTimer {
    /// `(last index of the proposal, proposed at, writes in it)`, in log order.
    pending: VecDeque<(Index, Instant, u32)>,
}

impl CommitTimer {
    pub fn proposed(&mut self, last: Index, writes: usize, at: Instant) {
        if self.pending.len() < MAX_TIMED_PROPOSALS && writes > 0 {
            let writes = u32::try_from(writes).unwrap_or(u32::MAX);
            self.pending.push_back((last, at, writes));
        }
    }

    /// Everything up to `upto` is applied (at `now`).
    pub fn applied(&mut self, upto: Index, now: Instant, into: &LatencyHistogram) {
        while let Some(&(last, at, writes)) = self.pending.front() {
            if last > upto {
                break;
            }
            self.pending.pop_front();
            let d = now.saturating_duration_since(at);
            for _ in 0..writes {
                into.observe(d);
            }
        }
    }

    /// Leadership ended: what is pending may never be applied as proposed.
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabel {
    follower: String,
}

/// The request kinds counted in `journalkeeper_requests_total{kind}`.
const KINDS: [&str; 6] = ["append", "read", "kv_write", "kv_read", "watch", "admin"];

/// One node's metrics. See `docs/architecture/server.md` ("Monitoring") for the list.
pub(crate) struct Metrics {
    registry: Registry,
    /// One counter per [`KINDS`] entry (handles into the family, so counting takes no lock).
    requests: [Counter; KINDS.len()],
    leader_changes: Counter,
    pub commit_latency: std::sync::Arc<LatencyHistogram>,
    pub fsync_latency: std::sync::Arc<LatencyHistogram>,
    term: Gauge,
    is_leader: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    client_connections: Gauge,
    watches: Gauge,
    disk_free: Gauge,
    disk_total: Gauge,
    follower_lag: Family<FollowerLabel, Gauge>,
    scrape: Mutex<()>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A metric shared between the registry and its updater.
#[derive(Debug, Clone)]
struct Shared(std::sync::Arc<LatencyHistogram>);

impl EncodeMetric for Shared {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests_family = Family::<KindLabel, Counter>::default();
        let requests = KINDS.map(|kind| requests_family.get_or_create(&KindLabel { kind }).clone());
        registry.register(
            "journalkeeper_requests",
            "Client requests received, by kind (append, read, kv_write, kv_read, watch, admin)",
            requests_family,
        );
        let leader_changes = Counter::default();
        registry.register(
            "journalkeeper_leader_changes",
            "Times this node learned of a new leader (itself included)",
            leader_changes.clone(),
        );
        let commit_latency = std::sync::Arc::new(LatencyHistogram::default());
        registry.register(
            "journalkeeper_commit_latency_seconds",
            "On the leader: from proposing a client write to applying it, per write",
            Shared(commit_latency.clone()),
        );
        let fsync_latency = std::sync::Arc::new(LatencyHistogram::default());
        registry.register(
            "journalkeeper_fsync_latency_seconds",
            "The storage writer's group commit: one fdatasync of the journal",
            Shared(fsync_latency.clone()),
        );
        let mut gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let term = gauge("journalkeeper_term", "The node's current raft term");
        let is_leader = gauge("journalkeeper_is_leader", "1 on the leader, else 0");
        let commit_index = gauge("journalkeeper_commit_index", "Highest committed log index");
        let applied_index = gauge("journalkeeper_applied_index", "Highest applied log index");
        let client_connections = gauge(
            "journalkeeper_client_connections",
            "Open client connections",
        );
        let watches = gauge("journalkeeper_watches", "Open watches over all connections");
        let disk_free = gauge(
            "journalkeeper_disk_free_bytes",
            "Bytes available to the node on the data directory's filesystem",
        );
        let disk_total = gauge(
            "journalkeeper_disk_total_bytes",
            "Size of the data directory's filesystem",
        );
        let follower_lag = Family::<FollowerLabel, Gauge>::default();
        registry.register(
            "journalkeeper_follower_lag_entries",
            "On the leader: its last log index less each follower's match index",
            follower_lag.clone(),
        );
        Metrics {
            registry,
            requests,
            leader_changes,
            commit_latency,
            fsync_latency,
            term,
            is_leader,
            commit_index,
            applied_index,
            client_connections,
            watches,
            disk_free,
            disk_total,
            follower_lag,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one client request by its kind.
    pub fn count_request(&self, body: &RequestBody) {
        let kind = match body {
            RequestBody::Append { .. } | RequestBody::AppendBatches { .. } => 0,
            RequestBody::Get { .. }
            | RequestBody::MinIndices { .. }
            | RequestBody::MaxIndices { .. }
            | RequestBody::ListPartitions { .. }
            | RequestBody::QueryIndex { .. }
            | RequestBody::AppliedIndex => 1,
            RequestBody::KvWrite { .. } => 2,
            RequestBody::KvRead { .. } => 3,
            RequestBody::Watch { .. } | RequestBody::Unwatch { .. } => 4,
            _ => 5,
        };
        self.requests[kind].inc();
    }

    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// The text exposition (OpenMetrics), with the state gauges set from `status` (the
    /// node's detailed status, or `None` when the node did not answer: they keep their last
    /// values).
    pub fn encode(&self, status: Option<&NodeStatus>) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = status {
            self.term.set(gauge_value(s.term));
            self.is_leader.set(i64::from(s.role == NodeRole::Leader));
            self.commit_index.set(gauge_value(s.commit_index));
            self.applied_index.set(gauge_value(s.applied_index));
            if let Some(r) = &s.resources {
                self.client_connections
                    .set(gauge_value(r.client_connections));
                self.watches.set(gauge_value(r.watches));
            }
            self.follower_lag.clear();
            if let Some(d) = &s.detail {
                for f in &d.followers {
                    let label = FollowerLabel {
                        follower: f.node_id.to_string(),
                    };
                    self.follower_lag
                        .get_or_create(&label)
                        .set(gauge_value(f.lag));
                }
                if let Some(disk) = &d.disk {
                    self.disk_free.set(gauge_value(disk.free_bytes));
                    self.disk_total.set(gauge_value(disk.total_bytes));
                }
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String cannot fail; keep whatever was written.
            tracing::warn!("metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_hold_each_observation_once_and_the_sum_in_seconds() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50)); // exactly the first bound
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(60)); // past the last bound: +Inf
        assert_eq!(h.count(), 3);
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!((counts[0], counts[1], counts[LATENCY_BUCKETS]), (1, 1, 1));
        assert!(bound(LATENCY_BUCKETS - 1) > 6.0 && bound(LATENCY_BUCKETS).is_infinite());
        assert_eq!(h.sum_nanos.load(Ordering::Relaxed), 60_000_101_000);
    }

    #[test]
    fn the_commit_timer_observes_each_write_once_when_its_proposal_is_applied() {
        let (h, mut t, t0) = (
            LatencyHistogram::default(),
            CommitTimer::default(),
            Instant::now(),
        );
        t.proposed(5, 2, t0);
        t.proposed(9, 1, t0);
        t.proposed(12, 0, t0); // nothing to time
        t.applied(4, t0, &h);
        assert_eq!(h.count(), 0);
        t.applied(9, t0 + Duration::from_millis(3), &h);
        assert_eq!(h.count(), 3);
        t.proposed(14, 1, t0);
        t.clear();
        t.applied(20, t0, &h);
        assert_eq!(h.count(), 3, "a cleared proposal is never observed");
        for i in 0..MAX_TIMED_PROPOSALS as u64 + 10 {
            t.proposed(i + 100, 1, t0);
        }
        t.applied(u64::MAX, t0, &h);
        assert_eq!(h.count(), 3 + MAX_TIMED_PROPOSALS as u64, "bounded");
    }

    #[test]
    fn the_exposition_names_every_metric_and_sets_gauges_from_the_status() {
        let m = Metrics::new();
        m.count_request(&RequestBody::AppliedIndex);
        m.count_request(&RequestBody::Status);
        m.fsync_latency.observe(Duration::from_millis(1));
        let text = m.encode(None);
        for name in [
            "journalkeeper_requests_total{kind=\"read\"} 1",
            "journalkeeper_requests_total{kind=\"admin\"} 1",
            "journalkeeper_requests_total{kind=\"append\"} 0",
            "journalkeeper_fsync_latency_seconds_count 1",
            "journalkeeper_commit_latency_seconds_count 0",
            "journalkeeper_leader_changes_total 0",
            "journalkeeper_term 0",
            "# EOF",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        let status = NodeStatus {
            node_id: 1,
            role: NodeRole::Leader,
            term: 7,
            leader: None,
            commit_index: 3,
            applied_index: 3,
            last_index: 3,
            configuration: Default::default(),
            resources: None,
            detail: Some(Box::new(crate::client::protocol::NodeDetail {
                followers: vec![crate::client::protocol::FollowerStatus {
                    node_id: 2,
                    next_index: 2,
                    match_index: 1,
                    lag: 2,
                    last_heard_ms: 5,
                }],
                ..Default::default()
            })),
        };
        let text = m.encode(Some(&status));
        assert!(text.contains("journalkeeper_term 7"), "{text}");
        assert!(text.contains("journalkeeper_is_leader 1"), "{text}");
        assert!(
            text.contains("journalkeeper_follower_lag_entries{follower=\"2\"} 2"),
            "{text}"
        );
        let mut gone = status;
        gone.detail = None;
        let text = m.encode(Some(&gone));
        assert!(
            !text.contains("follower=\"2\""),
            "a follower no longer tracked: {text}"
        );
    }
}
