//! `Server`: an embedded node. `Server.start(config)` takes a config object (camelCase keys)
//! or the core's TOML text; `status()` is a snapshot; `waitRemoved()` waits for its removal
//! from the cluster; `close()` shuts the node down.
//!
//! `Server.start(config, { stateMachines: { bank: new Bank() } })` hosts user state machines
//! (see `user_machine`).
//!
//! The embedded node does not keep the Node.js process alive on its own (its sockets are the
//! core's, not libuv's): a program that only serves must keep something pending.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use journalkeeper::api::{self, ErrorKind};
use journalkeeper::server::{
    Server as CoreServer, ServerConfig, ServerRole, ServerStatus as CoreStatus,
    Standing as CoreStanding,
};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Unknown};
use napi_derive::napi;

use crate::args::{self, TextOr};
use crate::events::{ClusterEvents, Source};
use crate::user_machine::{self, JsMachine};
use crate::{Standing, js_error, promise, to_bounded, to_number, to_u64};

/// A server configuration; the keys are those of the core's TOML format in camelCase.
#[napi(object)]
pub struct ServerOptions {
    pub node_id: f64,
    /// `"host:port"` for peers and clients.
    pub listen: String,
    pub cluster_id: f64,
    pub data_dir: String,
    /// Every voter, this node included: node id → `"host:port"`. Default: this node alone.
    /// With `join`: members of the running cluster this node can reach (it is added to them).
    pub peers: Option<HashMap<String, String>>,
    /// Join a running cluster instead of forming one (`dataDir` empty; default false). The
    /// node is `'JOINING'` and serves nothing until a leader adds it (`admin.addVoter()`).
    pub join: Option<bool>,
    /// `'voter'` (default) or `'observer'`: a read replica that never votes and pulls
    /// committed entries from one of `parents`; its `peers` name only itself (the default),
    /// its standing is `'OBSERVER'` and `admin.convertRole()` can make it a voter.
    #[napi(ts_type = "'voter' | 'observer'")]
    pub role: Option<String>,
    /// An observer's parents: `"host:port"` addresses of voters or other observers, tried in
    /// turn.
    pub parents: Option<Vec<String>>,
    pub election_timeout_ms: Option<f64>,
    pub heartbeat_interval_ms: Option<f64>,
    pub tick_ms: Option<f64>,
    pub lease_reads: Option<bool>,
    pub snapshot_interval: Option<f64>,
    pub snapshot_retained_entries: Option<f64>,
    pub max_segment_bytes: Option<f64>,
    pub max_pending_requests: Option<f64>,
    /// The journal's partitions before any `scalePartitions` (same on every node; default `[0]`).
    pub partitions: Option<Vec<f64>>,
}

/// A node's view of itself.
#[napi(object)]
pub struct ServerStatus {
    pub node_id: f64,
    /// `"LEADER"`, `"FOLLOWER"`, `"PRE_CANDIDATE"`, `"CANDIDATE"` or `"OBSERVER"`
    /// (`vocabulary().roles`); null before the node started.
    pub role: Option<String>,
    pub leader: Option<f64>,
    pub term: f64,
    pub commit_index: f64,
    pub applied_index: f64,
    pub durable_index: f64,
    pub first_index: f64,
    pub last_index: f64,
    pub voters: Vec<f64>,
    /// The node stopped serving after a storage failure or a state machine's crash (fail-stop).
    pub failed: bool,
    /// Joining (not yet added), member, or removed.
    pub standing: Standing,
    /// The preferred leader recorded in the replicated configuration
    /// (`admin.setPreferredLeader()`); absent when none.
    pub preferred_leader: Option<f64>,
}

fn invalid(message: String) -> api::Error {
    api::Error::new(ErrorKind::InvalidArgument, message)
}

fn addr(what: &str, s: &str) -> Result<std::net::SocketAddr, api::Error> {
    s.parse()
        .map_err(|_| invalid(format!("{what} {s:?} is not an ip:port socket address")))
}

fn config_from_options(o: ServerOptions) -> Result<ServerConfig, api::Error> {
    let listen = addr("listen", &o.listen)?;
    let node_id = to_u64("nodeId", o.node_id)?;
    let mut cfg = ServerConfig::new(
        node_id,
        listen,
        to_u64("clusterId", o.cluster_id)?,
        PathBuf::from(o.data_dir),
    );
    let mut list = Vec::new();
    for (id, a) in o.peers.iter().flatten() {
        let id: u64 = id
            .parse()
            .map_err(|_| invalid(format!("peers: key {id:?} is not a node id")))?;
        list.push((id, addr("peers", a)?));
    }
    if o.join == Some(true) {
        cfg = cfg.joining(list);
    } else if o.peers.is_some() {
        cfg = cfg.with_peers(list);
    }
    match o.role.as_deref() {
        None | Some("voter") => {}
        Some("observer") => cfg.role = ServerRole::Observer,
        Some(other) => {
            return Err(invalid(format!(
                "role {other:?}: expected 'voter' or 'observer'"
            )));
        }
    }
    for p in o.parents.iter().flatten() {
        cfg.parents.push(addr("parents", p)?);
    }
    let u = |what: &str, v: Option<f64>, d: u64| v.map_or(Ok(d), |v| to_u64(what, v));
    cfg.election_timeout_ms = u(
        "electionTimeoutMs",
        o.election_timeout_ms,
        cfg.election_timeout_ms,
    )?;
    cfg.heartbeat_interval_ms = u(
        "heartbeatIntervalMs",
        o.heartbeat_interval_ms,
        cfg.heartbeat_interval_ms,
    )?;
    cfg.tick_ms = u("tickMs", o.tick_ms, cfg.tick_ms)?;
    cfg.lease_reads = o.lease_reads.unwrap_or(cfg.lease_reads);
    cfg.snapshot_interval = u(
        "snapshotInterval",
        o.snapshot_interval,
        cfg.snapshot_interval,
    )?;
    cfg.snapshot_retained_entries = u(
        "snapshotRetainedEntries",
        o.snapshot_retained_entries,
        cfg.snapshot_retained_entries,
    )?;
    cfg.max_segment_bytes = u(
        "maxSegmentBytes",
        o.max_segment_bytes,
        cfg.max_segment_bytes,
    )?;
    if let Some(ps) = o.partitions {
        cfg.partitions = ps
            .into_iter()
            .map(|p| Ok(to_bounded("partitions", p, u16::MAX as u64)? as u16))
            .collect::<Result<_, api::Error>>()?;
    }
    if let Some(v) = o.max_pending_requests {
        cfg.max_pending_requests = to_bounded("maxPendingRequests", v, u32::MAX as u64)? as usize;
    }
    Ok(cfg)
}

fn status_to_js(s: CoreStatus) -> Result<ServerStatus, api::Error> {
    Ok(ServerStatus {
        node_id: to_number("nodeId", s.node_id)?,
        role: s.node_role().map(|r| r.name().to_string()),
        leader: s.leader.map(|l| to_number("leader", l)).transpose()?,
        term: to_number("term", s.term)?,
        commit_index: to_number("commitIndex", s.commit_index)?,
        applied_index: to_number("appliedIndex", s.applied_index)?,
        durable_index: to_number("durableIndex", s.durable_index)?,
        first_index: to_number("firstIndex", s.first_index)?,
        last_index: to_number("lastIndex", s.last_index)?,
        voters: s
            .membership
            .voters
            .iter()
            .map(|v| to_number("voter", *v))
            .collect::<Result<_, _>>()?,
        failed: s.failed,
        standing: s.standing.into(),
        preferred_leader: s
            .preferred_leader
            .map(|l| to_number("preferredLeader", l))
            .transpose()?,
    })
}

/// The status of a running server; `None` once closed.
fn current_status(inner: &Mutex<Option<CoreServer>>) -> Option<CoreStatus> {
    inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(CoreServer::status)
}

/// The machines of `Server.start`'s `options.stateMachines`, in name order.
fn state_machines(env: &Env, options: Unknown) -> napi::Result<args::R<Vec<(String, JsMachine)>>> {
    let machines = match args::nullable_object_property("options", options, "stateMachines") {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(Ok(Vec::new())),
        Err(e) => return Ok(Err(e)),
    };
    let mut out = Vec::with_capacity(machines.len());
    for (name, dispatcher) in machines {
        match user_machine::js_machine(env, &name, dispatcher)? {
            Ok(m) => out.push((name, m)),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}

fn closed() -> api::Error {
    api::Error::new(ErrorKind::Closed, "the server was closed")
}

/// An embedded JournalKeeper node.
#[napi]
pub struct Server {
    /// `None` once closed. Shared with `waitRemoved()`'s task, which locks it only to read
    /// the status.
    inner: Arc<Mutex<Option<CoreServer>>>,
    node_id: u64,
    address: String,
}

#[napi]
impl Server {
    /// Validates the configuration (an object, or the core's TOML text), opens or recovers the
    /// node's storage, binds `listen` and starts the node, hosting `options.stateMachines`
    /// (name → `StateMachine`; every node must host the same names). A machine's methods run
    /// on the JS thread while the node's threads wait for them: keep the event loop free (see
    /// `StateMachine`). A machine without the four methods is `INVALID_ARGUMENT`.
    #[napi(
        ts_args_type = "config: string | ServerOptions, options?: ServerStartOptions | undefined | null",
        ts_return_type = "Promise<Server>"
    )]
    pub fn start<'env>(
        env: &'env Env,
        config: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Server>> {
        let config = args::text_or_object::<ServerOptions>("config", config);
        let machines = state_machines(env, options)?;
        promise(env, async move {
            let cfg = match config? {
                TextOr::Text(toml) => ServerConfig::from_toml_str(&toml)?,
                TextOr::Object(options) => config_from_options(options)?,
            };
            let mut builder = CoreServer::builder(cfg);
            for (name, machine) in machines? {
                builder = builder.state_machine(name, machine);
            }
            let server = builder.start().await?;
            Ok(Server {
                node_id: server.node_id(),
                address: server.local_addr().to_string(),
                inner: Arc::new(Mutex::new(Some(server))),
            })
        })
    }

    #[napi(getter)]
    pub fn node_id(&self) -> f64 {
        self.node_id as f64
    }

    /// The `"ip:port"` peers and clients reach this node at.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The node's latest status. Throws `CLOSED` after `close()`.
    #[napi]
    pub fn status(&self, env: &Env) -> napi::Result<ServerStatus> {
        let r = match current_status(&self.inner) {
            Some(s) => status_to_js(s),
            None => Err(closed()),
        };
        r.map_err(|e| js_error(env, &e))
    }

    /// The callback form of `server.events(callback)` (defined in `journalkeeper.js`, which
    /// also gives the async-iterator form): calls `callback(null, event)` for each of this
    /// node's events, starting with its current state, until `close()`. When the server stops
    /// the callback gets a `CLOSED` error and the subscription ends. The callback never keeps
    /// the process alive. Throws `CLOSED` when the server is already closed.
    #[napi(
        ts_args_type = "callback: (err: Error | null, event: ClusterEvent | null) => void, options?: EventOptions | undefined | null",
        ts_return_type = "ClusterEvents"
    )]
    pub fn subscribe_events(
        &self,
        env: &Env,
        callback: Unknown,
        options: Unknown,
    ) -> napi::Result<ClusterEvents> {
        let tsfn = crate::client::events_callback(callback)?.map_err(|e| js_error(env, &e))?;
        let options = crate::events::event_options(options).map_err(|e| js_error(env, &e))?;
        let events = {
            let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_ref() {
                Some(s) => s.events_with(options),
                None => return Err(js_error(env, &closed())),
            }
        };
        Ok(ClusterEvents::spawn(
            Source::Server {
                node_id: self.node_id,
                events,
            },
            tsfn,
        ))
    }

    /// Resolves once a committed configuration no longer holds this node
    /// (`admin.removeVoter()`; its standing is then `'REMOVED'` and it serves nothing); at
    /// once if it already was. Rejects with `TIMEOUT` after `timeoutMs` (default: no bound)
    /// and with `CLOSED` when the server is closed first. Polls the status every 10 ms; while
    /// pending it keeps the process alive, like any pending I/O.
    #[napi(
        ts_args_type = "timeoutMs?: number | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn wait_removed<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        let timeout_ms = args::optional_uint("timeoutMs", timeout_ms);
        let node_id = self.node_id;
        promise(env, async move {
            let timeout_ms = timeout_ms?;
            let deadline =
                timeout_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
            loop {
                match current_status(&inner).map(|s| s.standing) {
                    None => return Err(closed()),
                    Some(CoreStanding::Removed) => return Ok(()),
                    Some(_) => {}
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(api::Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "node {node_id} was not removed within {} ms",
                            timeout_ms.unwrap_or_default()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }

    /// Stops the node cleanly (pending requests fail with `CLOSED`, the log is made durable,
    /// the port is released). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let server = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        promise(env, async move {
            if let Some(s) = server {
                s.shutdown().await;
            }
            Ok(())
        })
    }
}
