//! [`ClientConfig`]: deadlines, retry backoff and network bounds of a cluster client.
//!
//! Owns: the defaults and `validate()`. Never does: I/O.

use std::time::Duration;

use crate::api::{Error, ErrorKind};
use crate::net::NetConfig;

/// The cluster id clients assume when none is given (the CLI's `--cluster-id`, the Node
/// binding's `clusterId`); `examples/cluster/` configures its nodes with it.
pub const DEFAULT_CLUSTER_ID: u64 = 42;

/// How a [`Client`](super::Client) talks to the cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Network settings; `net.cluster_id` must match the servers'. `connect_timeout` bounds each
    /// connection attempt.
    pub net: NetConfig,
    /// Overall deadline of one call, retries included. When it passes the call fails with
    /// `Timeout` (or `Unavailable` if no server could be reached at all).
    pub request_timeout: Duration,
    /// How long one attempt waits for its reply before trying again (on another node when the
    /// target allows). At most `request_timeout`.
    pub attempt_timeout: Duration,
    /// Most attempts per call (≥ 1); the last error is returned when they run out.
    pub max_attempts: u32,
    /// First retry delay; doubles per retry up to `backoff_max`, each delay jittered into
    /// `[d/2, d]`. A `NotLeader` with a new hint is followed at once, without delay.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Capacity of a watch's event queue (pushes). A consumer that falls this far behind is
    /// resubscribed from its last delivered index + 1; no event is lost.
    pub watch_queue_depth: usize,
    /// Coalesce concurrent appends made through this client (and its clones) to the same
    /// partition and `ResponseConfig` into one request while earlier requests of that
    /// partition are in flight (natural batching, no added delay; `OneWay` appends are never
    /// coalesced). Each caller's batch keeps its identity in the journal. Needs servers that
    /// speak protocol ≥ 1.1; `false` sends one request per call, as before.
    pub append_coalescing: bool,
    /// With coalescing: most append requests in flight per (partition, `ResponseConfig`) at
    /// once (≥ 1). Appends made while that many are in flight wait and go out together in
    /// the next request. 1 maximises coalescing; more trades larger batches for overlap.
    /// A queued append waits for a slot before its own request starts, so its call can take
    /// up to about twice `request_timeout`.
    pub append_max_in_flight_per_partition: usize,
    /// Most memory the `OneWay` appends accepted and not yet stored may take (payload bytes
    /// plus a small fixed cost per entry and per batch; 1..=4 GiB − 1). An append that does
    /// not fit waits for room (back-pressure), up to `request_timeout`, then fails with
    /// `Timeout`.
    pub one_way_queue_bytes: usize,
    /// How long [`Client::shutdown`](super::Client::shutdown) (what the bindings' close and
    /// free call) waits for the accepted `OneWay` appends to be stored before it closes the
    /// connections anyway (> 0).
    pub one_way_flush_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `cluster_id`: 30 s per call, 10 s per attempt, 100 attempts,
    /// backoff 20 ms → 1 s, 1024-push watch queues, append coalescing with at most 2 requests
    /// in flight per partition, a 64 MiB one-way queue flushed for up to 5 s on shutdown.
    pub fn new(cluster_id: u64) -> Self {
        ClientConfig {
            net: NetConfig::new(cluster_id),
            request_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 100,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            watch_queue_depth: 1024,
            append_coalescing: true,
            append_max_in_flight_per_partition: 2,
            one_way_queue_bytes: 64 << 20,
            one_way_flush_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the deadline of one call. The attempt timeout follows it down (an attempt never
    /// outlives its call), so setting only the request timeout is always valid; set
    /// `attempt_timeout` after this to choose it too. Every binding's "request timeout"
    /// option goes through here.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
        self.attempt_timeout = self.attempt_timeout.min(timeout);
    }

    /// Checks every field; the `InvalidArgument` error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::new(ErrorKind::InvalidArgument, what));
        if let Err(e) = self.net.validate() {
            return bad(format!("client network configuration: {e}"));
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be positive".into());
        }
        if self.attempt_timeout.is_zero() || self.attempt_timeout > self.request_timeout {
            return bad(format!(
                "attempt_timeout {:?} must be positive and at most request_timeout {:?}",
                self.attempt_timeout, self.request_timeout
            ));
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1".into());
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return bad(format!(
                "backoff_initial {:?} must be positive and at most backoff_max {:?}",
                self.backoff_initial, self.backoff_max
            ));
        }
        if self.watch_queue_depth == 0 {
            return bad("watch_queue_depth must be at least 1".into());
        }
        if self.append_max_in_flight_per_partition == 0 {
            return bad("append_max_in_flight_per_partition must be at least 1".into());
        }
        if self.one_way_queue_bytes == 0 || self.one_way_queue_bytes > u32::MAX as usize {
            return bad(format!(
                "one_way_queue_bytes {} is outside 1..={}",
                self.one_way_queue_bytes,
                u32::MAX
            ));
        }
        if self.one_way_flush_timeout.is_zero() {
            return bad("one_way_flush_timeout must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_timeout_follows_a_smaller_request_timeout() {
        let mut c = ClientConfig::new(1);
        c.set_request_timeout(Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.attempt_timeout, Duration::from_secs(2));
        assert!(c.validate().is_ok());
        // A larger request timeout leaves the attempt timeout alone.
        let mut c = ClientConfig::new(1);
        c.set_request_timeout(Duration::from_secs(60));
        assert_eq!(c.attempt_timeout, ClientConfig::new(1).attempt_timeout);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn defaults_are_valid_and_each_bad_field_is_named() {
        assert!(ClientConfig::new(1).validate().is_ok());
        type Breaker = fn(&mut ClientConfig);
        let cases: [(&str, Breaker); 8] = [
            ("request_timeout", |c| c.request_timeout = Duration::ZERO),
            ("attempt_timeout", |c| {
                c.attempt_timeout = c.request_timeout * 2
            }),
            ("max_attempts", |c| c.max_attempts = 0),
            ("backoff_initial", |c| c.backoff_initial = Duration::ZERO),
            ("watch_queue_depth", |c| c.watch_queue_depth = 0),
            ("append_max_in_flight_per_partition", |c| {
                c.append_max_in_flight_per_partition = 0
            }),
            ("one_way_queue_bytes", |c| c.one_way_queue_bytes = 0),
            ("one_way_flush_timeout", |c| {
                c.one_way_flush_timeout = Duration::ZERO
            }),
        ];
        for (field, break_it) in cases {
            let mut c = ClientConfig::new(1);
            break_it(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains(field), "{e} should name {field}");
        }
    }
}
