//! The monitoring detail of a node's status (protocol 1.4, `StatusDetail`) and the one JSON
//! shape of a [`NodeStatus`] (the CLI's `status --json` and a node's HTTP `GET /status`).
//!
//! Owns: the wire types of the detail ([`NodeDetail`] and its parts) and [`status_json`].
//! Never does: gathering the values (the server's driver does, `server/driver/status_detail.rs`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protocol::{ClusterConfiguration, Member, NodeResources, NodeStatus};

/// What a node reports beyond [`NodeStatus`] for monitoring (the seed's server status fields
/// that apply here). Times are milliseconds ago, measured on the reporting node's monotonic
/// clock when it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDetail {
    /// First index in this node's log (the min index; earlier entries are compacted).
    pub first_index: u64,
    /// Highest log index durable on this node's disk.
    pub durable_index: u64,
    /// The preferred leader recorded in the replicated configuration.
    pub preferred_leader: Option<u64>,
    /// Per declared partition, its min and max index (as `MinIndices` / `MaxIndices`).
    pub partitions: Vec<PartitionBounds>,
    /// The filesystem holding the data directory; `None` when it cannot be measured.
    pub disk: Option<DiskUsage>,
    /// On a non-leader: how long ago it last heard from a leader (`None`: never since it
    /// started). Kept while an election runs, so it tells how long the leader has been gone.
    pub leader_last_heard_ms: Option<u64>,
    /// On the leader: every other member's replication, by node id (empty elsewhere).
    pub followers: Vec<FollowerStatus>,
}

/// One partition's index range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionBounds {
    pub partition: u16,
    /// Smallest readable index.
    pub min_index: u64,
    /// Next index to be written.
    pub max_index: u64,
}

/// Space on the filesystem of the data directory (statvfs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// The node's data directory.
    pub path: String,
    pub total_bytes: u64,
    /// Used on the whole filesystem (total less free blocks).
    pub used_bytes: u64,
    /// Available to the node (unprivileged free blocks).
    pub free_bytes: u64,
}

/// A follower's replication as the leader tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerStatus {
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

fn member(m: &Member) -> Value {
    json!({"node_id": m.node_id, "addr": m.addr})
}

fn members(ms: &[Member]) -> Value {
    Value::Array(ms.iter().map(member).collect())
}

fn configuration(c: &ClusterConfiguration) -> Value {
    json!({
        "voters": members(&c.voters),
        "joint": c.joint_old_voters.is_some(),
        "joint_old_voters": c.joint_old_voters.as_deref().map(members),
        "observers": members(&c.observers),
        "leader": c.leader.as_ref().map(member),
    })
}

fn resources(r: &NodeResources) -> Value {
    json!({
        "client_connections": r.client_connections,
        "peer_connections": r.peer_connections,
        "watches": r.watches,
        "watching_connections": r.watching_connections,
        "pending_requests": r.pending_requests,
        "sessions_in_flight": r.sessions_in_flight,
    })
}

fn detail(d: &NodeDetail) -> Value {
    json!({
        "first_index": d.first_index,
        "durable_index": d.durable_index,
        "preferred_leader": d.preferred_leader,
        "partitions": d.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "min_index": p.min_index,
            "max_index": p.max_index,
        })).collect::<Vec<_>>(),
        "disk": d.disk.as_ref().map(|u| json!({
            "path": u.path,
            "total_bytes": u.total_bytes,
            "used_bytes": u.used_bytes,
            "free_bytes": u.free_bytes,
        })),
        "leader_last_heard_ms": d.leader_last_heard_ms,
        "followers": d.followers.iter().map(|f| json!({
            "node_id": f.node_id,
            "next_index": f.next_index,
            "match_index": f.match_index,
            "lag": f.lag,
            "last_heard_ms": f.last_heard_ms,
        })).collect::<Vec<_>>(),
    })
}

/// `status` as one JSON object: every field of [`NodeStatus`] under its own name (the role by
/// its canonical name, `voters` also as a plain id list), `resources` and `detail` `null` from
/// a node too old to report them.
pub fn status_json(s: &NodeStatus) -> Value {
    json!({
        "node_id": s.node_id,
        "role": s.role.name(),
        "term": s.term,
        "leader": s.leader.as_ref().map(member),
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
        "last_index": s.last_index,
        "voters": s.configuration.voters.iter().map(|m| m.node_id).collect::<Vec<_>>(),
        "configuration": configuration(&s.configuration),
        "resources": s.resources.as_ref().map(resources),
        "detail": s.detail.as_deref().map(detail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::protocol::NodeRole;

    fn m(id: u64) -> Member {
        Member {
            node_id: id,
            addr: format!("127.0.0.1:{}", 7000 + id),
        }
    }

    fn status() -> NodeStatus {
        NodeStatus {
            node_id: 1,
            role: NodeRole::Leader,
            term: 3,
            leader: Some(m(1)),
            commit_index: 9,
            applied_index: 8,
            last_index: 10,
            configuration: ClusterConfiguration {
                voters: vec![m(1), m(2), m(4)],
                joint_old_voters: Some(vec![m(1), m(2), m(3)]),
                observers: vec![],
                leader: Some(m(1)),
            },
            resources: None,
            detail: None,
        }
    }

    #[test]
    fn the_json_of_an_old_nodes_status_has_null_resources_and_detail() {
        let v = status_json(&status());
        assert_eq!(v["role"], "LEADER");
        assert_eq!(v["voters"], json!([1, 2, 4]));
        assert_eq!(v["leader"], json!({"node_id": 1, "addr": "127.0.0.1:7001"}));
        assert_eq!(v["configuration"]["joint"], true);
        assert_eq!(v["configuration"]["joint_old_voters"][2]["node_id"], 3);
        assert_eq!(v["configuration"]["observers"], json!([]));
        assert!(v["resources"].is_null() && v["detail"].is_null());
        let mut settled = status();
        settled.configuration.joint_old_voters = None;
        let v = status_json(&settled);
        assert_eq!(v["configuration"]["joint"], false);
        assert!(v["configuration"]["joint_old_voters"].is_null());
    }

    #[test]
    fn the_json_carries_every_detail_field() {
        let mut s = status();
        s.resources = Some(NodeResources {
            client_connections: 4,
            watches: 2,
            ..NodeResources::default()
        });
        s.detail = Some(Box::new(NodeDetail {
            first_index: 1,
            durable_index: 10,
            preferred_leader: Some(2),
            partitions: vec![PartitionBounds {
                partition: 5,
                min_index: 0,
                max_index: 7,
            }],
            disk: Some(DiskUsage {
                path: "/data/1".into(),
                total_bytes: 100,
                used_bytes: 40,
                free_bytes: 55,
            }),
            leader_last_heard_ms: None,
            followers: vec![FollowerStatus {
                node_id: 2,
                next_index: 11,
                match_index: 6,
                lag: 4,
                last_heard_ms: 12,
            }],
        }));
        let v = status_json(&s);
        assert_eq!(v["resources"]["client_connections"], 4);
        assert_eq!(v["resources"]["watches"], 2);
        let d = &v["detail"];
        assert_eq!(
            (d["first_index"].as_u64(), d["durable_index"].as_u64()),
            (Some(1), Some(10))
        );
        assert_eq!(d["preferred_leader"], 2);
        assert_eq!(
            d["partitions"],
            json!([{"partition": 5, "min_index": 0, "max_index": 7}])
        );
        assert_eq!(
            d["disk"],
            json!({"path": "/data/1", "total_bytes": 100, "used_bytes": 40, "free_bytes": 55})
        );
        assert!(d["leader_last_heard_ms"].is_null());
        assert_eq!(
            d["followers"],
            json!([{"node_id": 2, "next_index": 11, "match_index": 6, "lag": 4, "last_heard_ms": 12}])
        );
    }
}
