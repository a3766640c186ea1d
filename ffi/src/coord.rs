//! The coordination recipes as blocking calls: leases (grant, revoke, one keep-alive,
//! time-to-live), KV keys under a lease, locks with fencing tokens, elections (campaign, resign,
//! the current leader), ID ranges and liveness groups (unregister, the members). The handles
//! that live on (a background keep-alive, a registration, an election observer, a members
//! watch) are in `coord_handles`.
//!
//! Thin: every call is one `Client::coord()` call; results are plain values or views freed with
//! `jk_lease_status_free`, `jk_election_leader_free`, `jk_group_members_free`.

use std::ffi::{CString, c_char};
use std::time::Duration;

use journalkeeper::client::protocol::LeaseStatus;
use journalkeeper::client::{ElectionLeader, GroupMember};

use crate::args::{bytes_arg, opt_out_arg, out_arg, str_arg};
use crate::buffer::{buffer_view, jk_buffer, jk_bytes};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{jk_error, jk_status, lossy_cstring};
use crate::runtime::block_on;

/// A lease as the leader sees it (`jk_coord_time_to_live`). Owned by the caller; free with
/// `jk_lease_status_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_lease_status {
    pub lease: u64,
    /// The TTL it was granted with.
    pub ttl_ms: u64,
    /// Time left before the leader ends it.
    pub remaining_ms: u64,
    /// The KV keys attached to it (NUL-terminated strings).
    pub keys: *const *const c_char,
    pub keys_len: usize,
}

type LeaseStorage = (Vec<CString>, Vec<*const c_char>);

/// The leader of an election. Owned by the caller; free with `jk_election_leader_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_election_leader {
    /// The value it campaigned with.
    pub value: jk_buffer,
    /// The lease it leads under.
    pub lease: u64,
    /// Its fencing token: increases with every new leader of the election.
    pub token: u64,
}

/// A live member of a liveness group (an element of `jk_group_members`).
#[repr(C)]
#[derive(Debug)]
pub struct jk_group_member {
    /// NUL-terminated.
    pub member: *const c_char,
    pub info: jk_buffer,
    /// The lease it lives under.
    pub lease: u64,
}

/// The live members of a group (`jk_coord_members`), by member name. Owned by the caller; free
/// with `jk_group_members_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_group_members {
    pub members: *const jk_group_member,
    pub len: usize,
}

type MembersStorage = (Vec<(CString, Vec<u8>)>, Vec<jk_group_member>);

pub(crate) fn lease_status(status: LeaseStatus) -> *mut jk_lease_status {
    let keys: Vec<CString> = status.keys.into_iter().map(lossy_cstring).collect();
    let ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
    to_owned_view::<jk_lease_status, LeaseStorage>((keys, ptrs), |(_, p)| jk_lease_status {
        lease: status.lease,
        ttl_ms: status.ttl_ms,
        remaining_ms: status.remaining_ms,
        keys: p.as_ptr(),
        keys_len: p.len(),
    })
}

/// A heap `jk_election_leader` (NULL for `None`).
pub(crate) fn election_leader(leader: Option<ElectionLeader>) -> *mut jk_election_leader {
    let Some(l) = leader else {
        return std::ptr::null_mut();
    };
    to_owned_view::<jk_election_leader, Vec<u8>>(l.value, |v| jk_election_leader {
        value: buffer_view(v),
        lease: l.lease,
        token: l.token,
    })
}

/// A view of one group member whose strings live in `storage`.
pub(crate) fn group_member(name: &CString, info: &[u8], lease: u64) -> jk_group_member {
    jk_group_member {
        member: name.as_ptr(),
        info: buffer_view(info),
        lease,
    }
}

fn group_members(members: Vec<GroupMember>) -> *mut jk_group_members {
    let lease: Vec<u64> = members.iter().map(|m| m.lease).collect();
    let owned: Vec<(CString, Vec<u8>)> = members
        .into_iter()
        .map(|m| (lossy_cstring(m.member), m.info))
        .collect();
    let views = owned
        .iter()
        .zip(lease)
        .map(|((n, i), l)| group_member(n, i, l))
        .collect();
    to_owned_view::<jk_group_members, MembersStorage>((owned, views), |(_, v)| jk_group_members {
        members: v.as_ptr(),
        len: v.len(),
    })
}

/// Grants a lease of `ttl_ms` milliseconds (100 ms ..= 7 days): `*lease_out` is its id. Keep it
/// alive within its TTL (`jk_coord_keep_alive`, or `jk_coord_keep_alive_start`), or everything
/// attached to it ends when the leader sees it run out. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_grant(
    client: *const jk_client,
    ttl_ms: u64,
    lease_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(lease_out, "lease_out")?;
        let client = client_arg(client)?;
        out.set(block_on(client.coord().grant(Duration::from_millis(ttl_ms)))??);
        Ok(())
    }
}

/// Ends `lease` now: its keys are removed, its locks released, its campaigns and registrations
/// withdrawn. `existed_out` may be NULL; else it says whether the lease still existed.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_revoke(
    client: *const jk_client,
    lease: u64,
    existed_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(existed_out);
        let client = client_arg(client)?;
        let existed = block_on(client.coord().revoke(lease))??;
        if let Some(out) = out {
            out.set(existed);
        }
        Ok(())
    }
}

/// Renews `lease` once for its full TTL from now (`JK_STATUS_LEASE_EXPIRED` when it is gone).
/// `remaining_ms_out` may be NULL; else it receives the time the leader now gives it. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_keep_alive(
    client: *const jk_client,
    lease: u64,
    remaining_ms_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(remaining_ms_out);
        let client = client_arg(client)?;
        let status = block_on(client.coord().keep_alive(lease))??;
        if let Some(out) = out {
            out.set(status.remaining_ms);
        }
        Ok(())
    }
}

/// What `lease` has left and which keys are attached to it (`JK_STATUS_LEASE_EXPIRED` when it
/// is gone). On success `*out` is a new `jk_lease_status` for `jk_lease_status_free`.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_time_to_live(
    client: *const jk_client,
    lease: u64,
    out: *mut *mut jk_lease_status,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        out.set(lease_status(block_on(client.coord().time_to_live(lease))??));
        Ok(())
    }
}

/// Frees a status returned by `jk_coord_time_to_live`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_lease_status_free(status: *mut jk_lease_status) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_lease_status, LeaseStorage>(status);
    }
}

/// Sets KV `key` to `value` (bounds as `jk_kv_set`), attached to `lease`: the key is removed
/// when the lease ends (watchers see the removal); a later plain KV write detaches it.
/// `JK_STATUS_LEASE_EXPIRED` when the lease is gone. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_put(
    client: *const jk_client,
    key: *const c_char,
    value: jk_bytes,
    lease: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let value = bytes_arg(&value, "value.data")?.to_vec();
        Ok(block_on(client.coord().put(key, value, lease))??)
    }
}

/// Waits until `lease` holds lock `name` (waiters are served in the order they asked) and
/// stores its fencing token (strictly increasing with every acquisition of the lock) in
/// `*token_out`. `JK_STATUS_LEASE_EXPIRED` when the lease ends first. Blocking, without bound:
/// use `jk_coord_try_lock` to give up. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_lock(
    client: *const jk_client,
    name: *const c_char,
    lease: u64,
    token_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(token_out, "token_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        out.set(block_on(client.coord().lock(name, lease))??);
        Ok(())
    }
}

/// Like `jk_coord_lock`, waiting at most `wait_ms` (0: not at all). `*acquired_out` says
/// whether `lease` holds the lock; if so `*token_out` is its token (else 0, and the lease has
/// left the queue again). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_try_lock(
    client: *const jk_client,
    name: *const c_char,
    lease: u64,
    wait_ms: u64,
    acquired_out: *mut bool,
    token_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let acquired = out_arg(acquired_out, "acquired_out")?;
        let token = out_arg(token_out, "token_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let wait = Duration::from_millis(wait_ms);
        let held = block_on(client.coord().try_lock(name, lease, wait))??;
        acquired.set(held.is_some());
        token.set(held.unwrap_or(0));
        Ok(())
    }
}

/// Releases lock `name` held by `lease` (the next waiter holds it), or withdraws a waiting
/// `lease`. `held_out` may be NULL; else it says whether `lease` held the lock. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_unlock(
    client: *const jk_client,
    name: *const c_char,
    lease: u64,
    held_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(held_out);
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let held = block_on(client.coord().unlock(name, lease))??;
        if let Some(out) = out {
            out.set(held);
        }
        Ok(())
    }
}

/// Campaigns in election `name` with `value` (copied): waits until `lease` leads (candidates
/// lead in the order they campaigned) and stores its token in `*token_out`.
/// `JK_STATUS_LEASE_EXPIRED` when the lease ends first. Blocking, without bound. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_campaign(
    client: *const jk_client,
    name: *const c_char,
    value: jk_bytes,
    lease: u64,
    token_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(token_out, "token_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let value = bytes_arg(&value, "value.data")?.to_vec();
        out.set(block_on(client.coord().campaign(name, value, lease))??);
        Ok(())
    }
}

/// Gives up leading (or campaigning in) election `name`; the next candidate leads.
/// `led_out` may be NULL; else it says whether `lease` was the leader. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_resign(
    client: *const jk_client,
    name: *const c_char,
    lease: u64,
    led_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(led_out);
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let led = block_on(client.coord().resign(name, lease))??;
        if let Some(out) = out {
            out.set(led);
        }
        Ok(())
    }
}

/// The current leader of election `name` (a STRICT read). On success `*out` is a new
/// `jk_election_leader` for `jk_election_leader_free`, or NULL when nobody leads. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_leader(
    client: *const jk_client,
    name: *const c_char,
    out: *mut *mut jk_election_leader,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        out.set(election_leader(block_on(client.coord().leader(name))??));
        Ok(())
    }
}

/// Frees a leader returned by `jk_coord_leader` or `jk_election_observer_next`. NULL is
/// allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_election_leader_free(leader: *mut jk_election_leader) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_election_leader, Vec<u8>>(leader);
    }
}

/// The next value of sequence `name` (1, 2, 3, …; unique and increasing across leader changes
/// and restarts) in `*id_out`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_next_id(
    client: *const jk_client,
    name: *const c_char,
    id_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(id_out, "id_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        out.set(block_on(client.coord().next_id(name))??);
        Ok(())
    }
}

/// The next `count` values (1 ..= 1 000 000) of sequence `name`, as one contiguous range:
/// `*first_out` ..= `*first_out + count - 1`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_next_ids(
    client: *const jk_client,
    name: *const c_char,
    count: u64,
    first_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(first_out, "first_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        out.set(block_on(client.coord().next_ids(name, count))??.start);
        Ok(())
    }
}

/// Removes `member` from `group` when it is registered under `lease`. `existed_out` may be
/// NULL; else it says whether it was. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_unregister(
    client: *const jk_client,
    group: *const c_char,
    member: *const c_char,
    lease: u64,
    existed_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(existed_out);
        let client = client_arg(client)?;
        let group = str_arg(group, "group")?;
        let member = str_arg(member, "member")?;
        let existed = block_on(client.coord().unregister(group, member, lease))??;
        if let Some(out) = out {
            out.set(existed);
        }
        Ok(())
    }
}

/// The live members of `group`, by member name (a STRICT read). On success `*out` is a new
/// `jk_group_members` for `jk_group_members_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_coord_members(
    client: *const jk_client,
    group: *const c_char,
    out: *mut *mut jk_group_members,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let group = str_arg(group, "group")?;
        out.set(group_members(block_on(client.coord().members(group))??));
        Ok(())
    }
}

/// Frees members returned by `jk_coord_members`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_group_members_free(members: *mut jk_group_members) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_group_members, MembersStorage>(members);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn views_own_their_keys_values_and_names() {
        let status = lease_status(LeaseStatus {
            lease: 7,
            ttl_ms: 1000,
            remaining_ms: 900,
            keys: vec!["a".into(), "b/c".into()],
        });
        // SAFETY: a live status made above; `keys` holds `keys_len` NUL-terminated strings.
        let keys: Vec<&str> = unsafe {
            let s = &*status;
            assert_eq!((s.lease, s.ttl_ms, s.remaining_ms), (7, 1000, 900));
            std::slice::from_raw_parts(s.keys, s.keys_len)
                .iter()
                .map(|k| CStr::from_ptr(*k).to_str().unwrap())
                .collect()
        };
        assert_eq!(keys, ["a", "b/c"]);
        jk_lease_status_free(status);

        assert!(election_leader(None).is_null());
        let leader = election_leader(Some(ElectionLeader {
            value: b"me".to_vec(),
            lease: 3,
            token: 9,
        }));
        // SAFETY: a live leader made above whose value holds `len` bytes.
        unsafe {
            let l = &*leader;
            assert_eq!((l.lease, l.token), (3, 9));
            assert_eq!(std::slice::from_raw_parts(l.value.data, l.value.len), b"me");
        }
        jk_election_leader_free(leader);

        let members = group_members(vec![GroupMember {
            member: "m1".into(),
            info: b"i".to_vec(),
            lease: 5,
        }]);
        // SAFETY: a live list made above holding `len` members.
        unsafe {
            let m = &*members;
            let first = &*m.members;
            assert_eq!(m.len, 1);
            assert_eq!(CStr::from_ptr(first.member).to_str().unwrap(), "m1");
            assert_eq!(first.lease, 5);
        }
        jk_group_members_free(members);
        jk_group_members_free(std::ptr::null_mut());
    }
}
