//! [`Admin`]: cluster administration (the seed's admin API, read side for now).
//!
//! Owns: mapping admin replies to return values. Never does: routing or retries.

use super::cluster::Target;
use super::protocol::{ClusterConfiguration, NodeStatus, ReplyBody, RequestBody};
use super::{Client, unexpected};
use crate::api::Error;

/// Administration of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    client: &'a Client,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Admin { client }
    }

    /// The status of the node at `node` (`"host:port"`; it need not be in the client's list),
    /// with [`NodeStatus::resources`] from nodes of protocol ≥ 1.2.
    pub async fn status(&self, node: &str) -> Result<NodeStatus, Error> {
        super::check_addr(node)?;
        // Sent as plain `Status` to an older node (see `Cluster::attempt`).
        match self
            .client
            .inner
            .call(
                Target::Node(node.to_string()),
                RequestBody::StatusWithResources,
            )
            .await?
        {
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
