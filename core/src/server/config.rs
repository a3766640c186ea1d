//! [`ServerConfig`]: everything one node needs, from a builder or a TOML file, validated.
//!
//! TOML format (every key but `node_id`, `listen`, `cluster_id`, `data_dir` and `peers` is
//! optional; the values shown are the defaults):
//! ```toml
//! node_id = 1
//! listen = "127.0.0.1:7001"          # peers and clients share this port
//! cluster_id = 42
//! data_dir = "/var/lib/journalkeeper/1"
//! election_timeout_ms = 500          # randomized in [T, 2T); also check-quorum and stickiness
//! heartbeat_interval_ms = 50          # lease = T - T/10 (max clock drift)
//! tick_ms = 10
//! lease_reads = true                  # STRICT reads via the leader lease (else ReadIndex)
//! snapshot_interval = 100000          # snapshot every N applied entries (0 = never)
//! snapshot_retained_entries = 1000    # log entries kept behind a snapshot for slow followers
//! snapshots_retained = 3              # snapshots kept (the newest; older ones can be recovered)
//! retain_history = false              # keep the log back to the oldest kept snapshot (reads at an index)
//! snapshot_chunk_bytes = 1048576      # InstallSnapshot chunk size (below the frame size)
//! snapshot_max_bytes = 1099511627776  # largest snapshot this node accepts from a leader
//! max_segment_bytes = 67108864
//! max_pending_requests = 65536        # client writes and reads waiting on one node
//! watch_history_events = 100000       # KV events kept for watches to resume from
//! watch_history_bytes = 67108864      # and the bytes of keys and values they may hold
//! partitions = [0]                    # journal partitions until ScalePartitions (same on all nodes)
//! join = false                        # true: join a running cluster (see below)
//! role = "voter"                      # or "observer": a read replica (see below)
//! # parents = ["127.0.0.1:7001"]      # an observer's parents: voters or other observers
//! # http_listen = "127.0.0.1:8001"    # off by default: GET /status, /metrics, /health
//!
//! [peers]                             # every voter, this node included: id = "host:port"
//! 1 = "127.0.0.1:7001"
//! 2 = "127.0.0.1:7002"
//! 3 = "127.0.0.1:7003"
//! ```
//!
//! A node that **joins** a running cluster has `join = true` and an empty `data_dir`; its
//! `peers` name the members it can reach first and itself. It is not a member (it never
//! campaigns and serves no client) until an `add_voter` on the leader adds it; it then learns
//! every member's address from the replicated address book.
//!
//! An **observer** (`role = "observer"`) stores the log and the state machines but never votes
//! and counts toward no quorum: it pulls committed entries from one of its `parents` (voters or
//! other observers, so replication fans out in levels), switching to the next when one fails.
//! Its `peers` name only itself. It registers itself with the leader (through its parents) so
//! that it appears in the cluster configuration, serves SEQUENTIAL and NONE reads, watches and
//! journal reads, and answers writes and STRICT reads with NOT_LEADER and the leader's address.
//!
//! With **`http_listen`** set, the node also serves HTTP on that address (port 0: pick one,
//! see `Server::http_addr`): `GET /status` (the detailed status as JSON), `GET /metrics`
//! (Prometheus / OpenMetrics text) and `GET /health` (200 when it is a member that knows a
//! leader, else 503 with the reason). See `server/http.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::{Error, ErrorKind};
use crate::net::NetConfig;
use crate::state::kv::KvLimits;

/// Configuration of one server node. Build with [`ServerConfig::new`] and the `with_*`
/// setters, or load with [`ServerConfig::from_toml_file`]; [`crate::server::Server::start`]
/// validates it.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub node_id: u64,
    /// Listening address for peers and clients (port 0: pick one; then peers cannot know it).
    pub listen: SocketAddr,
    /// Every voter of the cluster (this node included), id → address.
    pub peers: BTreeMap<u64, SocketAddr>,
    pub cluster_id: u64,
    pub data_dir: PathBuf,
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Period of the raft clock tick.
    pub tick_ms: u64,
    pub lease_reads: bool,
    /// Take a snapshot every this many applied entries (0: never).
    pub snapshot_interval: u64,
    /// Entries kept in the log behind a snapshot (so lagging followers rarely need one).
    pub snapshot_retained_entries: u64,
    /// Snapshots kept on disk (the newest; `recover_snapshot` can roll back to any of them).
    pub snapshots_retained: usize,
    /// Keep the log back to the oldest of the `snapshots_retained` snapshots, so that a read
    /// at any index since that snapshot can be served (reads at an index rebuild the state from
    /// the nearest snapshot at or below the index plus the entries after it). `false`: the log
    /// is compacted to `snapshot_retained_entries` behind the newest snapshot, and reads at an
    /// index reach back only to the newest snapshot the log still covers.
    pub retain_history: bool,
    /// Bytes of snapshot data per InstallSnapshot message (must fit a frame).
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot accepted from a leader (the file it is assembled in is bounded by it).
    pub snapshot_max_bytes: u64,
    pub max_segment_bytes: u64,
    pub max_pending_requests: usize,
    pub kv_limits: KvLimits,
    /// The journal's partitions before any `ScalePartitions` (must be equal on every node).
    pub partitions: std::collections::BTreeSet<u16>,
    /// Network bounds (the cluster id is taken from `cluster_id`).
    pub net: NetConfig,
    /// Join a running cluster instead of forming one from `peers` (see the module docs).
    pub join: bool,
    /// Where to serve HTTP monitoring (`/status`, `/metrics`, `/health`); `None`: off.
    pub http_listen: Option<SocketAddr>,
    /// Whether this node, while leading, publishes the journal transactions whose commit is
    /// decided (default true). Fault tests turn it off to hold a transaction between its
    /// decision and its publication, which the next leader then finishes.
    pub publish_transactions: bool,
    /// Whether this node is a voter (default) or an observer that pulls from `parents`.
    pub role: ServerRole,
    /// An observer's parents (voters or observers), tried in turn; a voter converted to an
    /// observer without parents pulls from the voters.
    pub parents: Vec<SocketAddr>,
}

/// What a node starts as (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    #[default]
    Voter,
    Observer,
}

/// Most parents an observer names.
pub const MAX_PARENTS: usize = 64;

impl ServerConfig {
    /// A configuration with defaults for everything but the identity of the node.
    pub fn new(
        node_id: u64,
        listen: SocketAddr,
        cluster_id: u64,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            node_id,
            listen,
            peers: BTreeMap::from([(node_id, listen)]),
            cluster_id,
            data_dir: data_dir.into(),
            // Failover: a dead leader is replaced within [T, 2T) plus an election; 500 ms keeps
            // that under a second. Lease (T - T/10) and stickiness (T) scale with it.
            election_timeout_ms: 500,
            heartbeat_interval_ms: 50,
            tick_ms: 10,
            lease_reads: true,
            snapshot_interval: 100_000,
            snapshot_retained_entries: 1000,
            snapshots_retained: 3,
            retain_history: false,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_max_bytes: 1 << 40,
            max_segment_bytes: 64 << 20,
            max_pending_requests: 65_536,
            kv_limits: KvLimits::default(),
            partitions: [0].into(),
            net: NetConfig::new(cluster_id),
            join: false,
            http_listen: None,
            publish_transactions: true,
            role: ServerRole::Voter,
            parents: Vec::new(),
        }
    }

    /// Joins a running cluster whose members include `members` (id → address), instead of
    /// forming one; see the module docs.
    pub fn joining(mut self, members: impl IntoIterator<Item = (u64, SocketAddr)>) -> Self {
        let own = (self.node_id, self.listen);
        self.peers = members.into_iter().chain([own]).collect();
        self.join = true;
        self
    }

    /// Sets the voters (id → address); this node must be among them.
    pub fn with_peers(mut self, peers: impl IntoIterator<Item = (u64, SocketAddr)>) -> Self {
        self.peers = peers.into_iter().collect();
        self
    }

    pub fn with_timeouts(mut self, election_timeout_ms: u64, heartbeat_interval_ms: u64) -> Self {
        self.election_timeout_ms = election_timeout_ms;
        self.heartbeat_interval_ms = heartbeat_interval_ms;
        self
    }

    /// Serves HTTP monitoring on `addr` (port 0: pick one).
    /// Makes this node an observer pulling from `parents` (see the module docs).
    pub fn with_observer(mut self, parents: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.role = ServerRole::Observer;
        self.parents = parents.into_iter().collect();
        self
    }

    pub fn with_http_listen(mut self, addr: SocketAddr) -> Self {
        self.http_listen = Some(addr);
        self
    }

    pub fn with_snapshots(mut self, interval: u64, retained_entries: u64) -> Self {
        self.snapshot_interval = interval;
        self.snapshot_retained_entries = retained_entries;
        self
    }

    /// Keeps `snapshots` snapshots and the log back to the oldest of them (`retain_history`),
    /// so reads at an index reach back that far.
    pub fn with_history(mut self, snapshots: usize) -> Self {
        self.snapshots_retained = snapshots;
        self.retain_history = true;
        self
    }

    /// Parses the TOML format described in the module documentation.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| invalid(format!("server configuration is not valid TOML: {e}")))?;
        let mut cfg = ServerConfig::new(raw.node_id, raw.listen, raw.cluster_id, raw.data_dir);
        let mut peers = BTreeMap::new();
        for (id, addr) in raw.peers {
            let id: u64 = id
                .parse()
                .map_err(|_| invalid(format!("peers: key {id:?} is not a node id")))?;
            peers.insert(id, addr);
        }
        cfg.peers = peers;
        macro_rules! opt {
            ($($f:ident),*) => { $( if let Some(v) = raw.$f { cfg.$f = v; } )* };
        }
        opt!(
            election_timeout_ms,
            heartbeat_interval_ms,
            tick_ms,
            lease_reads,
            snapshot_interval,
            snapshot_retained_entries,
            snapshots_retained,
            retain_history,
            snapshot_chunk_bytes,
            snapshot_max_bytes,
            max_segment_bytes,
            max_pending_requests,
            partitions,
            join
        );
        if let Some(n) = raw.watch_history_events {
            cfg.kv_limits.event_history = n;
        }
        if let Some(n) = raw.watch_history_bytes {
            cfg.kv_limits.event_history_bytes = n;
        }
        cfg.http_listen = raw.http_listen;
        if let Some(role) = raw.role {
            cfg.role = role;
        }
        cfg.parents = raw.parents;
        Ok(cfg)
    }

    /// Reads and parses a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot read server configuration {}: {e}", path.display()),
            )
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks every field and their relations; the error names the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.node_id == 0 {
            return Err(invalid("node_id must be non-zero"));
        }
        if self.cluster_id == 0 {
            return Err(invalid("cluster_id must be non-zero"));
        }
        if !self.peers.contains_key(&self.node_id) {
            return Err(invalid(format!(
                "peers must include this node ({})",
                self.node_id
            )));
        }
        if self.join && self.peers.len() < 2 {
            return Err(invalid(
                "peers: a joining node must name at least one member besides itself",
            ));
        }
        if self.role == ServerRole::Observer {
            if self.parents.is_empty() {
                return Err(invalid("parents: an observer names at least one parent"));
            }
            if self.join {
                return Err(invalid("join: an observer does not join the voters"));
            }
        }
        if self.kv_limits.event_history == 0 || self.kv_limits.event_history_bytes == 0 {
            return Err(invalid(
                "watch_history_events and watch_history_bytes must be at least 1",
            ));
        }
        if self.parents.len() > MAX_PARENTS {
            return Err(invalid(format!("parents: at most {MAX_PARENTS}")));
        }
        if self.parents.contains(&self.listen) {
            return Err(invalid("parents: a node is not its own parent"));
        }
        if self.peers.contains_key(&0) {
            return Err(invalid("peers: node id 0 is not allowed"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir must be set"));
        }
        if self.tick_ms == 0 || self.tick_ms > self.heartbeat_interval_ms {
            return Err(invalid("tick_ms must be in 1..=heartbeat_interval_ms"));
        }
        if self.snapshot_interval != 0 && self.snapshot_interval < 16 {
            return Err(invalid("snapshot_interval must be 0 (never) or >= 16"));
        }
        if let Some(p) = self
            .partitions
            .iter()
            .find(|p| **p >= crate::server::command::RESERVED_PARTITION_START)
        {
            return Err(invalid(format!(
                "partitions: {p} is reserved (client partitions are below {})",
                crate::server::command::RESERVED_PARTITION_START
            )));
        }
        if !(1..=64).contains(&self.snapshots_retained) {
            return Err(invalid("snapshots_retained must be in 1..=64"));
        }
        let max_chunk = crate::net::codec::max_message_len(self.net.max_frame_size)
            .saturating_sub(4096)
            .max(1);
        if !(1..=max_chunk).contains(&self.snapshot_chunk_bytes) {
            return Err(invalid(format!(
                "snapshot_chunk_bytes must be in 1..={max_chunk} (the frame size less headers)"
            )));
        }
        if self.snapshot_max_bytes == 0 {
            return Err(invalid("snapshot_max_bytes must be > 0"));
        }
        if self.max_pending_requests == 0 {
            return Err(invalid("max_pending_requests must be > 0"));
        }
        if let Some(http) = self.http_listen
            && http.port() != 0
            && http == self.listen
        {
            return Err(invalid(format!(
                "http_listen must differ from listen ({http} is the peer and client port)"
            )));
        }
        self.raft_config()
            .validate()
            .map_err(|e| invalid(e.to_string()))?;
        let mut net = self.net.clone();
        net.cluster_id = self.cluster_id;
        net.validate().map_err(|e| invalid(e.to_string()))?;
        let min_segment = (crate::storage::HEADER_LEN + MAX_RECORD_BYTES) as u64;
        if self.max_segment_bytes < min_segment || self.max_segment_bytes > (1 << 48) {
            return Err(invalid(format!(
                "max_segment_bytes must be in {min_segment}..=2^48 (one maximal record)"
            )));
        }
        Ok(())
    }

    /// The network settings with this cluster's id (what a connection to a node needs).
    pub(crate) fn net_with_cluster(&self) -> NetConfig {
        let mut net = self.net.clone();
        net.cluster_id = self.cluster_id;
        net
    }

    pub(crate) fn raft_config(&self) -> crate::raft::Config {
        crate::raft::Config {
            id: self.node_id,
            seed: self.node_id ^ self.cluster_id.rotate_left(17),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout: self.election_timeout_ms,
            max_clock_drift: (self.election_timeout_ms / 10).max(1),
            lease_reads: self.lease_reads,
            snapshot_chunk_bytes: self.snapshot_chunk_bytes,
            ..crate::raft::Config::default()
        }
    }
}

/// Largest record payload: a maximal journal entry plus its header.
pub(crate) const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024 + 1024;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_id: u64,
    listen: SocketAddr,
    cluster_id: u64,
    data_dir: PathBuf,
    #[serde(default)]
    peers: BTreeMap<String, SocketAddr>,
    election_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    tick_ms: Option<u64>,
    lease_reads: Option<bool>,
    snapshot_interval: Option<u64>,
    snapshot_retained_entries: Option<u64>,
    snapshots_retained: Option<usize>,
    retain_history: Option<bool>,
    snapshot_chunk_bytes: Option<usize>,
    snapshot_max_bytes: Option<u64>,
    max_segment_bytes: Option<u64>,
    max_pending_requests: Option<usize>,
    watch_history_events: Option<usize>,
    watch_history_bytes: Option<usize>,
    partitions: Option<std::collections::BTreeSet<u16>>,
    join: Option<bool>,
    http_listen: Option<SocketAddr>,
    role: Option<ServerRole>,
    #[serde(default)]
    parents: Vec<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let text = r#"
            node_id = 2
            listen = "127.0.0.1:7002"
            cluster_id = 42
            data_dir = "/tmp/jk2"
            election_timeout_ms = 600
            heartbeat_interval_ms = 50
            snapshot_interval = 100
            partitions = [0, 1, 5]
            [peers]
            1 = "127.0.0.1:7001"
            2 = "127.0.0.1:7002"
            3 = "127.0.0.1:7003"
        "#;
        let cfg = ServerConfig::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.peers.len(), 3);
        assert_eq!(cfg.election_timeout_ms, 600);
        assert_eq!(cfg.snapshot_interval, 100);
        assert_eq!(cfg.tick_ms, 10);
        assert_eq!(cfg.partitions, [0, 1, 5].into());
        assert_eq!(cfg.http_listen, None, "HTTP monitoring is off by default");
        assert_eq!(cfg.kv_limits, KvLimits::default());
    }

    #[test]
    fn the_watch_history_bounds_are_parsed_and_validated() {
        let text = r#"
            node_id = 1
            listen = "127.0.0.1:7001"
            cluster_id = 42
            data_dir = "/tmp/jk1"
            watch_history_events = 500
            watch_history_bytes = 4096
            [peers]
            1 = "127.0.0.1:7001"
        "#;
        let cfg = ServerConfig::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            (
                cfg.kv_limits.event_history,
                cfg.kv_limits.event_history_bytes
            ),
            (500, 4096)
        );
        let zero = text.replace("= 500", "= 0");
        let e = ServerConfig::from_toml_str(&zero)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.message.contains("watch_history_events"), "{e}");
    }

    #[test]
    fn http_listen_is_parsed_and_validated() {
        let text = r#"
            node_id = 1
            listen = "127.0.0.1:7001"
            cluster_id = 42
            data_dir = "/tmp/jk1"
            http_listen = "127.0.0.1:8001"
            [peers]
            1 = "127.0.0.1:7001"
        "#;
        let cfg = ServerConfig::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.http_listen, Some("127.0.0.1:8001".parse().unwrap()));
        let bad = text.replace("127.0.0.1:8001", "not an address");
        let e = ServerConfig::from_toml_str(&bad).unwrap_err();
        assert!(e.message.contains("http_listen"), "{e}");
        let base = ServerConfig::new(1, "127.0.0.1:7001".parse().unwrap(), 42, "/tmp/x");
        let same = base.clone().with_http_listen(base.listen);
        let e = same.validate().unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(
            e.message.contains("http_listen must differ from listen"),
            "{e}"
        );
        // Port 0 on both sides picks two different ports.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut ephemeral = base.with_http_listen(any);
        ephemeral.listen = any;
        ephemeral.peers = BTreeMap::from([(1, any)]);
        ephemeral.validate().unwrap();
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let base = ServerConfig::new(1, "127.0.0.1:7001".parse().unwrap(), 42, "/tmp/x");
        base.validate().unwrap();
        let cases: Vec<(ServerConfig, &str)> = vec![
            (
                ServerConfig {
                    node_id: 0,
                    ..base.clone()
                },
                "node_id",
            ),
            (
                ServerConfig {
                    cluster_id: 0,
                    ..base.clone()
                },
                "cluster_id",
            ),
            (base.clone().with_peers([]), "peers"),
            (base.clone().with_timeouts(100, 100), "election_timeout"),
            (base.clone().with_snapshots(3, 0), "snapshot_interval"),
        ];
        for (cfg, field) in cases {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains(field), "{field}: {e}");
        }
        assert!(ServerConfig::from_toml_str("node_id = 1\nbogus = 2").is_err());
    }
}
