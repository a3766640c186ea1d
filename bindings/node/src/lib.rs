//! Node.js bindings (napi-rs). Thin: converts arguments, results and errors and calls the
//! `journalkeeper` core; no logic of its own. See `docs/architecture/bindings-node.md`.
//!
//! Rules kept here:
//! - Every I/O call returns a Promise ([`promise`]); every failure, argument checks included,
//!   rejects it with an `Error` whose `code` is [`ErrorKind::code`] (and `leaderHint` for
//!   `NOT_LEADER`), built on the JS thread by [`js_error`].
//! - Arguments arrive as `Unknown` and are converted by [`args`], so a wrong type, a missing
//!   argument or a bad option is `INVALID_ARGUMENT` naming the argument, never napi's own
//!   `InvalidArg` / `NumberExpected`.
//! - Indices, terms and times are u64 in the core and JS `number`s here: inputs must be
//!   integers in `0..=Number.MAX_SAFE_INTEGER` (else `INVALID_ARGUMENT`), outputs above it
//!   fail with `INTERNAL` rather than lose precision.
//! - Payloads and values are `Buffer`s (copied at the boundary).
//! - Watch and event callbacks are weak (unref'd) thread-safe functions: they never keep the
//!   process alive; `close()` stops the watch / subscription.

mod args;
mod client;
mod coord;
mod events;
mod kv_read;
mod server;
mod sql_client;
mod state_machine_client;
mod status_detail;
mod transactions;
mod user_machine;
mod watch;

use std::future::Future;

use journalkeeper::api::{self, ErrorKind};
use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, JsValue};
use napi_derive::napi;

pub use client::{Admin, Client, Journal, Kv};
pub use coord::{Coord, ElectionObserver, KeepAlive, MembersWatch, Registration};
pub use events::ClusterEvents;
pub use server::Server;
pub use sql_client::Sql;
pub use state_machine_client::StateMachineClient;
pub use transactions::Transactions;
pub use watch::Watch;

/// The version the Node package reports; it is the core's.
pub fn core_version() -> &'static str {
    journalkeeper::VERSION
}

/// The library version, e.g. "0.1.0".
#[napi]
pub fn version() -> &'static str {
    core_version()
}

/// The canonical names, from the core: what every binding (and the CLI) prints and accepts.
#[napi(object)]
pub struct Vocabulary {
    /// Node roles (`ServerStatus.role`, `NodeStatus.role`).
    pub roles: Vec<String>,
    /// `ResponseConfig` values.
    pub response_configs: Vec<String>,
    /// `QueryConsistency` values.
    pub query_consistencies: Vec<String>,
    /// `ErrorCode` values (`error.code`).
    pub error_codes: Vec<String>,
}

/// The canonical names of roles, levels and error codes.
#[napi]
pub fn vocabulary() -> Vocabulary {
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|&v| name(v).to_string()).collect()
    }
    Vocabulary {
        roles: names(&api::NodeRole::ALL, api::NodeRole::name),
        response_configs: names(&api::ResponseConfig::ALL, api::ResponseConfig::name),
        query_consistencies: names(&api::QueryConsistency::ALL, api::QueryConsistency::name),
        error_codes: names(&api::ErrorKind::ALL, api::ErrorKind::code),
    }
}

/// The bounds a caller can hit (the core's protocol constants); crossing one rejects with
/// `INVALID_ARGUMENT` naming it.
#[napi(object)]
pub struct Limits {
    /// Most entries in one `journal.append` batch (4096).
    pub max_append_entries: u32,
    /// Largest payload of one journal entry, in bytes (4 MiB).
    pub max_entry_bytes: u32,
    /// Largest sum of the payloads of one `journal.append`, in bytes (8 MiB).
    pub max_append_bytes: u32,
    /// Largest `maxEntries` of one `journal.get` (4096; a reply may hold fewer).
    pub max_get_entries: u32,
    /// Most partitions in one `journal.scalePartitions` set (4096).
    pub max_partitions: u32,
    /// Longest KV key, in bytes of UTF-8 (4096; the servers' default limit).
    pub max_key_bytes: u32,
    /// Largest KV value, in bytes (1 MiB; the servers' default limit).
    pub max_value_bytes: u32,
    /// Most voters of one `admin.updateVoters` (the new set; 64).
    pub max_voters: u32,
    /// Longest `timeoutMs` of an admin change (600 000: 10 minutes).
    pub max_admin_timeout_ms: u32,
}

/// The bounds a caller can hit.
#[napi]
pub fn limits() -> Limits {
    use journalkeeper::client::protocol as p;
    // Each fits in u32 (the largest is 8 MiB, the admin timeout 600 000).
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Limits {
        max_append_entries: n(p::MAX_APPEND_ENTRIES),
        max_entry_bytes: n(p::MAX_ENTRY_BYTES),
        max_append_bytes: n(p::MAX_APPEND_BYTES),
        max_get_entries: p::MAX_GET_ENTRIES,
        max_partitions: n(p::MAX_PARTITIONS),
        max_key_bytes: n(p::MAX_KEY_BYTES),
        max_value_bytes: n(p::MAX_VALUE_BYTES),
        max_voters: n(p::MAX_VOTERS),
        max_admin_timeout_ms: u32::try_from(p::MAX_ADMIN_TIMEOUT_MS).unwrap_or(u32::MAX),
    }
}

/// When a write is acknowledged. Only `REPLICATION` (the default) and `ALL` return the index.
///
/// `ONE_WAY`: no reply — `append` resolves once the batch is accepted into the client's
/// bounded queue (64 MiB; when full it waits for room up to `requestTimeoutMs`, then rejects
/// with `TIMEOUT`). The library delivers it to the leader in the background like any write
/// (redirects followed, retried under one session id, so stored once) and counts it stored
/// when the leader reports it committed on a majority. On a cluster with a leader every
/// accepted `ONE_WAY` append is stored, in order per partition; `client.flush()` waits for
/// that and `client.close()` flushes for at most 5 s before closing. Lost only if the process
/// dies (or the 5 s pass at close) before the leader committed it, or if no leader takes it
/// within `requestTimeoutMs` (retries exhausted).
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug)]
pub enum ResponseConfig {
    /// No reply; delivered in the background (see the type's documentation).
    OneWay,
    /// The server received the request.
    Receive,
    /// On the leader's disk, not necessarily replicated.
    Persistence,
    /// Committed on a majority of disks (the default).
    Replication,
    /// Committed and on the leader's own disk.
    All,
}

impl From<ResponseConfig> for api::ResponseConfig {
    fn from(r: ResponseConfig) -> Self {
        match r {
            ResponseConfig::OneWay => api::ResponseConfig::OneWay,
            ResponseConfig::Receive => api::ResponseConfig::Receive,
            ResponseConfig::Persistence => api::ResponseConfig::Persistence,
            ResponseConfig::Replication => api::ResponseConfig::Replication,
            ResponseConfig::All => api::ResponseConfig::All,
        }
    }
}

/// How fresh a read must be. `STRICT` (linearizable) is the default.
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug)]
pub enum QueryConsistency {
    /// Linearizable.
    Strict,
    /// Any node, never going backwards for one client.
    Sequential,
    /// Local state, no guarantee.
    None,
}

impl From<QueryConsistency> for api::QueryConsistency {
    fn from(c: QueryConsistency) -> Self {
        match c {
            QueryConsistency::Strict => api::QueryConsistency::Strict,
            QueryConsistency::Sequential => api::QueryConsistency::Sequential,
            QueryConsistency::None => api::QueryConsistency::None,
        }
    }
}

/// An embedded node's standing in its cluster (`server.status().standing`; the same names as
/// C's `jk_standing_name` and Python's `Standing`).
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug)]
pub enum Standing {
    /// Started with `join: true`; not a member (it serves no client) until a leader adds it
    /// (`admin.addVoter()`).
    Joining,
    /// In the configuration (a voter, or a learner catching up).
    Member,
    /// A committed configuration no longer holds it: it serves nothing, and its data
    /// directory cannot start a node again.
    Removed,
    /// A read replica outside the configuration, pulling committed entries from parents.
    Observer,
}

impl From<journalkeeper::server::Standing> for Standing {
    fn from(s: journalkeeper::server::Standing) -> Self {
        use journalkeeper::server::Standing as Core;
        match s {
            Core::Joining => Standing::Joining,
            Core::Member => Standing::Member,
            Core::Removed => Standing::Removed,
            Core::Observer => Standing::Observer,
        }
    }
}

/// The `code` of every error this package throws or rejects with: the core's
/// `ErrorKind::code()`, the same in every language.
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug)]
pub enum ErrorCode {
    /// Not the leader; `leaderHint` names it when known.
    NotLeader,
    /// Did not complete in time; may or may not have taken effect.
    Timeout,
    /// At or beyond the end.
    IndexOverflow,
    /// Before the start (compacted away).
    IndexUnderflow,
    /// A malformed argument or one that crosses a bound.
    InvalidArgument,
    /// The client or server was closed.
    Closed,
    Io,
    Corruption,
    Transaction,
    /// No quorum or no leader reachable.
    Unavailable,
    /// A bug: an invariant did not hold.
    Internal,
    /// A server has another cluster id than the client's (not retried; fails at once).
    WrongCluster,
    /// The lease expired, was revoked or never existed.
    LeaseExpired,
    /// A state machine applied the command and refused it (deterministic; the machine's message).
    Rejected,
}

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A JS number argument as u64: an integer in `0..=MAX_SAFE_INTEGER`, else `INVALID_ARGUMENT`
/// naming `what`.
pub fn to_u64(what: &str, v: f64) -> Result<u64, api::Error> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER as f64 {
        Ok(v as u64)
    } else {
        Err(api::Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} must be an integer in 0..=Number.MAX_SAFE_INTEGER, got {v}"),
        ))
    }
}

/// A JS number argument as an integer in `0..=max`, else `INVALID_ARGUMENT` naming `what`.
pub fn to_bounded(what: &str, v: f64, max: u64) -> Result<u64, api::Error> {
    let n = to_u64(what, v)?;
    if n > max {
        return Err(api::Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} {n} is outside 0..={max}"),
        ));
    }
    Ok(n)
}

/// A u64 result as a JS number; `INTERNAL` above `MAX_SAFE_INTEGER` (never silently rounded).
pub fn to_number(what: &str, v: u64) -> Result<f64, api::Error> {
    if v <= MAX_SAFE_INTEGER {
        Ok(v as f64)
    } else {
        Err(api::Error::new(
            ErrorKind::Internal,
            format!("{what} {v} exceeds Number.MAX_SAFE_INTEGER"),
        ))
    }
}

/// The JS `Error` for a core error: `message`, `code` (the kind's stable code) and, when known,
/// `leaderHint`. Must run on the JS thread.
pub(crate) fn js_error(env: &Env, e: &api::Error) -> napi::Error {
    js_error_object(env, e)
        .map(|obj| napi::Error::from(obj.to_unknown()))
        .unwrap_or_else(|fallback| fallback)
}

/// The `Error` object of [`js_error`], as a value (e.g. an entry of a batch's results).
pub(crate) fn js_error_object<'env>(
    env: &'env Env,
    e: &api::Error,
) -> napi::Result<napi::bindgen_prelude::Object<'env>> {
    let mut obj = env.create_error(napi::Error::from_reason(e.message.clone()))?;
    obj.set_named_property("code", e.kind.code())?;
    if let Some(hint) = &e.leader_hint {
        obj.set_named_property("leaderHint", hint.as_str())?;
    }
    Ok(obj)
}

/// Runs `fut` on the core's tokio runtime and returns a Promise of its result, converted on
/// the JS thread by `convert`; a core error rejects the Promise with [`js_error`].
pub(crate) fn promise<'env, T, V, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static + Into<V>,
    V: ToNapiValue,
    F: Future<Output = Result<T, api::Error>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| match r {
        Ok(v) => Ok(v.into()),
        Err(e) => Err(js_error(env, &e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_version_is_the_core_version() {
        assert_eq!(super::core_version(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn numbers_cross_only_when_exact() {
        assert_eq!(to_u64("index", 7.0).unwrap(), 7);
        assert_eq!(
            to_u64("index", MAX_SAFE_INTEGER as f64).unwrap(),
            MAX_SAFE_INTEGER
        );
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 2f64.powi(53)] {
            let e = to_u64("index", bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains("index"), "{e}");
        }
        assert_eq!(
            to_bounded("partition", 65536.0, 65535).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(to_number("index", 3).unwrap(), 3.0);
        assert_eq!(
            to_number("index", MAX_SAFE_INTEGER + 1).unwrap_err().kind,
            ErrorKind::Internal
        );
    }
}
