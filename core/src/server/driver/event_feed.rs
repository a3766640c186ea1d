//! The node's events: its current [`EventState`] (built after each pass when anyone listens),
//! pushed as differences to client subscriptions and published to the embedded
//! [`Server::events`](crate::server::Server::events) streams.

use super::{Conn, Driver, reply};
use crate::client::protocol::{EventOptions, ReplyBody};
use crate::server::events::EventState;
use crate::server::read::journal_bounds;

impl Driver {
    fn event_state(&mut self) -> EventState {
        let applied = self.applied();
        if self.journal_bounds.0 != applied || self.journal_bounds.1.is_empty() {
            let m = self.lock();
            let bounds = journal_bounds(&m);
            let changes = m.user.changed().clone();
            drop(m);
            self.journal_bounds = (applied, bounds);
            self.machine_changes = changes;
        }
        let status = self.node_status();
        EventState {
            node_id: self.cfg.node_id,
            leader: status.leader,
            term: status.term,
            configuration: status.configuration,
            role: Some(status.role),
            journal: self.journal_bounds.1.clone(),
            machines: self.machine_changes.clone(),
        }
    }

    pub(super) fn subscribe_events(
        &mut self,
        conn: Conn,
        req: u64,
        sub_id: u64,
        options: EventOptions,
    ) {
        let state = self.event_state();
        let applied = self.applied();
        // The reply goes first: a subscription's pushes follow it.
        reply(&conn, req, Ok(ReplyBody::Done), applied);
        if let Err(e) = self.events.subscribe(conn.clone(), sub_id, options, &state) {
            let _ = conn.send(&crate::client::protocol::Wire::Server(
                crate::client::protocol::ServerMessage::WatchEnded {
                    watch_id: sub_id,
                    error: e,
                },
            ));
        }
    }

    /// After each pass: the state, when a subscriber or an embedded stream listens.
    pub(super) fn publish_events(&mut self) {
        if self.events.is_empty() && self.event_tx.receiver_count() == 0 {
            return;
        }
        let state = self.event_state();
        self.event_tx.send_if_modified(|old| {
            if *old != state {
                *old = state.clone();
                true
            } else {
                false
            }
        });
        self.events.publish(state);
    }
}
