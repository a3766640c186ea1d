//! The coordination handles that live on after their call: a lease kept alive in the background
//! (`jk_keep_alive`), a registration in a liveness group that keeps itself alive
//! (`jk_registration`), an election observer (`jk_election_observer`) and a members watch
//! (`jk_members_watch`). The last two are read with a blocking `*_next(timeout_ms)`, one caller
//! at a time (concurrent callers take turns).
//!
//! Owns: the handles' lifetimes (their background work runs on the library's runtime and ends
//! when they are freed). Never does: renew, decode or wait itself (the core does).

use std::ffi::{CString, c_char};
use std::sync::Mutex;
use std::time::Duration;

use journalkeeper::api::Error;
use journalkeeper::client::{
    ElectionObserver, KeepAlive, KeepAliveState, MemberEvent, MembersWatch, Registration,
};

use crate::args::{bytes_arg, out_arg, str_arg};
use crate::buffer::jk_bytes;
use crate::castable::{
    Castable, OwnershipBox, free_box, free_owned_view, to_boxed_mut_ptr, to_owned_view, try_ref,
};
use crate::client::{client_arg, jk_client};
use crate::coord::{election_leader, group_member, jk_election_leader, jk_group_member};
use crate::error::{Failure, jk_error, jk_status, lossy_cstring};
use crate::runtime::{block_on, runtime};

/// A lease kept alive in the background (a renewal every third of its TTL). Opaque. Made by
/// `jk_coord_keep_alive_start`; released by `jk_keep_alive_revoke` (ends the lease) or
/// `jk_keep_alive_free` (stops renewing: the lease runs out after its TTL). Thread-safe.
pub struct jk_keep_alive {
    _private: [u8; 0],
}

impl Castable for jk_keep_alive {
    type Ownership = OwnershipBox;
    type RustType = KeepAlive;
}

/// A member of a liveness group under its own lease, kept alive in the background. Opaque.
/// Made by `jk_coord_register`; released by `jk_registration_close` (the member leaves at once)
/// or `jk_registration_free` (stops renewing: it leaves when the lease runs out). Thread-safe.
pub struct jk_registration {
    _private: [u8; 0],
}

impl Castable for jk_registration {
    type Ownership = OwnershipBox;
    type RustType = Registration;
}

/// The leaders of one election as they change. Opaque. Made by `jk_coord_observe`, read with
/// `jk_election_observer_next`, released by `jk_election_observer_close`. Thread-safe.
pub struct jk_election_observer {
    _private: [u8; 0],
}

impl Castable for jk_election_observer {
    type Ownership = OwnershipBox;
    type RustType = Mutex<ElectionObserver>;
}

/// The joins and leaves of one liveness group. Opaque. Made by `jk_coord_watch_members`, read
/// with `jk_members_watch_next`, released by `jk_members_watch_close`. Thread-safe.
pub struct jk_members_watch {
    _private: [u8; 0],
}

impl Castable for jk_members_watch {
    type Ownership = OwnershipBox;
    type RustType = Mutex<MembersWatch>;
}

/// One change of a liveness group (`jk_members_watch_next`). Owned by the caller; free with
/// `jk_member_event_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_member_event {
    /// true: `member` joined (or re-registered with new `info`); false: it left (unregistered,
    /// or its lease ended), and `info` is empty, `lease` 0.
    pub joined: bool,
    pub member: jk_group_member,
}

type EventStorage = (CString, Vec<u8>);

/// Drops a value holding runtime resources (connections, tasks) inside the runtime.
fn drop_in_runtime<T>(value: T) {
    let _guard = runtime().ok().map(|rt| rt.enter());
    drop(value);
}

/// Waits at most `timeout_ms` for `next` (0: only what has already arrived).
fn next_within<T>(
    timeout_ms: u64,
    what: &str,
    next: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failure> {
    let timeout = Duration::from_millis(timeout_ms);
    // The timer is made inside the runtime (it needs its clock).
    match block_on(async { tokio::time::timeout(timeout, next).await })? {
        Ok(r) => Ok(r?),
        Err(_) => Err(Failure::new(
            jk_status::Timeout,
            format!("no {what} within {timeout_ms} ms"),
        )),
    }
}

/// Keeps `lease` alive in the background until the handle is released or the lease is lost:
/// renews it once now (`JK_STATUS_LEASE_EXPIRED` when it is gone), then every third of its TTL.
/// On success `*out` is a new handle. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_keep_alive_start(
    client: *const jk_client,
    lease: u64,
    out: *mut *mut jk_keep_alive,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let keep_alive = block_on(client.coord().keep_alive_forever(lease))??;
        out.set(to_boxed_mut_ptr::<jk_keep_alive>(keep_alive));
        Ok(())
    }
}

/// Whether the lease is still kept: `JK_STATUS_OK` with `remaining_ms_out` (may be NULL) the
/// time the leader gave it at the last renewal; once it is lost, the reason
/// (`JK_STATUS_LEASE_EXPIRED` when it ended, `JK_STATUS_CLOSED` when the client was closed).
/// Does not block. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_keep_alive_state(
    keep_alive: *const jk_keep_alive,
    remaining_ms_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = crate::args::opt_out_arg(remaining_ms_out);
        let keep_alive = try_ref::<jk_keep_alive>(keep_alive, "keep_alive")?;
        match keep_alive.state() {
            KeepAliveState::Alive { remaining_ms } => {
                if let Some(out) = out {
                    out.set(remaining_ms);
                }
                Ok(())
            }
            KeepAliveState::Lost(e) => Err(e.into()),
        }
    }
}

/// The lease a keep-alive renews (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn jk_keep_alive_lease(keep_alive: *const jk_keep_alive) -> u64 {
    ffi_boundary! { default = 0;
        try_ref::<jk_keep_alive>(keep_alive, "keep_alive").map_or(0, KeepAlive::lease)
    }
}

/// Stops the renewals, ends the lease now (as `jk_coord_revoke`) and frees the handle — also
/// when the revoke fails (its status is returned). NULL is allowed (nothing happens).
/// Blocking. Must be the last call on `keep_alive`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_keep_alive_revoke(
    keep_alive: *mut jk_keep_alive,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        match free_box::<jk_keep_alive>(keep_alive) {
            Some(keep_alive) => Ok(block_on(keep_alive.revoke())??),
            None => Ok(()),
        }
    }
}

/// Stops the renewals and frees the handle; the lease runs out after its TTL. NULL is allowed.
/// Must be the last call on `keep_alive`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_keep_alive_free(keep_alive: *mut jk_keep_alive) {
    ffi_boundary! { default = ();
        if let Some(keep_alive) = free_box::<jk_keep_alive>(keep_alive) {
            drop_in_runtime(keep_alive);
        }
    }
}

/// Registers `member` of `group` (no '/') with `info` (copied) under a new lease of `ttl_ms`
/// kept alive in the background: `jk_coord_members` lists it while the handle lives (and the
/// process does). On success `*out` is a new handle. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_register(
    client: *const jk_client,
    group: *const c_char,
    member: *const c_char,
    info: jk_bytes,
    ttl_ms: u64,
    out: *mut *mut jk_registration,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let group = str_arg(group, "group")?;
        let member = str_arg(member, "member")?;
        let info = bytes_arg(&info, "info.data")?.to_vec();
        let ttl = Duration::from_millis(ttl_ms);
        let registration = block_on(client.coord().register(group, member, info, ttl))??;
        out.set(to_boxed_mut_ptr::<jk_registration>(registration));
        Ok(())
    }
}

/// The lease a registration lives under (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn jk_registration_lease(registration: *const jk_registration) -> u64 {
    ffi_boundary! { default = 0;
        try_ref::<jk_registration>(registration, "registration").map_or(0, |r| r.lease)
    }
}

/// Ends the registration now (revokes its lease: the member leaves every group at once) and
/// frees the handle — also when the revoke fails (its status is returned). NULL is allowed.
/// Blocking. Must be the last call on `registration`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_registration_close(
    registration: *mut jk_registration,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        match free_box::<jk_registration>(registration) {
            Some(registration) => Ok(block_on(registration.close())??),
            None => Ok(()),
        }
    }
}

/// Stops renewing the registration's lease and frees the handle; the member leaves when the
/// lease runs out. NULL is allowed. Must be the last call on `registration`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_registration_free(registration: *mut jk_registration) {
    ffi_boundary! { default = ();
        if let Some(registration) = free_box::<jk_registration>(registration) {
            drop_in_runtime(registration);
        }
    }
}

/// Follows the leader of election `name`: the first `jk_election_observer_next` returns the
/// current one, each later one the next change. On success `*out` is a new handle for
/// `jk_election_observer_close`. Blocking until the watch is registered. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_observe(
    client: *const jk_client,
    name: *const c_char,
    out: *mut *mut jk_election_observer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let observer = block_on(client.coord().observe(name))??;
        out.set(to_boxed_mut_ptr::<jk_election_observer>(Mutex::new(observer)));
        Ok(())
    }
}

/// Waits at most `timeout_ms` (0: only a change already received) for the next leader:
/// `*leader_out` is a new `jk_election_leader` for `jk_election_leader_free`, or NULL when
/// nobody leads now. `JK_STATUS_TIMEOUT` when the leader did not change in time (the observer
/// stays usable); `JK_STATUS_CLOSED` once the client is closed. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_election_observer_next(
    observer: *const jk_election_observer,
    timeout_ms: u64,
    leader_out: *mut *mut jk_election_leader,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(leader_out, "leader_out")?;
        let observer = try_ref::<jk_election_observer>(observer, "observer")?;
        let mut observer = observer.lock().unwrap_or_else(|e| e.into_inner());
        out.set(election_leader(next_within(timeout_ms, "leader change", observer.next())?));
        Ok(())
    }
}

/// Stops observing and frees the handle. NULL is allowed. Must be the last call on `observer`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_election_observer_close(observer: *mut jk_election_observer) {
    ffi_boundary! { default = ();
        if let Some(observer) = free_box::<jk_election_observer>(observer) {
            drop_in_runtime(observer);
        }
    }
}

/// Follows the members of `group` joining and leaving from now on (list the current ones with
/// `jk_coord_members`). On success `*out` is a new handle for `jk_members_watch_close`.
/// Blocking until the watch is registered. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_watch_members(
    client: *const jk_client,
    group: *const c_char,
    out: *mut *mut jk_members_watch,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let group = str_arg(group, "group")?;
        let watch = block_on(client.coord().watch_members(group))??;
        out.set(to_boxed_mut_ptr::<jk_members_watch>(Mutex::new(watch)));
        Ok(())
    }
}

/// Waits at most `timeout_ms` (0: only a change already received) for the next join or leave:
/// `*event_out` is a new `jk_member_event` for `jk_member_event_free`. `JK_STATUS_TIMEOUT` when
/// none came in time (the watch stays usable); `JK_STATUS_CLOSED` once the client is closed.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_members_watch_next(
    watch: *const jk_members_watch,
    timeout_ms: u64,
    event_out: *mut *mut jk_member_event,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(event_out, "event_out")?;
        let watch = try_ref::<jk_members_watch>(watch, "watch")?;
        let mut watch = watch.lock().unwrap_or_else(|e| e.into_inner());
        let (joined, name, info, lease) = match next_within(timeout_ms, "member change", watch.next())? {
            MemberEvent::Joined(m) => (true, m.member, m.info, m.lease),
            MemberEvent::Left { member } => (false, member, Vec::new(), 0),
        };
        out.set(to_owned_view::<jk_member_event, EventStorage>(
            (lossy_cstring(name), info),
            |(n, i)| jk_member_event { joined, member: group_member(n, i, lease) },
        ));
        Ok(())
    }
}

/// Frees an event returned by `jk_members_watch_next`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_member_event_free(event: *mut jk_member_event) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_member_event, EventStorage>(event);
    }
}

/// Stops the watch and frees the handle. NULL is allowed. Must be the last call on `watch`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_members_watch_close(watch: *mut jk_members_watch) {
    ffi_boundary! { default = ();
        if let Some(watch) = free_box::<jk_members_watch>(watch) {
            drop_in_runtime(watch);
        }
    }
}
