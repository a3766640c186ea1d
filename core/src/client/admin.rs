//! [`Admin`]: cluster administration (the seed's admin API): status and configuration, live
//! membership changes, leader transfer and the preferred leader.
//!
//! Owns: mapping admin replies to return values, and deciding whether a change that failed
//! in transit took effect after all (it asks the configuration). Never does: routing or
//! retries of single requests (the cluster client does).

use std::collections::BTreeSet;
use std::time::Duration;

use super::cluster::Target;
use super::protocol::{ClusterConfiguration, Member, NodeStatus, ReplyBody, RequestBody};
use super::{Client, unexpected};
use crate::api::{Error, ErrorKind};

/// How long a change may take by default (a new member catching up, a transfer).
pub const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Administration of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    client: &'a Client,
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
    /// most 10 minutes).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Admin { timeout, ..self }
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis().clamp(1, u128::from(u64::MAX)) as u64
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
            timeout_ms: self.timeout_ms(),
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
            // A reply lost with a leader change, or a retry refused because the first attempt
            // already took effect: the configuration tells.
            Err(e) if e.kind != ErrorKind::WrongCluster => match self.settled_voters().await {
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
            timeout_ms: self.timeout_ms(),
        };
        match self
            .client
            .inner
            .call_long(Target::Leader, body, self.timeout)
            .await
        {
            Ok(ReplyBody::Done) => Ok(()),
            Ok(other) => Err(unexpected("TransferLeader", &other)),
            Err(e) if e.kind != ErrorKind::WrongCluster => {
                match self.cluster_configuration().await {
                    Ok(c) if c.leader.as_ref().map(|l| l.node_id) == Some(node_id) => Ok(()),
                    _ => Err(e),
                }
            }
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

    async fn current_voters(&self) -> Result<Vec<u64>, Error> {
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

fn member(node_id: u64, addr: &str) -> Member {
    Member {
        node_id,
        addr: addr.to_string(),
    }
}
