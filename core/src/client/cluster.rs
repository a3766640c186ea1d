//! The cluster layer: known addresses, one [`NodeConn`] per node, leader tracking, the
//! client's applied-index floor, write sessions, and the retry loop every call goes through.
//!
//! Owns: *where* a request goes and *whether* it is tried again. Never does: encoding
//! (that is [`super::protocol`] and [`crate::net`]) or interpreting successful replies (the
//! journal / KV / admin facades do that).
//!
//! Retry rules (see `docs/architecture/client.md`): connection failures, attempt timeouts,
//! `Unavailable`, `NotLeader` and "not yet" replies are retried until `request_timeout` or
//! `max_attempts`; a `NotLeader` with a new hint is followed at once; every other error is
//! final. After a failure the next target is tried at once if it has not failed since the
//! last backoff; the client backs off only when it would go back to one that did. An address
//! whose connect failed is *suspect* for [`SUSPECT_FOR`]: rotation skips it while another is
//! not, and a hint naming it is not followed (a follower names its dead leader until its own
//! election timer fires). A retried request is the same request: a write keeps its
//! [`RequestId`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::debug;

use super::ClientConfig;
use super::conn::{Lost, NodeConn, Reply, WatchPush};
use super::protocol::{EventOptions, ReadAt, ReplyBody, RequestBody, is_not_yet};
use crate::api::{Error, ErrorKind, QueryConsistency};
use crate::state::session::RequestId;
use crate::state::watch::WatchFilter;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn closed_error() -> Error {
    Error::new(ErrorKind::Closed, "the client is closed")
}

/// Which node may serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Writes, STRICT reads, `AppliedIndex`: the leader, found by following hints.
    Leader,
    /// SEQUENTIAL / NONE reads and watches: any node (sticky to the last one that answered).
    Any,
    /// Exactly this node (admin status).
    Node(String),
}

/// What one attempt does on a connection.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Request(RequestBody),
    Watch {
        filter: WatchFilter,
        from_index: u64,
    },
    /// An event subscription (protocol 1.3; with options 1.8).
    Events(EventOptions),
}

/// A successful watch open.
pub(crate) struct WatchSub {
    pub conn: Arc<NodeConn>,
    pub watch_id: u64,
    pub rx: mpsc::Receiver<WatchPush>,
}

/// Write sessions: sequence numbers and the lowest one still waiting for its reply.
#[derive(Debug)]
struct Sessions {
    client_id: u64,
    state: Mutex<(u64, BTreeSet<u64>)>,
}

/// Keeps a write's sequence number "in flight" until the call ends (reply, final error or
/// cancellation), so `first_unacked` never passes a write that may still be retried.
pub(crate) struct SessionGuard<'a> {
    sessions: &'a Sessions,
    pub id: RequestId,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        lock(&self.sessions.state).1.remove(&self.id.seq);
    }
}

impl Sessions {
    fn begin(&self) -> SessionGuard<'_> {
        let mut state = lock(&self.state);
        state.0 += 1;
        let seq = state.0;
        state.1.insert(seq);
        let first_unacked = *state.1.first().unwrap_or(&seq);
        SessionGuard {
            sessions: self,
            id: RequestId {
                client_id: self.client_id,
                seq,
                first_unacked,
            },
        }
    }
}

/// How long an address whose connect failed (refused, timed out, handshake failed) is
/// avoided: skipped by rotation while another address is not suspect, its hints not followed.
/// A successful connect clears it. About an election (`[T, 2T)` with the default `T` = 500 ms).
pub(crate) const SUSPECT_FOR: Duration = Duration::from_secs(1);

/// A recent connect failure.
struct Suspect {
    since: Instant,
    reason: Error,
}

/// The connection to one node, behind an async lock so only one task connects at a time.
type ConnSlot = Arc<tokio::sync::Mutex<Option<Arc<NodeConn>>>>;

/// Shared state of one client (all clones of a `Client` share it).
pub(crate) struct Cluster {
    pub config: ClientConfig,
    pub client_id: u64,
    addrs: Mutex<Vec<String>>,
    conns: Mutex<HashMap<String, ConnSlot>>,
    /// Every connection made, so `close` reaches those held by watch streams or by a slot
    /// that is locked at that moment.
    made: Mutex<Vec<Weak<NodeConn>>>,
    leader: Mutex<Option<String>>,
    suspects: Mutex<HashMap<String, Suspect>>,
    read_node: Mutex<Option<String>>,
    cursor: AtomicUsize,
    applied_floor: AtomicU64,
    sessions: Sessions,
    closed: watch::Sender<bool>,
    jitter: AtomicU64,
}

enum Failure {
    /// Try again (after a backoff unless `now`), remembering `error`.
    Retry { error: Error, now: bool },
    /// Give up with this error.
    Final(Error),
}

impl Cluster {
    pub fn new(addrs: Vec<String>, config: ClientConfig, client_id: u64) -> Self {
        Cluster {
            config,
            client_id,
            addrs: Mutex::new(addrs),
            conns: Mutex::new(HashMap::new()),
            made: Mutex::new(Vec::new()),
            leader: Mutex::new(None),
            suspects: Mutex::new(HashMap::new()),
            read_node: Mutex::new(None),
            cursor: AtomicUsize::new(0),
            applied_floor: AtomicU64::new(0),
            sessions: Sessions {
                client_id,
                state: Mutex::new((0, BTreeSet::new())),
            },
            closed: watch::channel(false).0,
            jitter: AtomicU64::new(client_id | 1),
        }
    }

    pub fn addrs(&self) -> Vec<String> {
        lock(&self.addrs).clone()
    }

    pub fn leader(&self) -> Option<String> {
        lock(&self.leader).clone()
    }

    /// The highest applied index seen in any reply; SEQUENTIAL reads send it as `min_applied`.
    pub fn applied_floor(&self) -> u64 {
        self.applied_floor.load(Ordering::SeqCst)
    }

    pub fn raise_floor(&self, index: u64) {
        self.applied_floor.fetch_max(index, Ordering::SeqCst);
    }

    /// The target and read level for a read at `consistency`.
    pub fn read_at(&self, consistency: QueryConsistency) -> (Target, ReadAt) {
        let min_applied = match consistency {
            QueryConsistency::None => 0,
            _ => self.applied_floor(),
        };
        let target = match consistency {
            QueryConsistency::Strict => Target::Leader,
            _ => Target::Any,
        };
        (
            target,
            ReadAt {
                consistency,
                min_applied,
            },
        )
    }

    /// A new write session id, in flight until the guard drops.
    pub fn begin_write(&self) -> SessionGuard<'_> {
        self.sessions.begin()
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Marks the client closed, wakes every waiting call with `Closed`, drops all connections.
    pub fn close(&self) {
        self.closed.send_replace(true);
        lock(&self.conns).clear();
        for conn in lock(&self.made).drain(..).filter_map(|w| w.upgrade()) {
            conn.close();
        }
    }

    /// Resolves when the client is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// The live connection to `addr`, connecting if needed (one connect at a time per node).
    /// `WrongCluster` when the node refuses our cluster id, `Closed` after `close`, else
    /// `Unavailable`.
    pub async fn conn(&self, addr: &str) -> Result<Arc<NodeConn>, Error> {
        if self.is_closed() {
            return Err(closed_error());
        }
        let slot = lock(&self.conns)
            .entry(addr.to_string())
            .or_default()
            .clone();
        let asked = Instant::now();
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.is_dead()
        {
            return Ok(conn.clone());
        }
        // The task that held the slot while we waited just failed to connect: do not wait
        // out another connect timeout right after it.
        if let Some(s) = lock(&self.suspects).get(addr)
            && s.since >= asked
        {
            return Err(s.reason.clone());
        }
        let conn = match NodeConn::connect(addr, self.client_id, &self.config.net).await {
            Ok(conn) => Arc::new(conn),
            Err(reason) => {
                lock(&self.suspects).insert(
                    addr.to_string(),
                    Suspect {
                        since: Instant::now(),
                        reason: reason.clone(),
                    },
                );
                return Err(reason);
            }
        };
        lock(&self.suspects).remove(addr);
        *slot = Some(conn.clone());
        {
            let mut made = lock(&self.made);
            made.retain(|w| w.strong_count() > 0);
            made.push(Arc::downgrade(&conn));
        }
        if self.is_closed() {
            conn.close();
            return Err(closed_error());
        }
        Ok(conn)
    }

    fn add_addr(&self, addr: &str) {
        let mut addrs = lock(&self.addrs);
        if !addrs.iter().any(|a| a == addr) {
            addrs.push(addr.to_string());
        }
    }

    /// Whether a connect to `addr` failed less than [`SUSPECT_FOR`] ago.
    fn is_suspect(&self, addr: &str) -> bool {
        lock(&self.suspects)
            .get(addr)
            .is_some_and(|s| s.since.elapsed() < SUSPECT_FOR)
    }

    /// Starts rotation at `addr` (the first node `connect` reached).
    pub fn prefer(&self, addr: &str) {
        let addrs = lock(&self.addrs);
        if let Some(i) = addrs.iter().position(|a| a == addr) {
            self.cursor.store(i, Ordering::Relaxed);
        }
    }

    fn pick(&self, target: &Target) -> String {
        // The cursor's address, or the first after it that is not suspect.
        let rotate = || {
            let addrs = lock(&self.addrs).clone();
            let start = self.cursor.load(Ordering::Relaxed);
            (0..addrs.len())
                .map(|k| &addrs[(start + k) % addrs.len()])
                .find(|a| !self.is_suspect(a))
                .unwrap_or(&addrs[start % addrs.len()])
                .clone()
        };
        match target {
            Target::Node(addr) => addr.clone(),
            Target::Leader => self.leader().unwrap_or_else(rotate),
            Target::Any => lock(&self.read_node).clone().unwrap_or_else(rotate),
        }
    }

    /// After a failure at `addr`: forget it as leader / read node and move the cursor on.
    fn avoid(&self, addr: &str) {
        let mut leader = lock(&self.leader);
        if leader.as_deref() == Some(addr) {
            *leader = None;
        }
        drop(leader);
        let mut read = lock(&self.read_node);
        if read.as_deref() == Some(addr) {
            *read = None;
        }
        drop(read);
        let addrs = lock(&self.addrs);
        let cur = self.cursor.load(Ordering::Relaxed);
        if addrs[cur % addrs.len()] == addr {
            self.cursor.store(cur.wrapping_add(1), Ordering::Relaxed);
        }
    }

    fn backoff(&self, previous: Duration) -> (Duration, Duration) {
        // xorshift64*: reproducible per client id, spreads clients apart.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        let d = previous.min(self.config.backoff_max);
        let half = d / 2;
        let extra = (half.as_nanos() as u64).checked_mul(x % 1024).unwrap_or(0) / 1024;
        let delay = half + Duration::from_nanos(extra);
        let next = (d * 2).min(self.config.backoff_max);
        (delay, next)
    }

    /// Runs a request under the retry rules and returns the successful reply body.
    pub async fn call(&self, target: Target, body: RequestBody) -> Result<ReplyBody, Error> {
        self.run(target, Op::Request(body), self.timeouts())
            .await
            .map(|(b, _)| b)
    }

    /// As [`Cluster::call`], for a request the server may take up to `work` to answer (an admin
    /// change): each attempt waits that long plus the usual attempt timeout.
    pub async fn call_long(
        &self,
        target: Target,
        body: RequestBody,
        work: Duration,
    ) -> Result<ReplyBody, Error> {
        let t = self.timeouts();
        let t = Timeouts {
            request: t.request.max(work + t.attempt),
            attempt: work + t.attempt,
        };
        self.run(target, Op::Request(body), t).await.map(|(b, _)| b)
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            request: self.config.request_timeout,
            attempt: self.config.attempt_timeout,
        }
    }

    /// Opens an event subscription on any node under the retry rules.
    pub async fn open_events(&self, options: EventOptions) -> Result<WatchSub, Error> {
        let (_, sub) = self
            .run(Target::Any, Op::Events(options), self.timeouts())
            .await?;
        sub.ok_or_else(|| Error::new(ErrorKind::Internal, "subscription opened without a queue"))
    }

    /// Opens a watch under the retry rules.
    pub async fn open_watch(
        &self,
        filter: WatchFilter,
        from_index: u64,
    ) -> Result<(ReplyBody, WatchSub), Error> {
        let (body, sub) = self
            .run(
                Target::Any,
                Op::Watch { filter, from_index },
                self.timeouts(),
            )
            .await?;
        sub.map(|s| (body, s))
            .ok_or_else(|| Error::new(ErrorKind::Internal, "watch opened without a queue"))
    }

    async fn run(
        &self,
        target: Target,
        op: Op,
        t: Timeouts,
    ) -> Result<(ReplyBody, Option<WatchSub>), Error> {
        if self.is_closed() {
            return Err(closed_error());
        }
        tokio::select! {
            r = self.run_inner(target, op, t) => r,
            _ = self.closed() => Err(closed_error()),
        }
    }

    async fn run_inner(
        &self,
        target: Target,
        op: Op,
        t: Timeouts,
    ) -> Result<(ReplyBody, Option<WatchSub>), Error> {
        let cfg = &self.config;
        let deadline = Instant::now() + t.request;
        let min_applied = match &op {
            Op::Request(body) => body.read_at().map(|r| r.min_applied),
            Op::Watch { .. } | Op::Events(_) => None,
        };
        let mut delay = cfg.backoff_initial;
        let mut reached_any = false;
        let mut connect_errors = Vec::new();
        let mut last: Option<Error> = None;
        // Addresses that failed since the last backoff.
        let mut tried: Vec<String> = Vec::new();
        for attempt in 1..=cfg.max_attempts {
            let addr = self.pick(&target);
            let attempt_deadline = deadline.min(Instant::now() + t.attempt);
            let outcome = tokio::time::timeout_at(attempt_deadline, self.attempt(&addr, &op)).await;
            let failure = match outcome {
                Err(_) => {
                    reached_any = true;
                    self.avoid(&addr);
                    Failure::Retry {
                        error: Error::new(
                            ErrorKind::Timeout,
                            format!("no reply from {addr} within {:?}", t.attempt),
                        ),
                        now: true,
                    }
                }
                // A node of another cluster: a configuration error, retrying cannot help.
                Ok(Err(AttemptError::Connect(e))) if e.kind == ErrorKind::WrongCluster => {
                    Failure::Final(e)
                }
                Ok(Err(AttemptError::Connect(e))) => {
                    let reason = e.message;
                    self.avoid(&addr);
                    if !connect_errors.contains(&reason) && connect_errors.len() < 8 {
                        connect_errors.push(reason.clone());
                    }
                    Failure::Retry {
                        error: Error::new(ErrorKind::Unavailable, reason),
                        now: false,
                    }
                }
                Ok(Err(AttemptError::Lost(Lost(reason)))) => {
                    reached_any = true;
                    self.avoid(&addr);
                    Failure::Retry {
                        error: Error::new(
                            ErrorKind::Unavailable,
                            format!("connection to {addr} lost: {reason}"),
                        ),
                        now: false,
                    }
                }
                Ok(Ok((reply, sub))) => {
                    reached_any = true;
                    self.raise_floor(reply.applied_index);
                    match reply.result {
                        Ok(body) => {
                            match target {
                                Target::Leader => *lock(&self.leader) = Some(addr),
                                Target::Any => *lock(&self.read_node) = Some(addr),
                                Target::Node(_) => {}
                            }
                            return Ok((body, sub));
                        }
                        Err(e) => {
                            self.classify(&target, &addr, min_applied, reply.applied_index, e)
                        }
                    }
                }
            };
            let (error, mut now) = match failure {
                Failure::Final(e) => return Err(e),
                Failure::Retry { error, now } => (error, now),
            };
            // Another node may answer at once (after a dead node, a follower without a usable
            // hint): back off only when going back to one that failed since the last backoff
            // — also when a hint names it (a follower still naming a leader that was removed
            // or answers `Unavailable`). A followed hint is no failure of the node that gave it.
            if !now && !tried.contains(&addr) {
                tried.push(addr.clone());
            }
            now = !tried.contains(&self.pick(&target));
            debug!(node = %addr, attempt, reason = %error, "retrying");
            last = Some(error);
            if self.is_closed() {
                return Err(closed_error());
            }
            if Instant::now() >= deadline {
                break;
            }
            if attempt == cfg.max_attempts {
                return Err(last.unwrap_or_else(|| Error::new(ErrorKind::Internal, "no attempt")));
            }
            if !now {
                let (d, next) = self.backoff(delay);
                delay = next;
                if Instant::now() + d >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                tokio::time::sleep(d).await;
                tried.clear();
            }
        }
        if !reached_any {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "no server reachable within {:?}: {}",
                    t.request,
                    connect_errors.join("; ")
                ),
            ));
        }
        if Instant::now() >= deadline {
            let detail = last.map(|e| format!(" (last: {e})")).unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("no answer within {:?}{detail}", t.request),
            ));
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Internal, "no attempt was made")))
    }

    fn classify(
        &self,
        target: &Target,
        addr: &str,
        min_applied: Option<u64>,
        applied_index: u64,
        e: Error,
    ) -> Failure {
        if let Some(min) = min_applied
            && is_not_yet(min, applied_index)
        {
            // The node is behind this client's floor: try later or elsewhere.
            if *target == Target::Any {
                self.avoid(addr);
            }
            return Failure::Retry {
                error: e,
                now: false,
            };
        }
        match e.kind {
            ErrorKind::NotLeader if *target == Target::Leader => match e.leader_hint.as_deref() {
                // A hint naming a node we just failed to reach is stale (its followers name a
                // dead leader until their election timers fire): treat it as no hint.
                Some(hint) if hint != addr && !self.is_suspect(hint) => {
                    self.add_addr(hint);
                    *lock(&self.leader) = Some(hint.to_string());
                    Failure::Retry {
                        error: e,
                        now: true,
                    }
                }
                _ => {
                    self.avoid(addr);
                    Failure::Retry {
                        error: e,
                        now: false,
                    }
                }
            },
            ErrorKind::Unavailable => {
                self.avoid(addr);
                Failure::Retry {
                    error: e,
                    now: false,
                }
            }
            _ => Failure::Final(e),
        }
    }

    async fn attempt(
        &self,
        addr: &str,
        op: &Op,
    ) -> Result<(Reply, Option<WatchSub>), AttemptError> {
        let conn = self.conn(addr).await.map_err(AttemptError::Connect)?;
        match op {
            // A 1.0 node cannot decode it (it would drop the connection): say so, finally.
            Op::Request(RequestBody::AppendBatches { .. }) if conn.version.minor < 1 => Ok(lacks(
                addr,
                &conn,
                "AppendBatches (1.1); set ClientConfig::append_coalescing = false",
            )),
            Op::Request(
                RequestBody::UpdateVoters { .. }
                | RequestBody::TransferLeader { .. }
                | RequestBody::SetPreferredLeader { .. }
                | RequestBody::TakeSnapshot
                | RequestBody::ListSnapshots
                | RequestBody::RecoverSnapshot { .. },
            ) if conn.version.minor < 3 => Ok(lacks(addr, &conn, "live administration (1.3)")),
            Op::Request(
                RequestBody::CoordWrite { .. }
                | RequestBody::LeaseKeepAlive { .. }
                | RequestBody::LeaseTimeToLive { .. },
            ) if conn.version.minor < 5 => Ok(lacks(addr, &conn, "the coordination recipes (1.5)")),
            Op::Request(RequestBody::TxnWrite { .. } | RequestBody::OpenTransactions { .. })
                if conn.version.minor < 6 =>
            {
                Ok(lacks(addr, &conn, "journal transactions (1.6)"))
            }
            Op::Request(RequestBody::SmUpdate { .. } | RequestBody::SmQuery { .. })
                if conn.version.minor < 7 =>
            {
                Ok(lacks(addr, &conn, "user state machines (1.7)"))
            }
            Op::Request(
                RequestBody::Pull { .. }
                | RequestBody::PullSnapshot { .. }
                | RequestBody::RegisterObserver { .. },
            ) if conn.version.minor < 10 => Ok(lacks(addr, &conn, "observers (1.10)")),
            Op::Request(RequestBody::KvReadAt { .. }) if conn.version.minor < 11 => {
                Ok(lacks(addr, &conn, "KV reads at an index (1.11)"))
            }
            Op::Request(RequestBody::StatusDetail) if conn.version.minor < 4 => {
                // A node before 1.4 has no detail (and before 1.2 no resource counts either).
                let body = if conn.version.minor < 2 {
                    RequestBody::Status
                } else {
                    RequestBody::StatusWithResources
                };
                conn.request(body)
                    .await
                    .map(|r| (r, None))
                    .map_err(AttemptError::Lost)
            }
            Op::Request(RequestBody::StatusWithResources) if conn.version.minor < 2 => conn
                // A 1.0 / 1.1 node has no resource counts: ask it what it can answer.
                .request(RequestBody::Status)
                .await
                .map(|r| (r, None))
                .map_err(AttemptError::Lost),
            Op::Request(body) => conn
                .request(body.clone())
                .await
                .map(|r| (r, None))
                .map_err(AttemptError::Lost),
            Op::Events(_) if conn.version.minor < 3 => Ok(lacks(addr, &conn, "events (1.3)")),
            Op::Events(o) if o.state_machines && conn.version.minor < 8 => {
                Ok(lacks(addr, &conn, "state machine events (1.8)"))
            }
            Op::Watch { .. } | Op::Events(_) => {
                let depth = self.config.watch_queue_depth;
                let (reply, watch_id, rx) = match op {
                    Op::Watch { filter, from_index } => {
                        conn.watch(filter.clone(), *from_index, depth).await
                    }
                    Op::Events(options) => conn.subscribe_events(depth, *options).await,
                    Op::Request(_) => conn.subscribe_events(depth, EventOptions::default()).await,
                }
                .map_err(AttemptError::Lost)?;
                Ok((
                    reply,
                    Some(WatchSub {
                        conn: conn.clone(),
                        watch_id,
                        rx,
                    }),
                ))
            }
        }
    }
}

/// The final answer for a request `addr`'s protocol version cannot carry (an older node could
/// not decode it and would drop the connection).
fn lacks(addr: &str, conn: &NodeConn, what: &str) -> (Reply, Option<WatchSub>) {
    let e = Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{addr} speaks protocol {}, which lacks {what}",
            conn.version
        ),
    );
    (
        Reply {
            result: Err(e),
            applied_index: 0,
        },
        None,
    )
}

enum AttemptError {
    Connect(Error),
    Lost(Lost),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        let mut config = ClientConfig::new(1);
        config.backoff_initial = Duration::from_millis(10);
        config.backoff_max = Duration::from_millis(80);
        Cluster::new(vec!["127.0.0.1:1".into()], config, 42)
    }

    #[test]
    fn first_unacked_is_the_oldest_write_still_in_flight() {
        let c = cluster();
        let w1 = c.begin_write();
        let w2 = c.begin_write();
        let w3 = c.begin_write();
        assert_eq!((w1.id.seq, w2.id.seq, w3.id.seq), (1, 2, 3));
        assert!([&w1, &w2, &w3].iter().all(|w| w.id.first_unacked == 1));
        drop(w2);
        assert_eq!(c.begin_write().id.first_unacked, 1, "1 is still in flight");
        drop(w1);
        let w5 = c.begin_write();
        assert_eq!((w5.id.seq, w5.id.first_unacked), (5, 3));
        drop(w3);
        drop(w5);
        let w6 = c.begin_write();
        assert_eq!((w6.id.seq, w6.id.first_unacked), (6, 6));
        assert_eq!(w6.id.client_id, 42);
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let c = cluster();
        let mut d = c.config.backoff_initial;
        for _ in 0..20 {
            let (delay, next) = c.backoff(d);
            let capped = d.min(c.config.backoff_max);
            assert!(
                delay >= capped / 2 && delay <= capped,
                "{delay:?} vs {capped:?}"
            );
            assert_eq!(next, (capped * 2).min(c.config.backoff_max));
            d = next;
        }
    }

    #[test]
    fn read_levels_pick_target_and_floor() {
        let c = cluster();
        c.raise_floor(7);
        c.raise_floor(3);
        assert_eq!(c.applied_floor(), 7, "the floor never goes down");
        let (t, r) = c.read_at(QueryConsistency::Strict);
        assert_eq!((t, r.min_applied), (Target::Leader, 7));
        let (t, r) = c.read_at(QueryConsistency::Sequential);
        assert_eq!((t, r.min_applied), (Target::Any, 7));
        let (t, r) = c.read_at(QueryConsistency::None);
        assert_eq!((t, r.min_applied), (Target::Any, 0));
    }
}

/// The deadlines of one call: all of it, and each attempt.
#[derive(Clone, Copy)]
struct Timeouts {
    request: Duration,
    attempt: Duration,
}
