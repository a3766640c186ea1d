//! `admin.status(node)["detail"]`: the monitoring detail of a node's status (protocol 1.4) as
//! dicts (`journalkeeper/types.py` has their `TypedDict`s).

use journalkeeper::client::protocol::NodeDetail;
use pyo3::prelude::*;

/// `status["detail"]`.
#[derive(IntoPyObject)]
pub struct DetailDict {
    first_index: u64,
    durable_index: u64,
    preferred_leader: Option<u64>,
    partitions: Vec<PartitionDict>,
    disk: Option<DiskDict>,
    leader_last_heard_ms: Option<u64>,
    followers: Vec<FollowerDict>,
}

/// `status["detail"]["partitions"][i]`.
#[derive(IntoPyObject)]
pub struct PartitionDict {
    partition: u16,
    min_index: u64,
    max_index: u64,
}

/// `status["detail"]["disk"]`.
#[derive(IntoPyObject)]
pub struct DiskDict {
    path: String,
    total_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
}

/// `status["detail"]["followers"][i]`.
#[derive(IntoPyObject)]
pub struct FollowerDict {
    node_id: u64,
    next_index: u64,
    match_index: u64,
    lag: u64,
    last_heard_ms: u64,
}

impl From<NodeDetail> for DetailDict {
    fn from(d: NodeDetail) -> Self {
        DetailDict {
            first_index: d.first_index,
            durable_index: d.durable_index,
            preferred_leader: d.preferred_leader,
            partitions: d
                .partitions
                .into_iter()
                .map(|p| PartitionDict {
                    partition: p.partition,
                    min_index: p.min_index,
                    max_index: p.max_index,
                })
                .collect(),
            disk: d.disk.map(|u| DiskDict {
                path: u.path,
                total_bytes: u.total_bytes,
                used_bytes: u.used_bytes,
                free_bytes: u.free_bytes,
            }),
            leader_last_heard_ms: d.leader_last_heard_ms,
            followers: d
                .followers
                .into_iter()
                .map(|f| FollowerDict {
                    node_id: f.node_id,
                    next_index: f.next_index,
                    match_index: f.match_index,
                    lag: f.lag,
                    last_heard_ms: f.last_heard_ms,
                })
                .collect(),
        }
    }
}
