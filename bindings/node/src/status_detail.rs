//! `admin.status(node).detail`: the monitoring detail of a node's status (protocol 1.4).

use journalkeeper::api;
use journalkeeper::client::protocol::NodeDetail as CoreDetail;
use napi_derive::napi;

use crate::to_number;

/// What a node reports for monitoring. Times are milliseconds ago on that node's clock.
#[napi(object)]
pub struct NodeDetail {
    /// First index in the node's log (the min index).
    pub first_index: f64,
    /// Highest log index durable on the node's disk.
    pub durable_index: f64,
    pub preferred_leader: Option<f64>,
    /// Per declared partition, its min and max index.
    pub partitions: Vec<PartitionBounds>,
    /// Absent when the data directory's filesystem could not be measured.
    pub disk: Option<DiskUsage>,
    /// On a non-leader: how long ago it last heard a leader (absent: never since it started).
    pub leader_last_heard_ms: Option<f64>,
    /// On the leader: every other member's replication (empty elsewhere).
    pub followers: Vec<FollowerStatus>,
}

/// One partition's index range.
#[napi(object)]
pub struct PartitionBounds {
    pub partition: u32,
    /// Smallest readable index.
    pub min_index: f64,
    /// Next index to be written.
    pub max_index: f64,
}

/// The filesystem holding the node's data directory.
#[napi(object)]
pub struct DiskUsage {
    pub path: String,
    pub total_bytes: f64,
    /// Used on the whole filesystem.
    pub used_bytes: f64,
    /// Available to the node.
    pub free_bytes: f64,
}

/// A follower's replication as the leader tracks it.
#[napi(object)]
pub struct FollowerStatus {
    pub node_id: f64,
    /// Next log index the leader sends it.
    pub next_index: f64,
    /// Highest log index known durable on it and matching the leader's log.
    pub match_index: f64,
    /// The leader's last index less `matchIndex`.
    pub lag: f64,
    /// How long ago the leader last heard from it.
    pub last_heard_ms: f64,
}

pub(crate) fn node_detail(d: CoreDetail) -> Result<NodeDetail, api::Error> {
    Ok(NodeDetail {
        first_index: to_number("firstIndex", d.first_index)?,
        durable_index: to_number("durableIndex", d.durable_index)?,
        preferred_leader: d
            .preferred_leader
            .map(|p| to_number("preferredLeader", p))
            .transpose()?,
        partitions: d
            .partitions
            .into_iter()
            .map(|p| {
                Ok(PartitionBounds {
                    partition: p.partition.into(),
                    min_index: to_number("minIndex", p.min_index)?,
                    max_index: to_number("maxIndex", p.max_index)?,
                })
            })
            .collect::<Result<_, api::Error>>()?,
        disk: d
            .disk
            .map(|u| {
                Ok::<_, api::Error>(DiskUsage {
                    path: u.path,
                    total_bytes: to_number("totalBytes", u.total_bytes)?,
                    used_bytes: to_number("usedBytes", u.used_bytes)?,
                    free_bytes: to_number("freeBytes", u.free_bytes)?,
                })
            })
            .transpose()?,
        leader_last_heard_ms: d
            .leader_last_heard_ms
            .map(|t| to_number("leaderLastHeardMs", t))
            .transpose()?,
        followers: d
            .followers
            .into_iter()
            .map(|f| {
                Ok(FollowerStatus {
                    node_id: to_number("nodeId", f.node_id)?,
                    next_index: to_number("nextIndex", f.next_index)?,
                    match_index: to_number("matchIndex", f.match_index)?,
                    lag: to_number("lag", f.lag)?,
                    last_heard_ms: to_number("lastHeardMs", f.last_heard_ms)?,
                })
            })
            .collect::<Result<_, api::Error>>()?,
    })
}
