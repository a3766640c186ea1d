//! Roles: the seed's `convertRoll` — a voter becomes an observer (a read replica that pulls
//! from parents) or an observer becomes a voter — and the observer registry it rests on.
//!
//! A conversion is two steps the leader orders in its log: to OBSERVER, the node is registered
//! as an observer, then removed from the voters (it sees itself registered when the removal
//! commits and goes on pulling instead of stopping); to VOTER, the node is added as a voter
//! (it joins as a learner the leader pushes to, catches up and is promoted), then its
//! registration is dropped. Each step is judged by the configuration when its reply is lost.

use super::admin::Admin;
use super::cluster::Target;
use super::protocol::{Member, ReplyBody, RequestBody};
use super::unexpected;
use crate::api::{Error, ErrorKind};

/// What [`Admin::convert_role`] makes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberRole {
    Voter,
    Observer,
}

impl MemberRole {
    /// `"VOTER"` / `"OBSERVER"`, the seed's names (any case is accepted back).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "VOTER",
            MemberRole::Observer => "OBSERVER",
        }
    }
}

impl std::str::FromStr for MemberRole {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_uppercase().as_str() {
            "VOTER" => Ok(MemberRole::Voter),
            "OBSERVER" => Ok(MemberRole::Observer),
            _ => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("role {s:?}: expected VOTER or OBSERVER"),
            )),
        }
    }
}

impl Admin<'_> {
    /// Records `node_id` as an observer reachable at `addr` (`None`: drops the record). An
    /// observer does this itself when it starts; [`Admin::convert_role`] uses it.
    pub async fn register_observer(&self, node_id: u64, addr: Option<&str>) -> Result<(), Error> {
        if let Some(a) = addr {
            super::check_addr(a)?;
        }
        let body = RequestBody::RegisterObserver {
            node_id,
            addr: addr.map(str::to_string),
        };
        match self.client.inner.call(Target::Leader, body).await? {
            ReplyBody::Done => Ok(()),
            other => Err(unexpected("RegisterObserver", &other)),
        }
    }

    /// Converts `node_id` to `role` (the seed's `convertRoll`) and returns once the final
    /// configuration is committed. To `Observer`: the node must be a voter and not the last one;
    /// it keeps its data and goes on as an observer pulling from its configured parents (or the
    /// voters). To `Voter`: the node must be a registered observer; it is caught up by the
    /// leader and promoted. Converting a node to the role it has is `Ok`. Errors as
    /// [`Admin::update_voters`].
    pub async fn convert_role(&self, node_id: u64, role: MemberRole) -> Result<(), Error> {
        let config = self.cluster_configuration().await?;
        let voter = config.voters.iter().find(|m| m.node_id == node_id);
        let observer = config.observers.iter().find(|m| m.node_id == node_id);
        match role {
            MemberRole::Observer => {
                let Some(v) = voter else {
                    return match observer {
                        Some(_) => Ok(()),
                        None => Err(not_found(node_id)),
                    };
                };
                self.register_observer(node_id, Some(&v.addr)).await?;
                self.remove_voter(node_id).await
            }
            MemberRole::Voter => {
                if voter.is_some() {
                    // Promoted earlier; a registration left by an interrupted conversion goes.
                    if observer.is_some() {
                        self.register_observer(node_id, None).await?;
                    }
                    return Ok(());
                }
                let Some(o) = observer.cloned() else {
                    return Err(not_found(node_id));
                };
                let old = self.current_voters().await?;
                let mut new: Vec<Member> = old
                    .iter()
                    .map(|&id| Member {
                        node_id: id,
                        addr: String::new(),
                    })
                    .collect();
                new.push(o);
                self.update_voters(&old, &new).await?;
                self.register_observer(node_id, None).await
            }
        }
    }
}

fn not_found(node_id: u64) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("node {node_id} is neither a voter nor a registered observer"),
    )
}
