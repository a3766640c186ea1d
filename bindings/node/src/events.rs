//! `ClusterEvents`: the cluster events of a client (`journalkeeper::client::EventStream`) or
//! of an embedded server (`journalkeeper::server::events::LocalEvents`) delivered to a JS
//! callback through a weak (unref'd) thread-safe function, so a subscription never keeps the
//! process alive; and `ClusterEvent`, the events as `{ kind: 'leaderChanged', … }` objects.
//!
//! A task on the runtime owns the stream; `close()` (or the source ending: the client closed,
//! the server stopped) ends it, which unsubscribes on the server and releases the callback.

// `ClusterEvent`'s variant names are the JS `kind`s (and the core's names); the lint cannot be
// allowed on the enum itself, which napi's macro re-emits.
#![allow(clippy::enum_variant_names)]

use journalkeeper::api::{self, ErrorKind};
use journalkeeper::client::{ClusterEvent as CoreEvent, EventOptions as CoreOptions, EventStream};
use journalkeeper::server::events::LocalEvents;
use napi::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::oneshot;

use crate::client::{ClusterConfiguration, Member, configuration, member};
use crate::to_number;
use crate::watch::Code;

/// One cluster event; `kind` tells which. A stream starts with the node's whole current state
/// (one event of each kind, one `journalChanged` per partition), then reports each change;
/// after a reconnect it repeats the latest state (treat events as state, not as deltas).
#[napi(
    discriminant = "kind",
    discriminant_case = "camelCase",
    object_from_js = false
)]
pub enum ClusterEvent {
    /// A leader was elected in `term` (or lost: `leader` absent).
    LeaderChanged { leader: Option<Member>, term: f64 },
    /// The configuration changed (voters, a joint change, learners). Its `leader` is always
    /// absent: `leaderChanged` reports the leader.
    VotersChanged { configuration: ClusterConfiguration },
    /// The reporting node's own role changed (`vocabulary().roles`).
    RoleChanged { node_id: f64, role: String },
    /// A journal partition's readable range changed: `minIndex` is the smallest readable
    /// index, `maxIndex` the next to be written.
    JournalChanged {
        partition: u32,
        min_index: f64,
        max_index: f64,
    },
    /// The user state machine `machine` changed on the reporting node: `appliedIndex` is the
    /// log index of the last entry that ran its commands (or replaced its state from a
    /// snapshot). Coalesced: the latest index, not every one. Only with
    /// `{ stateMachines: true }`.
    StateChanged { machine: String, applied_index: f64 },
}

/// What an event subscription includes beyond the cluster's state.
#[napi(object)]
#[derive(Default)]
pub struct EventOptions {
    /// Also `stateChanged` events for each user state machine (default false; needs nodes of
    /// protocol 1.8).
    pub state_machines: Option<bool>,
}

/// The core's options from the optional JS `options` argument.
pub(crate) fn event_options(options: Unknown) -> Result<CoreOptions, api::Error> {
    let o = crate::args::options::<EventOptions>("options", options)?.unwrap_or_default();
    Ok(CoreOptions {
        state_machines: o.state_machines.unwrap_or(false),
    })
}

fn event(e: CoreEvent) -> Result<ClusterEvent, api::Error> {
    Ok(match e {
        CoreEvent::LeaderChanged { leader, term } => ClusterEvent::LeaderChanged {
            leader: leader.map(member).transpose()?,
            term: to_number("term", term)?,
        },
        CoreEvent::VotersChanged { configuration: c } => ClusterEvent::VotersChanged {
            configuration: configuration(c)?,
        },
        CoreEvent::RoleChanged { node_id, role } => ClusterEvent::RoleChanged {
            node_id: to_number("nodeId", node_id)?,
            role: role.name().to_string(),
        },
        CoreEvent::JournalChanged {
            partition,
            min_index,
            max_index,
        } => ClusterEvent::JournalChanged {
            partition: partition.into(),
            min_index: to_number("minIndex", min_index)?,
            max_index: to_number("maxIndex", max_index)?,
        },
        CoreEvent::StateChanged {
            machine,
            applied_index,
        } => ClusterEvent::StateChanged {
            machine,
            applied_index: to_number("appliedIndex", applied_index)?,
        },
    })
}

/// The JS callback of an event subscription: `(err, event)`, weak.
pub type EventsCallback = ThreadsafeFunction<ClusterEvent, (), ClusterEvent, Code, true, true>;

/// Where the events come from.
pub(crate) enum Source {
    Client(EventStream),
    Server { node_id: u64, events: LocalEvents },
}

impl Source {
    /// The next event; `Closed` once the source ended.
    async fn next(&mut self) -> Result<CoreEvent, api::Error> {
        match self {
            Source::Client(s) => s.next().await,
            Source::Server { node_id, events } => events.next().await.ok_or_else(|| {
                api::Error::new(ErrorKind::Closed, format!("server {node_id} stopped"))
            }),
        }
    }
}

/// A running event subscription (`client.events(callback)`, `server.events(callback)`).
/// `close()` stops it: no event received after it is delivered (events already queued to the
/// JS thread may still be).
#[napi]
pub struct ClusterEvents {
    stop: Option<oneshot::Sender<()>>,
}

impl ClusterEvents {
    /// Runs `source` on the runtime, calling `callback` for each event. Errors are passed to
    /// it too; after any but `TIMEOUT` / `UNAVAILABLE` (the stream retries those) the
    /// subscription has ended — `CLOSED` when its client closed or its server stopped.
    pub(crate) fn spawn(mut source: Source, callback: EventsCallback) -> ClusterEvents {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = async move {
            // A dropped (garbage-collected) handle does not stop it; only close() does.
            let mut handle_alive = true;
            loop {
                tokio::select! {
                    r = &mut stopped, if handle_alive => match r {
                        Ok(()) => return,
                        Err(_) => handle_alive = false,
                    },
                    r = source.next() => {
                        let (r, ended) = match r.and_then(event) {
                            Ok(e) => (Ok(e), false),
                            Err(e) => {
                                let retried =
                                    matches!(e.kind, ErrorKind::Timeout | ErrorKind::Unavailable);
                                let err = napi::Error::new(Code::from(e.kind), e.message);
                                (Err(err), !retried)
                            }
                        };
                        callback.call(r, ThreadsafeFunctionCallMode::NonBlocking);
                        if ended {
                            return;
                        }
                    }
                }
            }
        };
        napi::bindgen_prelude::spawn(task);
        ClusterEvents { stop: Some(stop) }
    }
}

#[napi]
impl ClusterEvents {
    /// Stops the subscription (unsubscribes on the server, releases the callback). Idempotent.
    #[napi]
    pub fn close(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
