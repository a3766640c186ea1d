//! Cluster administration: a node's status and the cluster configuration, as views freed with
//! `jk_node_status_free` / `jk_cluster_configuration_free`; live membership changes
//! (`jk_admin_update_voters`, `jk_admin_add_voter`, `jk_admin_remove_voter`), role conversion
//! (`jk_admin_convert_role`), leader transfer and the preferred leader, as blocking calls.

use std::ffi::{CString, c_char};
use std::time::Duration;

use journalkeeper::client::protocol::{
    ClusterConfiguration, MAX_ADMIN_TIMEOUT_MS, Member, NodeResources,
};
use journalkeeper::client::{Admin, Client, DEFAULT_ADMIN_TIMEOUT, MemberRole};

use crate::args::{out_arg, slice_arg, str_arg};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_status, lossy_cstring};
use crate::names::jk_role;
use crate::runtime::block_on;
use crate::status_detail::{DetailStorage, jk_node_detail};

/// A cluster member: node id and client address (`"host:port"`). As an argument of
/// `jk_admin_update_voters`, `addr` may be NULL or `""`: the member's address is already known
/// to the cluster.
#[repr(C)]
#[derive(Debug)]
pub struct jk_member {
    pub node_id: u64,
    pub addr: *const c_char,
}

/// Voters, observers and leader. Everything it points to is owned by the object it is part of.
/// Observers include the learners of a membership change in progress (a new member catching
/// up before it becomes a voter).
#[repr(C)]
#[derive(Debug)]
pub struct jk_cluster_configuration {
    pub voters: *const jk_member,
    pub voters_len: usize,
    pub observers: *const jk_member,
    pub observers_len: usize,
    /// Whether a joint-consensus change is in progress (then `joint_old_voters` is the old set).
    pub is_joint: bool,
    pub joint_old_voters: *const jk_member,
    pub joint_old_voters_len: usize,
    /// NULL when no leader is known.
    pub leader: *const jk_member,
}

/// What a node holds for its clients right now (`jk_node_status.resources`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct jk_node_resources {
    /// Open client connections.
    pub client_connections: u64,
    /// Open inbound connections from other nodes.
    pub peer_connections: u64,
    /// Open watches, over all client connections.
    pub watches: u64,
    /// Client connections holding at least one watch.
    pub watching_connections: u64,
    /// Requests waiting for an answer (writes not yet acknowledged, STRICT reads).
    pub pending_requests: u64,
    /// Appends proposed and not yet applied, by client session.
    pub sessions_in_flight: u64,
}

/// One node's view of itself (`jk_admin_status`). Owned by the caller; free with
/// `jk_node_status_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_node_status {
    pub node_id: u64,
    pub role: jk_role,
    pub term: u64,
    /// The leader this node follows; NULL when unknown.
    pub leader: *const jk_member,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Last index in this node's log.
    pub last_index: u64,
    pub configuration: jk_cluster_configuration,
    /// Whether `resources` is known (false from a node older than protocol 1.2: all zero).
    pub has_resources: bool,
    pub resources: jk_node_resources,
    /// Whether `detail` is known (false from a node older than protocol 1.4: zeros and NULL).
    pub has_detail: bool,
    pub detail: jk_node_detail,
}

/// The strings and arrays a configuration view points into.
pub(crate) struct ConfigStorage {
    addrs: Vec<CString>,
    voters: Vec<jk_member>,
    observers: Vec<jk_member>,
    joint: Option<Vec<jk_member>>,
    leader: Option<Box<jk_member>>,
}

impl ConfigStorage {
    pub(crate) fn new(c: &ClusterConfiguration) -> Self {
        let mut addrs = Vec::new();
        let voters = members(&c.voters, &mut addrs);
        let observers = members(&c.observers, &mut addrs);
        let joint = c.joint_old_voters.as_ref().map(|j| members(j, &mut addrs));
        let leader = c.leader.as_ref().map(|m| Box::new(member(m, &mut addrs)));
        ConfigStorage {
            addrs,
            voters,
            observers,
            joint,
            leader,
        }
    }

    pub(crate) fn view(&self) -> jk_cluster_configuration {
        debug_assert!(self.addrs.len() >= self.voters.len());
        let joint = self.joint.as_deref().unwrap_or(&[]);
        jk_cluster_configuration {
            voters: self.voters.as_ptr(),
            voters_len: self.voters.len(),
            observers: self.observers.as_ptr(),
            observers_len: self.observers.len(),
            is_joint: self.joint.is_some(),
            joint_old_voters: joint.as_ptr(),
            joint_old_voters_len: joint.len(),
            leader: opt_member_ptr(&self.leader),
        }
    }
}

/// A `jk_member` whose address points into a `CString` kept in `addrs` (its heap bytes stay put
/// when `addrs` grows).
pub(crate) fn member(m: &Member, addrs: &mut Vec<CString>) -> jk_member {
    let addr = lossy_cstring(m.addr.clone());
    let ptr = addr.as_ptr();
    addrs.push(addr);
    jk_member {
        node_id: m.node_id,
        addr: ptr,
    }
}

fn members(ms: &[Member], addrs: &mut Vec<CString>) -> Vec<jk_member> {
    ms.iter().map(|m| member(m, addrs)).collect()
}

fn opt_member_ptr(m: &Option<Box<jk_member>>) -> *const jk_member {
    m.as_deref()
        .map_or(std::ptr::null(), |m| m as *const jk_member)
}

fn resources(r: NodeResources) -> jk_node_resources {
    jk_node_resources {
        client_connections: r.client_connections,
        peer_connections: r.peer_connections,
        watches: r.watches,
        watching_connections: r.watching_connections,
        pending_requests: r.pending_requests,
        sessions_in_flight: r.sessions_in_flight,
    }
}

/// Asks the node at `node_addr` (`"host:port"`; it need not be in the client's address list)
/// for its status. On success `*out` is a new `jk_node_status` for `jk_node_status_free`.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_status(
    client: *const jk_client,
    node_addr: *const c_char,
    out: *mut *mut jk_node_status,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let node = str_arg(node_addr, "node_addr")?;
        let s = block_on(client.admin().status(node))??;
        let mut addrs = Vec::new();
        let leader = s.leader.as_ref().map(|m| Box::new(member(m, &mut addrs)));
        let detail = s.detail.clone().map(|d| DetailStorage::new(*d));
        let storage = (ConfigStorage::new(&s.configuration), leader, addrs, detail);
        out.set(to_owned_view::<jk_node_status, StatusStorage>(storage, |(c, leader, _, detail)| {
            jk_node_status {
                node_id: s.node_id,
                role: jk_role::from(Some(s.role)),
                term: s.term,
                leader: opt_member_ptr(leader),
                commit_index: s.commit_index,
                applied_index: s.applied_index,
                last_index: s.last_index,
                configuration: c.view(),
                has_resources: s.resources.is_some(),
                resources: s.resources.map(resources).unwrap_or_default(),
                has_detail: detail.is_some(),
                detail: detail.as_ref().map_or_else(DetailStorage::empty_view, DetailStorage::view),
            }
        }));
        Ok(())
    }
}

type StatusStorage = (
    ConfigStorage,
    Option<Box<jk_member>>,
    Vec<CString>,
    Option<DetailStorage>,
);

/// Frees a status returned by `jk_admin_status`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_node_status_free(status: *mut jk_node_status) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_node_status, StatusStorage>(status);
    }
}

/// The voters, observers and leader as the leader knows them. On success `*out` is a new
/// `jk_cluster_configuration` for `jk_cluster_configuration_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_cluster_configuration(
    client: *const jk_client,
    out: *mut *mut jk_cluster_configuration,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let c = block_on(client.admin().cluster_configuration())??;
        out.set(to_owned_view(ConfigStorage::new(&c), ConfigStorage::view));
        Ok(())
    }
}

/// Frees a configuration returned by `jk_admin_cluster_configuration` (not the one inside a
/// `jk_node_status`). NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_cluster_configuration_free(configuration: *mut jk_cluster_configuration) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_cluster_configuration, ConfigStorage>(configuration);
    }
}

/// The admin of `client` with the bound of one change: `timeout_ms` 0 is the core's default
/// (60 s); more than `JK_MAX_ADMIN_TIMEOUT_MS` is refused with the server's message, before
/// the client waits (the core's `Admin::with_timeout` does not check its bound).
pub(crate) fn admin(client: &Client, timeout_ms: u64) -> Result<Admin<'_>, Failure> {
    Ok(client.admin().with_timeout(admin_timeout(timeout_ms)?))
}

/// The bound `timeout_ms` stands for (see [`admin`]).
pub(crate) fn admin_timeout(timeout_ms: u64) -> Result<Duration, Failure> {
    match timeout_ms {
        0 => Ok(DEFAULT_ADMIN_TIMEOUT),
        ms if ms <= MAX_ADMIN_TIMEOUT_MS => Ok(Duration::from_millis(ms)),
        ms => Err(Failure::invalid(format!(
            "timeout_ms {ms} exceeds {MAX_ADMIN_TIMEOUT_MS}"
        ))),
    }
}

/// The members of a `jk_member` array argument (a NULL address is `""`: already known).
fn members_arg(ptr: *const jk_member, len: usize, what: &str) -> Result<Vec<Member>, Failure> {
    slice_arg(ptr, len, what)?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let addr = if m.addr.is_null() {
                String::new()
            } else {
                str_arg(m.addr, &format!("{what}[{i}].addr"))?.to_string()
            };
            Ok(Member {
                node_id: m.node_id,
                addr,
            })
        })
        .collect()
}

/// Moves the voters from `old_voters` (`old_len` node ids; refused unless exactly the current
/// voters and no change is in progress) to `new_voters` (`new_len` members; a member not yet in
/// the cluster needs its `"host:port"` address, others may have NULL or `""`). New members
/// join as learners, catch up and are then promoted through joint consensus; returns once the
/// final configuration is committed. `timeout_ms` bounds the change (0: the default, 60 s; at
/// most `JK_MAX_ADMIN_TIMEOUT_MS`). Errors: `JK_STATUS_INVALID_ARGUMENT` (old voters differ, a
/// change already in progress, a new member without a known address, bad ids or addresses),
/// `JK_STATUS_TIMEOUT` (a new member did not catch up in time: the change is cancelled and the
/// voters stay `old_voters`), `JK_STATUS_UNAVAILABLE` / `JK_STATUS_NOT_LEADER` (no leader in
/// time). The arrays are borrowed for the call only. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_update_voters(
    client: *const jk_client,
    old_voters: *const u64,
    old_len: usize,
    new_voters: *const jk_member,
    new_len: usize,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let old = slice_arg(old_voters, old_len, "old_voters")?;
        let new = members_arg(new_voters, new_len, "new_voters")?;
        let admin = admin(client, timeout_ms)?;
        Ok(block_on(admin.update_voters(old, &new))??)
    }
}

/// Adds `node_id`, reachable at `addr` (`"host:port"`), as a voter: the node must be running
/// (an embedded one started with `jk_server_start_joining`, or `join = true` in its TOML); it
/// is added as a learner, caught up, then promoted. `timeout_ms` and the errors are those of
/// `jk_admin_update_voters`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_add_voter(
    client: *const jk_client,
    node_id: u64,
    addr: *const c_char,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let addr = str_arg(addr, "addr")?;
        let admin = admin(client, timeout_ms)?;
        Ok(block_on(admin.add_voter(node_id, addr))??)
    }
}

/// Removes voter `node_id` (it may be the leader: leadership moves to a remaining voter; the
/// last voter cannot be removed). The removed node stops serving once the configuration
/// without it is committed (see `jk_server_wait_for_removed`). `timeout_ms` and the errors are
/// those of `jk_admin_update_voters`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_remove_voter(
    client: *const jk_client,
    node_id: u64,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let admin = admin(client, timeout_ms)?;
        Ok(block_on(admin.remove_voter(node_id))??)
    }
}

/// What `jk_admin_convert_role` makes a node (passed as `uint32_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_member_role {
    /// A voter: counts toward quorums and may lead.
    Voter = 0,
    /// An observer: a read replica that pulls committed entries from its parents.
    Observer = 1,
}

fn member_role_arg(raw: u32) -> Result<MemberRole, Failure> {
    Ok(match raw {
        x if x == jk_member_role::Voter as u32 => MemberRole::Voter,
        x if x == jk_member_role::Observer as u32 => MemberRole::Observer,
        other => {
            return Err(Failure::invalid(format!(
                "role {other} is not a jk_member_role"
            )));
        }
    })
}

/// Converts `node_id` to `role` (a `jk_member_role`) and returns once the final configuration
/// is committed. To `JK_MEMBER_ROLE_OBSERVER`: the node must be a voter and not the last one;
/// it keeps its data and goes on as an observer pulling from its parents (or the voters). To
/// `JK_MEMBER_ROLE_VOTER`: the node must be a registered observer (started with
/// `jk_server_start_observer` or `role = "observer"`); it is caught up and promoted.
/// Converting a node to the role it has succeeds. `JK_STATUS_INVALID_ARGUMENT` for an unknown
/// `role` or a node that is neither a voter nor a registered observer; `timeout_ms` and the
/// other errors are those of `jk_admin_update_voters`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_convert_role(
    client: *const jk_client,
    node_id: u64,
    role: u32,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let role = member_role_arg(role)?;
        let admin = admin(client, timeout_ms)?;
        Ok(block_on(admin.convert_role(node_id, role))??)
    }
}

/// Hands leadership to voter `node_id` (writes wait meanwhile; none is lost) and returns once
/// it leads. `JK_STATUS_INVALID_ARGUMENT` when `node_id` is not a voter of a settled
/// configuration or a transfer is already in progress; `JK_STATUS_TIMEOUT` when it did not
/// take over within `timeout_ms` (0: the default, 60 s; at most `JK_MAX_ADMIN_TIMEOUT_MS`).
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_transfer_leader(
    client: *const jk_client,
    node_id: u64,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let admin = admin(client, timeout_ms)?;
        Ok(block_on(admin.transfer_leader(node_id))??)
    }
}

/// Records voter `node_id` as the preferred leader in the replicated configuration (whenever it
/// is alive and caught up, leadership moves to it, also after it restarts), or clears it when
/// `node_id` is 0 (node ids are never 0). Returns once recorded; `JK_STATUS_INVALID_ARGUMENT`
/// when `node_id` is not a voter. Each node reports it in `jk_server_standing`. Blocking (at
/// most the client's request timeout). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_set_preferred_leader(
    client: *const jk_client,
    node_id: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let node = (node_id != 0).then_some(node_id);
        Ok(block_on(client.admin().set_preferred_leader(node))??)
    }
}
