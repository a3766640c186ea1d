//! [`ClusterMeta`]: what the cluster replicates about itself beside the raft configuration —
//! each member's address (so a node added at run time can be reached by every other, and a
//! restarted node finds members its configuration file never named) and the preferred leader.
//!
//! Owns: the rules of a [`MetaCommand`] (ids non-zero, at most [`MAX_MEMBERS`] addresses).
//! Never does: connect anywhere, or decide membership — the raft configuration does that; an
//! address for a node that is not a member is a harmless spare.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::StateError;

/// Most members the address book holds.
pub const MAX_MEMBERS: usize = 1024;

/// The replicated cluster metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// Address (peers and clients share it) of each node, by node id.
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// The voter leadership moves to whenever it is alive and caught up.
    pub preferred_leader: Option<u64>,
    /// Registered observers (read replicas that pull from parents) and their addresses. Kept
    /// apart from `addrs`: voters never treat an observer as a peer. Carried in the snapshot as
    /// a field of its own (`apply::SnapshotData::observers`), so older snapshots still decode.
    #[serde(skip)]
    pub observers: BTreeMap<u64, SocketAddr>,
}

/// A change of [`ClusterMeta`], applied through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Sets (or replaces) the address of each node given.
    SetAddresses(BTreeMap<u64, SocketAddr>),
    SetPreferredLeader(Option<u64>),
    /// Records `node` as an observer at the address (`None`: no longer an observer).
    SetObserver {
        node: u64,
        addr: Option<SocketAddr>,
    },
}

impl ClusterMeta {
    /// Applies `cmd`; a refused command changes nothing (deterministically, on every replica).
    pub fn apply(&mut self, cmd: &MetaCommand) -> Result<(), StateError> {
        match cmd {
            MetaCommand::SetAddresses(addrs) => {
                if addrs.contains_key(&0) {
                    return Err(StateError::InvalidArgument(
                        "node id 0 is not allowed".into(),
                    ));
                }
                let after = self
                    .addrs
                    .keys()
                    .chain(addrs.keys())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                if after > MAX_MEMBERS {
                    return Err(StateError::InvalidArgument(format!(
                        "the address book would hold {after} nodes, more than {MAX_MEMBERS}"
                    )));
                }
                self.addrs.extend(addrs.iter().map(|(k, v)| (*k, *v)));
            }
            MetaCommand::SetPreferredLeader(p) => {
                if *p == Some(0) {
                    return Err(StateError::InvalidArgument(
                        "node id 0 is not allowed".into(),
                    ));
                }
                self.preferred_leader = *p;
            }
            MetaCommand::SetObserver { node, addr } => {
                if *node == 0 {
                    return Err(StateError::InvalidArgument(
                        "node id 0 is not allowed".into(),
                    ));
                }
                match addr {
                    Some(a) => {
                        if !self.observers.contains_key(node) && self.observers.len() >= MAX_MEMBERS
                        {
                            return Err(StateError::InvalidArgument(format!(
                                "the cluster already has {MAX_MEMBERS} observers"
                            )));
                        }
                        self.observers.insert(*node, *a);
                    }
                    None => {
                        self.observers.remove(node);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn addresses_are_set_and_replaced_and_the_preferred_leader_cleared() {
        let mut m = ClusterMeta::default();
        m.apply(&MetaCommand::SetAddresses(
            [(1, addr(1)), (2, addr(2))].into(),
        ))
        .unwrap();
        m.apply(&MetaCommand::SetAddresses([(2, addr(22))].into()))
            .unwrap();
        assert_eq!(m.addrs, [(1, addr(1)), (2, addr(22))].into());
        m.apply(&MetaCommand::SetPreferredLeader(Some(2))).unwrap();
        assert_eq!(m.preferred_leader, Some(2));
        m.apply(&MetaCommand::SetPreferredLeader(None)).unwrap();
        assert_eq!(m.preferred_leader, None);
    }

    #[test]
    fn refused_commands_change_nothing() {
        let mut m = ClusterMeta::default();
        m.apply(&MetaCommand::SetAddresses([(1, addr(1))].into()))
            .unwrap();
        let before = m.clone();
        let zero = MetaCommand::SetAddresses([(0, addr(9)), (3, addr(3))].into());
        assert!(m.apply(&zero).is_err());
        assert!(m.apply(&MetaCommand::SetPreferredLeader(Some(0))).is_err());
        let many = (2..=MAX_MEMBERS as u64 + 1).map(|i| (i, addr(7))).collect();
        let e = m.apply(&MetaCommand::SetAddresses(many)).unwrap_err();
        assert!(e.to_string().contains("more than 1024"), "{e}");
        assert_eq!(m, before);
    }
}
