//! [`Admin`]: cluster administration (the seed's admin API): status and configuration, live
//! membership changes, leader transfer and the preferred leader.
//!
//! Owns: mapping admin replies to return values, and deciding whether a change that failed
//! in transit took effect after all (it asks the configuration). Never does: routing or
//! retries of single requests (the cluster client does).

use std::collections::BTreeSet;
use std::time::Duration;

use super::cluster::Target;
use super::protocol::{
    ClusterConfiguration, MAX_ADMIN_TIMEOUT_MS, Member, NodeStatus, ReplyBody, RequestBody,
    SnapshotInfo,
};
use super::{Client, unexpected};
use crate::api::{Error, ErrorKind};

/// How long a change may take by default (a new member catching up, a transfer).
pub const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Administration of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub(super) client: &'a Client,
    timeout: Duration,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Admin {
            client,
            timeout: DEFAULT_ADMIN_TIMEOUT,
        }
    }

    /// The same admin with another bound on each change (default [`DEFAULT_ADMIN_TIMEOUT`]; at
    /// most 10 minutes — a change with a longer one fails with `InvalidArgument`).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Admin { timeout, ..self }
    }

    fn timeout_ms(&self) -> Result<u64, Error> {
        let ms = self.timeout.as_millis();
        if ms > u128::from(MAX_ADMIN_TIMEOUT_MS) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("timeout_ms {ms} exceeds {MAX_ADMIN_TIMEOUT_MS}"),
            ));
        }
        Ok((ms as u64).max(1))
    }

    /// The seed's `updateVoters`: moves the voters from `old` (refused unless it is exactly the
    /// current voter set and no change is in progress) to `new`. A new member (give its
    /// address; an empty one means "already known") joins as a learner, catches up and is then
    /// promoted through joint consensus. Returns once the final configuration is committed.
    /// Errors: `InvalidArgument` (old voters differ, a change in progress, bad ids or
    /// addresses), `Timeout` (a new member did not catch up in time: the change is cancelled
    /// and the voters stay `old`), `Unavailable` / `NotLeader` (no leader in time).
    pub async fn update_voters(&self, old: &[u64], new: &[Member]) -> Result<(), Error> {
        let body = RequestBody::UpdateVoters {
            old: old.to_vec(),
            new: new.to_vec(),
            timeout_ms: self.timeout_ms()?,
        };
        let want: BTreeSet<u64> = new.iter().map(|m| m.node_id).collect();
        match self
            .client
            .inner
            .call_long(Target::Leader, body, self.timeout)
            .await
        {
            Ok(ReplyBody::Done) => Ok(()),
            Ok(other) => Err(unexpected("UpdateVoters", &other)),
            // A reply lost in transit (a leader change, a timeout): the configuration tells
            // whether the change took effect. (A retry of one that did is answered `Done`.)
            Err(e) if in_transit(&e) => match self.settled_voters().await {
                Some(voters) if voters == want => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Adds `node_id`, reachable at `addr` (`"host:port"`), as a voter: the node must be
    /// running (started with `join = true`); it is added as a learner, caught up, then
    /// promoted. See [`Admin::update_voters`].
    pub async fn add_voter(&self, node_id: u64, addr: &str) -> Result<(), Error> {
        super::check_addr(addr)?;
        let old = self.current_voters().await?;
        let mut new: Vec<Member> = old.iter().map(|&id| member(id, "")).collect();
        if !old.contains(&node_id) {
            new.push(member(node_id, addr));
        }
        self.update_voters(&old, &new).await
    }

    /// Removes voter `node_id` (it may be the leader: leadership moves to a remaining voter).
    /// The removed node stops serving once the configuration without it is committed.
    pub async fn remove_voter(&self, node_id: u64) -> Result<(), Error> {
        let old = self.current_voters().await?;
        let new: Vec<Member> = old
            .iter()
            .filter(|&&id| id != node_id)
            .map(|&id| member(id, ""))
            .collect();
        if new.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("node {node_id} is the only voter: a cluster keeps at least one"),
            ));
        }
        self.update_voters(&old, &new).await
    }

    /// Hands leadership to voter `node_id` (writes wait meanwhile; none is lost) and returns
    /// once it leads. `Timeout` when it did not take over in time.
    pub async fn transfer_leader(&self, node_id: u64) -> Result<(), Error> {
        let body = RequestBody::TransferLeader {
            node_id,
            timeout_ms: self.timeout_ms()?,
        };
        match self
            .client
            .inner
            .call_long(Target::Leader, body, self.timeout)
            .await
        {
            Ok(ReplyBody::Done) => Ok(()),
            Ok(other) => Err(unexpected("TransferLeader", &other)),
            Err(e) if in_transit(&e) => match self.cluster_configuration().await {
                Ok(c) if c.leader.as_ref().map(|l| l.node_id) == Some(node_id) => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Records the preferred leader (a voter) in the replicated configuration, or clears it
    /// (`None`). Whenever the preferred voter is alive and caught up, leadership moves to it —
    /// also after it restarts.
    pub async fn set_preferred_leader(&self, node_id: Option<u64>) -> Result<(), Error> {
        match self
            .client
            .inner
            .call(Target::Leader, RequestBody::SetPreferredLeader { node_id })
            .await?
        {
            ReplyBody::Done => Ok(()),
            other => Err(unexpected("SetPreferredLeader", &other)),
        }
    }

    /// Makes every node snapshot at one log index (a log entry, the seed's CREATE_SNAPSHOT);
    /// returns that index once a majority of the voters have saved it (the others save theirs
    /// as they apply the entry), so [`Admin::recover_snapshot`] can use it at once.
    pub async fn take_snapshot(&self) -> Result<u64, Error> {
        self.timeout_ms()?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let index = match self
            .client
            .inner
            .call_long(Target::Leader, RequestBody::TakeSnapshot, self.timeout)
            .await?
        {
            ReplyBody::Index(Some(i)) => i,
            other => return Err(unexpected("TakeSnapshot", &other)),
        };
        loop {
            let (holding, voters) = self.holding(index).await?;
            if holding.len() * 2 > voters.len() {
                return Ok(index);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "snapshot {index} was saved by voters {holding:?} only within {:?}",
                        self.timeout
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Which voters retain snapshot `index`, and all the voters.
    async fn holding(&self, index: u64) -> Result<(Vec<u64>, BTreeSet<u64>), Error> {
        let c = self.cluster_configuration().await?;
        let voters: BTreeSet<u64> = c.voters.iter().map(|m| m.node_id).collect();
        let holding = self
            .snapshots()
            .await?
            .iter()
            .filter(|n| {
                voters.contains(&n.node.node_id) && n.snapshots.iter().any(|s| s.index == index)
            })
            .map(|n| n.node.node_id)
            .collect();
        Ok((holding, voters))
    }

    /// The snapshots the node at `node` (`"host:port"`) retains, oldest first.
    pub async fn node_snapshots(&self, node: &str) -> Result<Vec<SnapshotInfo>, Error> {
        super::check_addr(node)?;
        match self
            .client
            .inner
            .call(Target::Node(node.to_string()), RequestBody::ListSnapshots)
            .await?
        {
            ReplyBody::Snapshots(s) => Ok(s),
            other => Err(unexpected("ListSnapshots", &other)),
        }
    }

    /// The snapshots of every member (voters and learners) of the configuration; a node that
    /// cannot be asked is listed with its error.
    pub async fn snapshots(&self) -> Result<Vec<NodeSnapshots>, Error> {
        let c = self.cluster_configuration().await?;
        let mut members: Vec<Member> = c.voters;
        members.extend(c.joint_old_voters.unwrap_or_default());
        members.extend(c.observers);
        members.sort_by_key(|m| m.node_id);
        members.dedup_by_key(|m| m.node_id);
        let mut out = Vec::with_capacity(members.len());
        for node in members {
            let r = self.node_snapshots(&node.addr).await;
            let (snapshots, error) = match r {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            out.push(NodeSnapshots {
                node,
                snapshots,
                error,
            });
        }
        Ok(out)
    }

    /// The seed's `recoverSnapshot`: rolls the cluster's state back to the snapshot at `index`
    /// through a log entry, so every node does the same at the same point. Refused
    /// (`InvalidArgument`) unless a majority of the voters retain that snapshot (a node without
    /// it stops at the entry). The KV returns to the snapshot's keys and values (watchers see
    /// each difference); journal entries stay (the journal is the log), and so do the write
    /// sessions (a retried write never applies twice).
    pub async fn recover_snapshot(&self, index: u64) -> Result<(), Error> {
        let c = self.cluster_configuration().await?;
        if c.joint_old_voters.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a membership change is in progress; recover once it is done",
            ));
        }
        let (holding, voters) = self.holding(index).await?;
        if holding.len() * 2 <= voters.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "snapshot {index} is retained by voters {holding:?} only, not by a majority \
                     of {voters:?}"
                ),
            ));
        }
        match self
            .client
            .inner
            .call(Target::Leader, RequestBody::RecoverSnapshot { index })
            .await?
        {
            ReplyBody::Done => Ok(()),
            other => Err(unexpected("RecoverSnapshot", &other)),
        }
    }

    pub(super) async fn current_voters(&self) -> Result<Vec<u64>, Error> {
        let c = self.cluster_configuration().await?;
        if c.joint_old_voters.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a membership change is already in progress",
            ));
        }
        Ok(c.voters.iter().map(|m| m.node_id).collect())
    }

    async fn settled_voters(&self) -> Option<BTreeSet<u64>> {
        let c = self.cluster_configuration().await.ok()?;
        c.joint_old_voters
            .is_none()
            .then(|| c.voters.iter().map(|m| m.node_id).collect())
    }

    /// The status of the node at `node` (`"host:port"`; it need not be in the client's list),
    /// with [`NodeStatus::resources`] from nodes of protocol ≥ 1.2 and [`NodeStatus::detail`]
    /// (the monitoring detail) from nodes of protocol ≥ 1.4.
    pub async fn status(&self, node: &str) -> Result<NodeStatus, Error> {
        super::check_addr(node)?;
        // Sent as `StatusWithResources` or plain `Status` to an older node (see
        // `Cluster::attempt`).
        match self
            .client
            .inner
            .call(Target::Node(node.to_string()), RequestBody::StatusDetail)
            .await?
        {
            ReplyBody::StatusDetail {
                mut status,
                resources,
                detail,
            } => {
                status.resources = Some(resources);
                status.detail = Some(detail);
                Ok(*status)
            }
            ReplyBody::StatusWithResources {
                mut status,
                resources,
            } => {
                status.resources = Some(resources);
                Ok(*status)
            }
            ReplyBody::Status(status) => Ok(status),
            other => Err(unexpected("Status", &other)),
        }
    }

    /// Voters, observers and leader, as the leader knows them.
    pub async fn cluster_configuration(&self) -> Result<ClusterConfiguration, Error> {
        match self
            .client
            .inner
            .call(Target::Leader, RequestBody::ClusterConfiguration)
            .await?
        {
            ReplyBody::Configuration(c) => Ok(c),
            other => Err(unexpected("ClusterConfiguration", &other)),
        }
    }
}

/// Whether `e` may hide a change that took effect (its reply was lost on the way).
fn in_transit(e: &Error) -> bool {
    matches!(
        e.kind,
        ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::NotLeader
    )
}

fn member(node_id: u64, addr: &str) -> Member {
    Member {
        node_id,
        addr: addr.to_string(),
    }
}

/// One node's retained snapshots, from [`Admin::snapshots`].
#[derive(Debug, Clone)]
pub struct NodeSnapshots {
    pub node: Member,
    /// Oldest first; empty when the node could not be asked.
    pub snapshots: Vec<SnapshotInfo>,
    pub error: Option<Error>,
}
