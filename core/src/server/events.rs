//! Cluster events as this node sees them (leader, voters, its role, journal bounds, and — for
//! subscriptions that ask — where each user state machine last changed): the
//! state they are derived from, the difference between two states as events, and the client
//! subscriptions they are pushed to.
//!
//! Owns: [`EventState`] and [`diff`] (shared with the embedded [`Server::events`] stream), the
//! subscriptions by connection with their bound, and releasing them with their connection.
//! Never does: decide when the state changed — the driver hands it the state after each pass.
//!
//! [`Server::events`]: crate::server::Server::events

use std::collections::{BTreeMap, HashMap};

use super::PeerWire;
use crate::api::{Error, ErrorKind};
use crate::client::protocol::{
    ClusterConfiguration, ClusterEvent, EventOptions, Member, NodeRole, ServerMessage, Wire,
};
use crate::net::{ConnHandle, ConnId};

/// Most event subscriptions one client connection may hold.
pub(crate) const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 64;

type Conn = ConnHandle<PeerWire>;

/// What events are derived from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventState {
    pub node_id: u64,
    pub leader: Option<Member>,
    pub term: u64,
    pub configuration: ClusterConfiguration,
    pub role: Option<NodeRole>,
    /// `(min, max)` per partition, as `MinIndices` / `MaxIndices` report them.
    pub journal: BTreeMap<u16, (u64, u64)>,
    /// Per user state machine, the index its state last changed at.
    pub machines: BTreeMap<String, u64>,
}

/// The events that lead from `old` to `new` (`None`: from nothing, i.e. the whole state);
/// `StateChanged` ones only when `options` ask for them.
pub fn diff(
    old: Option<&EventState>,
    new: &EventState,
    options: EventOptions,
) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let leader_id = |s: &EventState| s.leader.as_ref().map(|m| m.node_id);
    if old.is_none_or(|o| (leader_id(o), o.term) != (leader_id(new), new.term)) {
        out.push(ClusterEvent::LeaderChanged {
            leader: new.leader.clone(),
            term: new.term,
        });
    }
    let without_leader = |c: &ClusterConfiguration| ClusterConfiguration {
        leader: None,
        ..c.clone()
    };
    let configuration = without_leader(&new.configuration);
    if old.is_none_or(|o| without_leader(&o.configuration) != configuration) {
        out.push(ClusterEvent::VotersChanged { configuration });
    }
    if let Some(role) = new.role
        && old.is_none_or(|o| o.role != new.role)
    {
        out.push(ClusterEvent::RoleChanged {
            node_id: new.node_id,
            role,
        });
    }
    for (&partition, &(min_index, max_index)) in &new.journal {
        if old.is_none_or(|o| o.journal.get(&partition) != Some(&(min_index, max_index))) {
            out.push(ClusterEvent::JournalChanged {
                partition,
                min_index,
                max_index,
            });
        }
    }
    if options.state_machines {
        for (machine, &applied_index) in &new.machines {
            if old.is_none_or(|o| o.machines.get(machine) != Some(&applied_index)) {
                out.push(ClusterEvent::StateChanged {
                    machine: machine.clone(),
                    applied_index,
                });
            }
        }
    }
    out
}

struct ConnSubs {
    conn: Conn,
    /// Each subscription's options.
    ids: BTreeMap<u64, EventOptions>,
}

/// Every event subscription of this node, and the state last pushed to them.
#[derive(Default)]
pub(crate) struct EventRegistry {
    conns: HashMap<ConnId, ConnSubs>,
    count: usize,
    last: Option<EventState>,
}

impl EventRegistry {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Opens subscription `sub_id` of `conn` and pushes it `state` as its first events.
    pub fn subscribe(
        &mut self,
        conn: Conn,
        sub_id: u64,
        options: EventOptions,
        state: &EventState,
    ) -> Result<(), Error> {
        if conn.is_closed() {
            return Err(Error::new(ErrorKind::Closed, "the connection ended"));
        }
        let entry = self.conns.entry(conn.id()).or_insert_with(|| ConnSubs {
            conn: conn.clone(),
            ids: BTreeMap::new(),
        });
        if !entry.ids.contains_key(&sub_id) && entry.ids.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "this connection already holds {MAX_SUBSCRIPTIONS_PER_CONNECTION} event \
                     subscriptions, the most one connection may open"
                ),
            ));
        }
        if entry.ids.insert(sub_id, options).is_none() {
            self.count += 1;
        }
        let events = diff(None, state, options);
        if conn.send(&push(sub_id, events)).is_err() {
            self.remove(conn.id(), sub_id);
        }
        Ok(())
    }

    /// Ends subscription `sub_id` of `conn`; whether it was open.
    pub fn remove(&mut self, conn: ConnId, sub_id: u64) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let removed = c.ids.remove(&sub_id).is_some();
        if removed {
            self.count -= 1;
        }
        if c.ids.is_empty() {
            self.conns.remove(&conn);
        }
        removed
    }

    pub fn connection_closed(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.count -= c.ids.len();
        }
    }

    /// Pushes what changed since the last call to every subscription; a subscription whose
    /// push cannot be queued is dropped (its client resubscribes and gets the whole state).
    pub fn publish(&mut self, state: EventState) {
        let with = EventOptions {
            state_machines: true,
        };
        let all = diff(self.last.as_ref(), &state, with);
        self.last = Some(state);
        if all.is_empty() {
            return;
        }
        let cluster_only: Vec<ClusterEvent> = all
            .iter()
            .filter(|e| !matches!(e, ClusterEvent::StateChanged { .. }))
            .cloned()
            .collect();
        let mut failed = Vec::new();
        for (&id, c) in &self.conns {
            for (&sub_id, options) in &c.ids {
                let events = if options.state_machines {
                    &all
                } else {
                    &cluster_only
                };
                if events.is_empty() {
                    continue;
                }
                if c.conn.is_closed() || c.conn.send(&push(sub_id, events.clone())).is_err() {
                    failed.push((id, sub_id));
                }
            }
        }
        for (id, sub_id) in failed {
            self.remove(id, sub_id);
        }
    }

    /// Ends every subscription with `error` (shutdown).
    pub fn end_all(&mut self, error: impl Fn() -> Error) {
        for (_, c) in std::mem::take(&mut self.conns) {
            for watch_id in c.ids.into_keys() {
                let _ = c.conn.send(&Wire::Server(ServerMessage::WatchEnded {
                    watch_id,
                    error: error(),
                }));
            }
        }
        self.count = 0;
    }
}

/// The embedded server's event stream ([`Server::events`]): differences of the state the
/// driver publishes, starting from the whole current state. It never falls behind: a slow
/// reader skips intermediate states and gets the difference to the latest.
///
/// [`Server::events`]: crate::server::Server::events
pub struct LocalEvents {
    rx: tokio::sync::watch::Receiver<EventState>,
    options: EventOptions,
    last: Option<EventState>,
    buffered: std::collections::VecDeque<ClusterEvent>,
}

impl LocalEvents {
    pub(crate) fn new(rx: tokio::sync::watch::Receiver<EventState>, options: EventOptions) -> Self {
        LocalEvents {
            rx,
            options,
            last: None,
            buffered: Default::default(),
        }
    }

    /// The next event; `None` once the server has stopped.
    pub async fn next(&mut self) -> Option<ClusterEvent> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                return Some(e);
            }
            if self.last.is_some() {
                self.rx.changed().await.ok()?;
            } else {
                // The first state the driver publishes (it does once someone listens).
                self.rx.wait_for(|s| s.node_id != 0).await.ok()?;
            }
            let state = self.rx.borrow_and_update().clone();
            self.buffered
                .extend(diff(self.last.as_ref(), &state, self.options));
            self.last = Some(state);
        }
    }
}

fn push(sub_id: u64, events: Vec<ClusterEvent>) -> Wire<crate::raft::Message> {
    Wire::Server(ServerMessage::ClusterEvents { sub_id, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64) -> Member {
        Member {
            node_id: id,
            addr: format!("127.0.0.1:{id}"),
        }
    }

    fn state() -> EventState {
        EventState {
            node_id: 2,
            leader: Some(member(1)),
            term: 3,
            configuration: ClusterConfiguration {
                voters: vec![member(1), member(2)],
                leader: Some(member(1)),
                ..ClusterConfiguration::default()
            },
            role: Some(NodeRole::Follower),
            journal: [(0, (0, 5)), (1, (0, 0))].into(),
            machines: [("bank".to_string(), 4)].into(),
        }
    }

    #[test]
    fn the_whole_state_is_one_event_of_each_kind_and_partition() {
        let events = diff(None, &state(), EventOptions::default());
        assert_eq!(events.len(), 5, "{events:?}");
        assert!(matches!(
            &events[1],
            ClusterEvent::VotersChanged { configuration } if configuration.leader.is_none()
        ));
    }

    #[test]
    fn only_what_changed_is_reported() {
        let old = state();
        assert!(diff(Some(&old), &old, EventOptions::default()).is_empty());
        let mut new = old.clone();
        new.journal.insert(0, (0, 6));
        new.term = 4;
        new.leader = None;
        new.configuration.leader = None;
        assert_eq!(
            diff(Some(&old), &new, EventOptions::default()),
            vec![
                ClusterEvent::LeaderChanged {
                    leader: None,
                    term: 4
                },
                ClusterEvent::JournalChanged {
                    partition: 0,
                    min_index: 0,
                    max_index: 6
                },
            ],
            "a leader change alone is not a voters change"
        );
        let mut new = old.clone();
        new.role = Some(NodeRole::Leader);
        new.configuration.voters.push(member(3));
        assert_eq!(diff(Some(&old), &new, EventOptions::default()).len(), 2);
    }

    #[test]
    fn state_machine_changes_are_reported_only_when_asked_for() {
        let with = EventOptions {
            state_machines: true,
        };
        let whole = diff(None, &state(), with);
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert_eq!(
            whole[5],
            ClusterEvent::StateChanged {
                machine: "bank".into(),
                applied_index: 4
            }
        );
        let old = state();
        let mut new = old.clone();
        new.machines.insert("bank".into(), 9);
        assert!(diff(Some(&old), &new, EventOptions::default()).is_empty());
        assert_eq!(
            diff(Some(&old), &new, with),
            vec![ClusterEvent::StateChanged {
                machine: "bank".into(),
                applied_index: 9
            }]
        );
    }
}
