//! The monitoring detail of a node's status (`jk_node_status.detail`, protocol 1.4): a view
//! into arrays and a string owned by the status it is part of.

use std::ffi::{CString, c_char};

use journalkeeper::client::protocol::NodeDetail;

use crate::error::lossy_cstring;

/// One partition's index range (`jk_node_detail.partitions`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_partition_bounds {
    pub partition: u16,
    /// Smallest readable index.
    pub min_index: u64,
    /// Next index to be written.
    pub max_index: u64,
}

/// A follower's replication as the leader tracks it (`jk_node_detail.followers`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_follower_status {
    pub node_id: u64,
    /// Next log index the leader sends it.
    pub next_index: u64,
    /// Highest log index known durable on it and matching the leader's log.
    pub match_index: u64,
    /// The leader's last index less `match_index`.
    pub lag: u64,
    /// How long ago the leader last heard from it.
    pub last_heard_ms: u64,
}

/// What a node reports beyond the status for monitoring (`jk_node_status.detail`). Times are
/// milliseconds ago on the reporting node's clock. Everything it points to is owned by the
/// `jk_node_status` it is part of.
#[repr(C)]
#[derive(Debug)]
pub struct jk_node_detail {
    /// First index in the node's log (the min index).
    pub first_index: u64,
    /// Highest log index durable on the node's disk.
    pub durable_index: u64,
    /// Whether a preferred leader is recorded (then `preferred_leader` is its node id).
    pub has_preferred_leader: bool,
    pub preferred_leader: u64,
    /// Per declared partition, its min and max index.
    pub partitions: *const jk_partition_bounds,
    pub partitions_len: usize,
    /// Whether the data directory's filesystem could be measured (then the `disk_*` fields
    /// are set; `disk_path` is NULL otherwise).
    pub has_disk: bool,
    pub disk_path: *const c_char,
    pub disk_total_bytes: u64,
    /// Used on the whole filesystem.
    pub disk_used_bytes: u64,
    /// Available to the node.
    pub disk_free_bytes: u64,
    /// On a non-leader: whether it ever heard a leader since it started, and how long ago it
    /// last did.
    pub has_leader_last_heard: bool,
    pub leader_last_heard_ms: u64,
    /// On the leader: every other member's replication (empty elsewhere).
    pub followers: *const jk_follower_status,
    pub followers_len: usize,
}

/// The arrays and string a `jk_node_detail` points into.
pub(crate) struct DetailStorage {
    partitions: Vec<jk_partition_bounds>,
    followers: Vec<jk_follower_status>,
    disk_path: Option<CString>,
    detail: NodeDetail,
}

impl DetailStorage {
    pub(crate) fn new(d: NodeDetail) -> Self {
        DetailStorage {
            partitions: d
                .partitions
                .iter()
                .map(|p| jk_partition_bounds {
                    partition: p.partition,
                    min_index: p.min_index,
                    max_index: p.max_index,
                })
                .collect(),
            followers: d
                .followers
                .iter()
                .map(|f| jk_follower_status {
                    node_id: f.node_id,
                    next_index: f.next_index,
                    match_index: f.match_index,
                    lag: f.lag,
                    last_heard_ms: f.last_heard_ms,
                })
                .collect(),
            disk_path: d.disk.as_ref().map(|u| lossy_cstring(u.path.clone())),
            detail: d,
        }
    }

    pub(crate) fn view(&self) -> jk_node_detail {
        let d = &self.detail;
        let disk = d.disk.as_ref();
        jk_node_detail {
            first_index: d.first_index,
            durable_index: d.durable_index,
            has_preferred_leader: d.preferred_leader.is_some(),
            preferred_leader: d.preferred_leader.unwrap_or(0),
            partitions: self.partitions.as_ptr(),
            partitions_len: self.partitions.len(),
            has_disk: disk.is_some(),
            disk_path: self
                .disk_path
                .as_ref()
                .map_or(std::ptr::null(), |p| p.as_ptr()),
            disk_total_bytes: disk.map_or(0, |u| u.total_bytes),
            disk_used_bytes: disk.map_or(0, |u| u.used_bytes),
            disk_free_bytes: disk.map_or(0, |u| u.free_bytes),
            has_leader_last_heard: d.leader_last_heard_ms.is_some(),
            leader_last_heard_ms: d.leader_last_heard_ms.unwrap_or(0),
            followers: self.followers.as_ptr(),
            followers_len: self.followers.len(),
        }
    }

    /// The view of a status without detail (a node older than protocol 1.4): zeros, NULL
    /// pointers, empty arrays.
    pub(crate) fn empty_view() -> jk_node_detail {
        jk_node_detail {
            first_index: 0,
            durable_index: 0,
            has_preferred_leader: false,
            preferred_leader: 0,
            partitions: std::ptr::null(),
            partitions_len: 0,
            has_disk: false,
            disk_path: std::ptr::null(),
            disk_total_bytes: 0,
            disk_used_bytes: 0,
            disk_free_bytes: 0,
            has_leader_last_heard: false,
            leader_last_heard_ms: 0,
            followers: std::ptr::null(),
            followers_len: 0,
        }
    }
}
