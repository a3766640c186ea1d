//! The cluster client handle: `jk_client_connect`, close, free, leader, sync; and the two
//! enums every call takes (`jk_response_config`, `jk_query_consistency`).

use std::ffi::c_char;
use std::time::Duration;

use journalkeeper::client::{Client, ClientConfig};

use crate::args::{out_arg, slice_arg, str_arg};
use crate::buffer::to_c_string;
use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr, try_ref};
use crate::error::{Failure, jk_error, jk_status};
use crate::runtime::{block_on, runtime};

/// A connection to a cluster. Opaque. Made by `jk_client_connect`, released by
/// `jk_client_free`. Thread-safe: calls may run concurrently from any threads (they share
/// connections, leader knowledge and the write session), except `jk_client_free`, which must
/// be the last call.
pub struct jk_client {
    _private: [u8; 0],
}

impl Castable for jk_client {
    type Ownership = OwnershipBox;
    type RustType = Client;
}

pub(crate) fn client_arg<'a>(client: *const jk_client) -> Result<&'a Client, Failure> {
    try_ref::<jk_client>(client, "client")
}

/// When a write is acknowledged. Functions take it as `uint32_t` (any other value:
/// `JK_STATUS_INVALID_ARGUMENT`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_response_config {
    /// No reply: `jk_journal_append` returns once the entries are accepted into the client's
    /// bounded one-way queue (64 MiB; when it is full the call waits for room up to the
    /// request timeout, then fails with `JK_STATUS_TIMEOUT`). The library then delivers them
    /// to the leader in the background like any write (following redirects, retrying under
    /// one session id, so they are stored once) and counts them stored when the leader
    /// reports them committed on a majority. On a cluster with a leader every accepted
    /// one-way append is stored, in order per partition; `jk_client_flush` waits for that,
    /// and `jk_client_close` / `jk_client_free` flush (at most 5 s) before closing. Lost only
    /// if the process dies (or the flush bound passes) before the leader committed them, or
    /// if no leader takes them within the request timeout (retries exhausted).
    OneWay = 0,
    /// The server received the request.
    Receive = 1,
    /// Written to the leader's disk, not necessarily replicated.
    Persistence = 2,
    /// Committed on a majority (the usual choice). Returns the assigned index.
    Replication = 3,
    /// Committed and on the leader's own disk. Returns the assigned index.
    All = 4,
}

/// How fresh a read must be. Functions take it as `uint32_t` (any other value:
/// `JK_STATUS_INVALID_ARGUMENT`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_query_consistency {
    /// Linearizable (served by the leader after it confirms its leadership).
    Strict = 0,
    /// Any node, in log order, never going backwards for this client.
    Sequential = 1,
    /// A node's local state, no guarantee.
    None = 2,
}

/// Client settings for `jk_client_connect_with`. A 0 field takes the core's default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_client_config {
    /// Non-zero id shared with the servers.
    pub cluster_id: u64,
    /// Deadline of one call, retries included (default 30000 ms); then `JK_STATUS_TIMEOUT`, or
    /// `JK_STATUS_UNAVAILABLE` when no server could be reached at all.
    pub request_timeout_ms: u64,
    /// How long one attempt waits for its reply (default 10000 ms, lowered to the request
    /// timeout when that is smaller; an explicit value must not exceed the request timeout).
    pub attempt_timeout_ms: u64,
    /// Deadline of one connection attempt (default 3000 ms).
    pub connect_timeout_ms: u64,
}

fn client_config(c: &jk_client_config) -> ClientConfig {
    let mut cfg = ClientConfig::new(c.cluster_id);
    if c.request_timeout_ms != 0 {
        cfg.set_request_timeout(Duration::from_millis(c.request_timeout_ms));
    }
    if c.attempt_timeout_ms != 0 {
        cfg.attempt_timeout = Duration::from_millis(c.attempt_timeout_ms);
    }
    if c.connect_timeout_ms != 0 {
        cfg.net.connect_timeout = Duration::from_millis(c.connect_timeout_ms);
    }
    cfg
}

fn connect(
    addrs: *const *const c_char,
    n: usize,
    config: ClientConfig,
    out: *mut *mut jk_client,
) -> Result<(), Failure> {
    let out = out_arg(out, "out")?;
    let list = slice_arg(addrs, n, "addrs")?
        .iter()
        .enumerate()
        .map(|(i, a)| str_arg(*a, &format!("addrs[{i}]")).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let client = block_on(Client::connect(list, config))??;
    out.set(to_boxed_mut_ptr::<jk_client>(client));
    Ok(())
}

/// Connects to a cluster: `addrs` is an array of `n` `"host:port"` strings (any subset of the
/// nodes; the leader is found on first use), `cluster_id` the servers' cluster id. Blocks until
/// one node answers (`JK_STATUS_UNAVAILABLE` when none does). Uses the core's default timeouts
/// (30 s per call, retries included). On success `*out` is a new handle for `jk_client_free`.
/// The strings are borrowed for the call only. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_connect(
    addrs: *const *const c_char,
    n: usize,
    cluster_id: u64,
    out: *mut *mut jk_client,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        connect(addrs, n, ClientConfig::new(cluster_id), out)
    }
}

/// Like `jk_client_connect`, with timeouts from `*config` (borrowed for the call only; invalid
/// combinations give `JK_STATUS_INVALID_ARGUMENT` naming the field). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_connect_with(
    addrs: *const *const c_char,
    n: usize,
    config: *const jk_client_config,
    out: *mut *mut jk_client,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let config = client_config(crate::args::ref_arg(config, "config")?);
        connect(addrs, n, config, out)
    }
}

/// Flushes, then closes (`Client::shutdown`): blocking, at most the client's one-way flush
/// bound (5 s). Called on a runtime thread (a Rust host's), where it must not block, the flush
/// and close run in the background instead.
fn shutdown(client: &Client) -> Result<(), Failure> {
    match block_on(client.shutdown()) {
        Ok(flushed) => Ok(flushed?),
        Err(_) => {
            let client = client.clone();
            runtime()?.spawn(async move {
                let _ = client.shutdown().await;
            });
            Ok(())
        }
    }
}

/// Waits until every `JK_RESPONSE_CONFIG_ONE_WAY` append accepted so far by this client is
/// stored (committed on a majority, as the leader reported), for at most `timeout_ms`
/// milliseconds (0: the default of 5000). `JK_STATUS_TIMEOUT` (the message says how many are
/// left) when that passes; the error of the appends given up since the previous flush (how
/// many, and why) if there were any; else `JK_STATUS_OK`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_flush(
    client: *const jk_client,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let timeout = if timeout_ms == 0 {
            ClientConfig::new(1).one_way_flush_timeout
        } else {
            Duration::from_millis(timeout_ms)
        };
        Ok(block_on(client.flush(timeout))??)
    }
}

/// Closes the client: later one-way appends fail with `JK_STATUS_CLOSED`; the one-way appends
/// already accepted are flushed first (as `jk_client_flush`, at most 5 s); then every
/// connection closes: calls in flight and every later call fail with `JK_STATUS_CLOSED`,
/// watches end with `JK_STATUS_CLOSED`. Returns the flush's status (`JK_STATUS_TIMEOUT` when
/// one-way appends were still unsent after 5 s and were given up); the client is closed either
/// way. Idempotent. Blocking. The handle stays valid until `jk_client_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_close(client: *const jk_client) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        shutdown(client_arg(client)?)
    }
}

/// Closes the client as `jk_client_close` — accepted one-way appends are flushed first, for at
/// most 5 s, blocking — and frees the handle. NULL is allowed. Must be the last call on
/// `client`. Pending `jk_journal_append_async` callbacks still run (with `JK_STATUS_CLOSED` if
/// they had not completed). Watches keep their own reference and end with
/// `JK_STATUS_CLOSED`; close them with `jk_watch_close`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_free(client: *mut jk_client) {
    ffi_boundary! { default = ();
        if let Some(client) = free_box::<jk_client>(client) {
            // Outside the runtime's context, so that `block_on` may block here.
            let _ = shutdown(&client);
            let _guard = runtime().ok().map(|rt| rt.enter());
            drop(client);
        }
    }
}

/// The leader address (`"host:port"`) the client currently believes in. On success `*out` is
/// a new string for `jk_string_free`, or NULL when no leader is known. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_leader(
    client: *const jk_client,
    out: *mut *mut c_char,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        out.set(client.leader().map_or(std::ptr::null_mut(), to_c_string));
        Ok(())
    }
}

/// Asks the leader for its applied index so that this client's following
/// `JK_QUERY_CONSISTENCY_SEQUENTIAL` reads on any node see every write acknowledged before this
/// call. `applied_index_out` may be NULL. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_sync(
    client: *const jk_client,
    applied_index_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = crate::args::opt_out_arg(applied_index_out);
        let client = client_arg(client)?;
        let index = block_on(client.sync())??;
        if let Some(out) = out {
            out.set(index);
        }
        Ok(())
    }
}
