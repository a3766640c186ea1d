//! The embedded server: `jk_server_start` (from a `jk_server_config` or a TOML string;
//! `jk_server_start_observer` for a read replica),
//! `jk_server_start_joining` (a new node joining a running cluster), status and standing,
//! leader and removal waits, stop and free. A `jk_server` runs on the library's runtime (and the
//! core's own storage and apply threads) until stopped.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use journalkeeper::server::{Server, ServerConfig, Standing};

use crate::args::{out_arg, ref_arg, slice_arg, str_arg};
use crate::buffer::to_c_string;
use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr, try_ref};
use crate::error::{Failure, jk_error, jk_status};
use crate::names::{jk_role, jk_standing};
use crate::runtime::block_on;
use crate::state_machine::{ForeignMachine, jk_state_machine};

/// A running (or stopped) embedded node. Opaque. Made by `jk_server_start*`, released by
/// `jk_server_free`. Thread-safe: any function may be called from any thread, concurrently,
/// except `jk_server_free`, which must be the last call.
pub struct jk_server {
    _private: [u8; 0],
}

pub(crate) struct ServerHandle {
    /// `None` once stopped.
    server: Mutex<Option<Server>>,
}

impl Castable for jk_server {
    type Ownership = OwnershipBox;
    type RustType = ServerHandle;
}

/// One voter of the cluster: its node id and `"ip:port"` address.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_peer {
    pub node_id: u64,
    pub addr: *const c_char,
}

/// The settings of an embedded node (a subset of the TOML format; use
/// `jk_server_start_toml` for the rest). Borrowed by `jk_server_start` for the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_server_config {
    /// Non-zero id of this node.
    pub node_id: u64,
    /// `"ip:port"` peers and clients reach this node at.
    pub listen: *const c_char,
    /// Non-zero id shared by the cluster's nodes and clients.
    pub cluster_id: u64,
    /// Directory of this node's data (created if missing).
    pub data_dir: *const c_char,
    /// Every voter, this node included; NULL / 0: a one-node cluster of this node.
    pub peers: *const jk_peer,
    pub peers_len: usize,
    /// 0: the default (500 ms).
    pub election_timeout_ms: u64,
    /// 0: the default (50 ms).
    pub heartbeat_interval_ms: u64,
}

/// A snapshot of a node's status, filled in by `jk_server_status` (plain values, nothing to
/// free).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_server_info {
    pub node_id: u64,
    pub role: jk_role,
    /// The leader's node id; 0 when unknown.
    pub leader_id: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Highest log index durable on this node's disk.
    pub durable_index: u64,
    pub first_index: u64,
    pub last_index: u64,
    /// The node stopped serving after a storage failure or a state machine's crash (fail-stop).
    pub failed: bool,
}

/// An embedded node's standing and the cluster's preferred leader, filled in by
/// `jk_server_standing` (plain values, nothing to free). Separate from `jk_server_info` so that
/// the layout of that caller-allocated struct stays as it was.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_server_standing_info {
    /// Joining (not yet added), member, or removed.
    pub standing: jk_standing,
    /// The preferred leader recorded in the replicated configuration
    /// (`jk_admin_set_preferred_leader`); 0 when none.
    pub preferred_leader_id: u64,
}

fn addr_arg(ptr: *const c_char, what: &str) -> Result<SocketAddr, Failure> {
    let s = str_arg(ptr, what)?;
    s.parse()
        .map_err(|e| Failure::invalid(format!("{what} {s:?} is not an ip:port address: {e}")))
}

/// The configuration of `*c`; with `join`, its `peers` are the members to join through
/// (`ServerConfig::joining`, which adds this node).
fn config_from_c(c: &jk_server_config, join: bool) -> Result<ServerConfig, Failure> {
    let listen = addr_arg(c.listen, "config->listen")?;
    let data_dir = str_arg(c.data_dir, "config->data_dir")?;
    let mut cfg = ServerConfig::new(c.node_id, listen, c.cluster_id, data_dir);
    let peers = slice_arg(c.peers, c.peers_len, "config->peers")?;
    let mut map = BTreeMap::new();
    for (i, p) in peers.iter().enumerate() {
        map.insert(
            p.node_id,
            addr_arg(p.addr, &format!("config->peers[{i}].addr"))?,
        );
    }
    if join {
        cfg = cfg.joining(map);
    } else if !map.is_empty() {
        cfg = cfg.with_peers(map);
    }
    if c.election_timeout_ms != 0 {
        cfg.election_timeout_ms = c.election_timeout_ms;
    }
    if c.heartbeat_interval_ms != 0 {
        cfg.heartbeat_interval_ms = c.heartbeat_interval_ms;
    }
    Ok(cfg)
}

type Machines = Vec<(String, ForeignMachine)>;

fn start(cfg: ServerConfig, machines: Machines, out: *mut *mut jk_server) -> Result<(), Failure> {
    let out = out_arg(out, "out")?;
    let mut builder = Server::builder(cfg);
    for (name, machine) in machines {
        builder = builder.state_machine(name, machine);
    }
    let server = block_on(builder.start())??;
    out.set(to_boxed_mut_ptr::<jk_server>(ServerHandle {
        server: Mutex::new(Some(server)),
    }));
    Ok(())
}

/// Starts an embedded node: validates `config`, opens (or recovers) its data directory, binds
/// its address and joins the cluster. Blocks until the node runs (not until a leader is
/// elected: see `jk_server_wait_for_leader`). On success `*out` is a new handle for
/// `jk_server_free`; on failure `*out` is untouched. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start(
    config: *const jk_server_config,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let cfg = config_from_c(ref_arg(config, "config")?, false)?;
        start(cfg, Vec::new(), out)
    }
}

/// Starts an embedded node that joins a running cluster (the TOML format's `join = true`):
/// `config->peers` names members of that cluster it can reach first (at least one; this node
/// is added to them, so it may be left out), and `config->data_dir` must be empty or new. The
/// node is not a member — it never campaigns and serves no client; `jk_server_standing`
/// reports `JK_STANDING_JOINING` — until a leader adds it (`jk_admin_add_voter`); it then
/// learns every member's address from the cluster. Otherwise as `jk_server_start`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start_joining(
    config: *const jk_server_config,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let cfg = config_from_c(ref_arg(config, "config")?, true)?;
        start(cfg, Vec::new(), out)
    }
}

/// Starts an embedded observer (the TOML format's `role = "observer"` + `parents`): a read
/// replica that stores the log and the state machines but never votes; it pulls committed
/// entries from one of `parents` (`parents_len` `"ip:port"` addresses of voters or other
/// observers, at least one, not this node), switching to the next when one fails, and
/// registers itself with the leader (`observers` of `jk_admin_cluster_configuration`).
/// `config->peers` names only this node (or is NULL / 0). It serves NONE reads;
/// `jk_server_standing` reports `JK_STANDING_OBSERVER`; `jk_admin_convert_role` can make it a
/// voter. `JK_STATUS_INVALID_ARGUMENT` for no parents, a bad address, or this node among
/// them. The array is borrowed for the call only. Otherwise as `jk_server_start`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start_observer(
    config: *const jk_server_config,
    parents: *const *const c_char,
    parents_len: usize,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let cfg = config_from_c(ref_arg(config, "config")?, false)?;
        let raw = slice_arg(parents, parents_len, "parents")?;
        let mut list = Vec::with_capacity(raw.len());
        for (i, &p) in raw.iter().enumerate() {
            list.push(addr_arg(p, &format!("parents[{i}]"))?);
        }
        start(cfg.with_observer(list), Vec::new(), out)
    }
}

/// Like `jk_server_start`, with the configuration as TOML text (the format of the
/// `journalkeeper` binary's config file; every setting is available).
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start_toml(
    toml: *const c_char,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let cfg = ServerConfig::from_toml_str(str_arg(toml, "toml")?)?;
        start(cfg, Vec::new(), out)
    }
}

/// Takes ownership of every machine of `machines` at once (each `free` then runs exactly once,
/// whatever fails later), then checks them. A NULL `machines` with `n` > 0 owns nothing.
fn machines_arg(machines: *const jk_state_machine, n: usize) -> Result<Machines, Failure> {
    let list = slice_arg(machines, n, "machines")?;
    let owned: Vec<Result<(String, ForeignMachine), Failure>> = list
        .iter()
        .enumerate()
        .map(|(i, m)| ForeignMachine::new(m, &format!("machines[{i}]")))
        .collect();
    owned.into_iter().collect()
}

/// Like `jk_server_start`, hosting the `n` state machines of `machines` (see
/// `jk_state_machine`; every node of the cluster must host the same names). The array is
/// borrowed for the call; each machine's `user_data` is the library's from this call on, and
/// its `free` is called exactly once — before this returns when the start fails (whatever the
/// reason, a NULL `config` included), else when the node stops.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start_with_machines(
    config: *const jk_server_config,
    machines: *const jk_state_machine,
    n: usize,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let machines = machines_arg(machines, n)?;
        let cfg = config_from_c(ref_arg(config, "config")?, false)?;
        start(cfg, machines, out)
    }
}

/// Like `jk_server_start_with_machines`, with the configuration as TOML text (as
/// `jk_server_start_toml`).
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_start_toml_with_machines(
    toml: *const c_char,
    machines: *const jk_state_machine,
    n: usize,
    out: *mut *mut jk_server,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let machines = machines_arg(machines, n)?;
        let cfg = ServerConfig::from_toml_str(str_arg(toml, "toml")?)?;
        start(cfg, machines, out)
    }
}

pub(crate) fn with_server<T>(
    server: *const jk_server,
    f: impl FnOnce(&Server) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let handle = try_ref::<jk_server>(server, "server")?;
    let guard = handle
        .server
        .lock()
        .map_err(|_| Failure::new(jk_status::Internal, "server handle lock poisoned"))?;
    match guard.as_ref() {
        Some(s) => f(s),
        None => Err(Failure::new(jk_status::Closed, "the server was stopped")),
    }
}

/// Fills `*out` with the node's latest status (does not block on the network).
/// `JK_STATUS_CLOSED` after `jk_server_stop`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_status(
    server: *const jk_server,
    out: *mut jk_server_info,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let s = with_server(server, |s| Ok(s.status()))?;
        out.set(jk_server_info {
            node_id: s.node_id,
            role: jk_role::from(s.node_role()),
            leader_id: s.leader.unwrap_or(0),
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            durable_index: s.durable_index,
            first_index: s.first_index,
            last_index: s.last_index,
            failed: s.failed,
        });
        Ok(())
    }
}

/// Fills `*out` with the node's standing (joining, member, removed) and the cluster's preferred
/// leader, as of its latest status (does not block on the network). `JK_STATUS_CLOSED` after
/// `jk_server_stop`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_standing(
    server: *const jk_server,
    out: *mut jk_server_standing_info,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let s = with_server(server, |s| Ok(s.status()))?;
        out.set(jk_server_standing_info {
            standing: jk_standing::from(s.standing),
            preferred_leader_id: s.preferred_leader.unwrap_or(0),
        });
        Ok(())
    }
}

/// The address the node listens on (`"ip:port"`; the real port when configured with port 0).
/// On success `*out` is a new string for `jk_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_local_addr(
    server: *const jk_server,
    out: *mut *mut c_char,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let addr = with_server(server, |s| Ok(s.local_addr()))?;
        out.set(to_c_string(addr.to_string()));
        Ok(())
    }
}

/// Blocks until this node knows a leader, or `timeout_ms` passes (`JK_STATUS_TIMEOUT`).
/// `leader_id_out` may be NULL; else it receives the leader's node id. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_wait_for_leader(
    server: *const jk_server,
    timeout_ms: u64,
    leader_id_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = crate::args::opt_out_arg(leader_id_out);
        // Polls the status (`Server::wait_for` would hold the handle's lock for the whole
        // wait and block `jk_server_stop`).
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            if let Some(leader) = with_server(server, |s| Ok(s.status().leader))? {
                if let Some(out) = out {
                    out.set(leader);
                }
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Failure::new(
                    jk_status::Timeout,
                    format!("no leader known within {timeout_ms} ms"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Blocks until a committed configuration no longer holds this node (`jk_admin_remove_voter`;
/// it then serves nothing and `jk_server_standing` reports `JK_STANDING_REMOVED`), or
/// `timeout_ms` passes (`JK_STATUS_TIMEOUT`). Returns at once if it already was removed;
/// `JK_STATUS_CLOSED` when the server is (or gets) stopped first. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_wait_for_removed(
    server: *const jk_server,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        // Polls, as `jk_server_wait_for_leader` does (`Server::removed` would hold the
        // handle's lock for the whole wait and block `jk_server_stop`).
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            if with_server(server, |s| Ok(s.status().standing))? == Standing::Removed {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Failure::new(
                    jk_status::Timeout,
                    format!("not removed from the cluster within {timeout_ms} ms"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Stops the node cleanly (stops accepting, fails waiting requests with `JK_STATUS_CLOSED`,
/// makes the log durable, releases the port) and blocks until it has stopped. Idempotent: a
/// stopped server returns `JK_STATUS_OK`. The handle stays valid for `jk_server_status`
/// (`JK_STATUS_CLOSED`) until `jk_server_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_stop(server: *mut jk_server, err_out: *mut *mut jk_error) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let handle = try_ref::<jk_server>(server, "server")?;
        let taken = handle
            .server
            .lock()
            .map_err(|_| Failure::new(jk_status::Internal, "server handle lock poisoned"))?
            .take();
        if let Some(s) = taken {
            block_on(s.shutdown())?;
        }
        Ok(())
    }
}

/// Stops the node if it still runs (as `jk_server_stop`, blocking) and frees the handle. NULL
/// is allowed. Must be the last call on `server`; do not use it afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_free(server: *mut jk_server) {
    ffi_boundary! { default = ();
        if let Some(handle) = free_box::<jk_server>(server) {
            let taken = handle.server.into_inner().ok().flatten();
            if let Some(s) = taken {
                // Outside a runtime this waits for the shutdown; inside one (a misuse), the
                // server is dropped, which asks it to stop.
                let _ = block_on(s.shutdown());
            }
        }
    }
}
