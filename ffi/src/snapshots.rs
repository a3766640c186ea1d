//! Snapshot administration: `jk_admin_take_snapshot` (every node snapshots at one log index),
//! `jk_admin_snapshots` (what each member retains, as a `jk_snapshot_list` freed with
//! `jk_snapshot_list_free`) and `jk_admin_recover_snapshot` (the cluster's KV rolled back to a
//! retained snapshot), as blocking calls on the core's `Admin`.

use std::ffi::CString;

use journalkeeper::client::NodeSnapshots;
use journalkeeper::client::protocol::SnapshotInfo;

use crate::admin::{admin, admin_timeout, jk_member, member};
use crate::args::out_arg;
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, OwnedError, jk_error, jk_status};
use crate::runtime::block_on;

/// One snapshot a node retains.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_snapshot_info {
    /// The log index (and its term) of the last entry the snapshot holds.
    pub index: u64,
    pub term: u64,
    /// When the node saved it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// The snapshots one member retains (part of a `jk_snapshot_list`, which owns everything it
/// points to).
#[repr(C)]
#[derive(Debug)]
pub struct jk_node_snapshots {
    /// The member: node id and address.
    pub node: jk_member,
    /// Oldest first; none when the node could not be asked.
    pub snapshots: *const jk_snapshot_info,
    pub snapshots_len: usize,
    /// NULL when the node answered; else why it could not be asked (read it with the
    /// `jk_error_*` accessors; owned by the list: do not free it).
    pub error: *const jk_error,
}

/// Every member's snapshots, by node id (`jk_admin_snapshots`). Owned by the caller; free with
/// `jk_snapshot_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_snapshot_list {
    pub nodes: *const jk_node_snapshots,
    pub nodes_len: usize,
}

/// The strings, arrays and errors a list view points into (heap data that stays put when the
/// storage moves).
struct ListStorage {
    addrs: Vec<CString>,
    snapshots: Vec<Vec<jk_snapshot_info>>,
    errors: Vec<Option<OwnedError>>,
    nodes: Vec<jk_node_snapshots>,
}

fn info(s: &SnapshotInfo) -> jk_snapshot_info {
    jk_snapshot_info {
        index: s.index,
        term: s.term,
        time_ms: s.time_ms,
        size_bytes: s.size_bytes,
    }
}

impl ListStorage {
    fn new(list: Vec<NodeSnapshots>) -> Self {
        let mut addrs = Vec::with_capacity(list.len());
        let mut snapshots = Vec::with_capacity(list.len());
        let mut errors = Vec::with_capacity(list.len());
        let mut members = Vec::with_capacity(list.len());
        for n in list {
            members.push(member(&n.node, &mut addrs));
            snapshots.push(n.snapshots.iter().map(info).collect::<Vec<_>>());
            errors.push(n.error.map(|e| OwnedError::new(e.into())));
        }
        let nodes = members
            .into_iter()
            .zip(&snapshots)
            .zip(&errors)
            .map(|((node, s), e)| jk_node_snapshots {
                node,
                snapshots: s.as_ptr(),
                snapshots_len: s.len(),
                error: e.as_ref().map_or(std::ptr::null(), OwnedError::as_ptr),
            })
            .collect();
        ListStorage {
            addrs,
            snapshots,
            errors,
            nodes,
        }
    }

    fn view(&self) -> jk_snapshot_list {
        debug_assert!(self.addrs.len() == self.nodes.len());
        debug_assert!(self.snapshots.len() == self.errors.len());
        jk_snapshot_list {
            nodes: self.nodes.as_ptr(),
            nodes_len: self.nodes.len(),
        }
    }
}

/// Makes every node snapshot at one log index (a log entry) and returns that index in
/// `*index_out` once a majority of the voters have saved it (the others save theirs as they
/// apply the entry), so `jk_admin_recover_snapshot` can use it at once. `timeout_ms` bounds the
/// wait (0: the default, 60 s; at most `JK_MAX_ADMIN_TIMEOUT_MS`); `JK_STATUS_TIMEOUT` when a
/// majority did not save it in time (the snapshot may still be taken). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_take_snapshot(
    client: *const jk_client,
    timeout_ms: u64,
    index_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(index_out, "index_out")?;
        let client = client_arg(client)?;
        let admin = admin(client, timeout_ms)?;
        out.set(block_on(admin.take_snapshot())??);
        Ok(())
    }
}

/// The snapshots every member of the configuration (voters and learners) retains, by node id;
/// a node that cannot be asked is listed with its error and no snapshots (the call itself fails
/// only when the configuration cannot be read). On success `*out` is a new `jk_snapshot_list`
/// for `jk_snapshot_list_free`. Blocking (each node at most the client's request timeout).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_snapshots(
    client: *const jk_client,
    out: *mut *mut jk_snapshot_list,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let list = block_on(client.admin().snapshots())??;
        out.set(to_owned_view(ListStorage::new(list), ListStorage::view));
        Ok(())
    }
}

/// Frees a list returned by `jk_admin_snapshots`, with the errors it holds. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_snapshot_list_free(list: *mut jk_snapshot_list) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_snapshot_list, ListStorage>(list);
    }
}

/// Rolls the cluster's state back to the snapshot at log index `index` through a log entry, so
/// every node does the same at the same point, and returns once that entry is committed (a
/// STRICT read that follows sees the recovered state). The KV returns to the snapshot's keys
/// and values (watchers see each difference); journal entries stay (the journal is the log),
/// and so do the write sessions (a retried write never applies twice).
/// `JK_STATUS_INVALID_ARGUMENT` (nothing changes) unless a majority of the voters retain that
/// snapshot (`jk_admin_snapshots`; the message names who does), or while a membership change is
/// in progress. `timeout_ms` bounds the call (0: the default, 60 s; at most
/// `JK_MAX_ADMIN_TIMEOUT_MS`; each request also ends at the client's request timeout);
/// `JK_STATUS_TIMEOUT`: the recovery may or may not have taken effect. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_admin_recover_snapshot(
    client: *const jk_client,
    index: u64,
    timeout_ms: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let timeout = admin_timeout(timeout_ms)?;
        let admin = client.admin().with_timeout(timeout);
        let bounded = block_on(async {
            tokio::time::timeout(timeout, admin.recover_snapshot(index)).await
        })?;
        match bounded {
            Ok(recovered) => Ok(recovered?),
            Err(_) => Err(Failure::new(
                jk_status::Timeout,
                format!(
                    "recovering snapshot {index} did not finish within {} ms; it may or may not \
                     have taken effect",
                    timeout.as_millis()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use journalkeeper::api::{Error, ErrorKind};
    use journalkeeper::client::protocol::Member;

    use super::*;
    use crate::error::{jk_error_message, jk_error_status};

    #[test]
    fn a_list_owns_its_members_snapshots_and_errors() {
        let node = |id: u64| Member {
            node_id: id,
            addr: format!("127.0.0.1:{id}"),
        };
        let snap = SnapshotInfo {
            index: 10,
            term: 2,
            time_ms: 3,
            size_bytes: 4,
        };
        let list = to_owned_view(
            ListStorage::new(vec![
                NodeSnapshots {
                    node: node(1),
                    snapshots: vec![snap.clone(), SnapshotInfo { index: 20, ..snap }],
                    error: None,
                },
                NodeSnapshots {
                    node: node(2),
                    snapshots: Vec::new(),
                    error: Some(Error::new(ErrorKind::Unavailable, "node 2 is down")),
                },
            ]),
            ListStorage::view,
        );
        // SAFETY: `list` is a live view made above, freed at the end.
        let view = unsafe { &*list };
        // SAFETY: `nodes` holds `nodes_len` entries owned by the list.
        let nodes = unsafe { std::slice::from_raw_parts(view.nodes, view.nodes_len) };
        assert_eq!(nodes.len(), 2);
        // SAFETY: addresses are NUL-terminated strings owned by the list.
        let addr = unsafe { CStr::from_ptr(nodes[1].node.addr) };
        assert_eq!(
            (nodes[1].node.node_id, addr.to_str().unwrap()),
            (2, "127.0.0.1:2")
        );
        // SAFETY: `snapshots` holds `snapshots_len` entries owned by the list.
        let s = unsafe { std::slice::from_raw_parts(nodes[0].snapshots, nodes[0].snapshots_len) };
        assert_eq!(
            (s[0].index, s[0].term, s[0].time_ms, s[0].size_bytes),
            (10, 2, 3, 4)
        );
        assert_eq!(s[1].index, 20);
        assert!(nodes[0].error.is_null() && nodes[1].snapshots_len == 0);
        assert_eq!(jk_error_status(nodes[1].error), jk_status::Unavailable);
        // SAFETY: the message is a NUL-terminated string owned by the list's error.
        let msg = unsafe { CStr::from_ptr(jk_error_message(nodes[1].error)) };
        assert_eq!(msg.to_str().unwrap(), "node 2 is down");
        jk_snapshot_list_free(list);
        jk_snapshot_list_free(std::ptr::null_mut());
    }
}
