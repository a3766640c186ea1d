//! Cluster events with a callback: `jk_client_events` (as the node a client is subscribed to
//! sees them, across reconnects) and `jk_server_events` (an embedded node's own view) start a
//! subscription whose callback runs on its own library thread (`subscription`);
//! `jk_events_close` stops it. Each event is a `jk_cluster_event` built for the call only, with
//! the configuration and member structs of `admin`.

use std::ffi::{CString, c_char, c_void};

use journalkeeper::client::{ClusterEvent, EventOptions, EventStream};
use journalkeeper::server::events::LocalEvents;

use crate::admin::{ConfigStorage, jk_cluster_configuration, jk_member, member};
use crate::args::out_arg;
use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_status};
use crate::names::jk_role;
use crate::runtime::block_on;
use crate::server::{jk_server, with_server};
use crate::subscription::{Callback, Source, Subscription};

/// A running event subscription. Opaque. Made by `jk_client_events` / `jk_server_events`,
/// released by `jk_events_close`.
pub struct jk_events {
    _private: [u8; 0],
}

impl Castable for jk_events {
    type Ownership = OwnershipBox;
    type RustType = Subscription;
}

/// What a `jk_cluster_event` reports (its `kind`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_cluster_event_kind {
    /// A leader was elected in `term` (`leader`), or the node lost its leader (`leader` NULL).
    LeaderChanged = 0,
    /// The configuration changed (`configuration`: voters, a joint change, learners).
    VotersChanged = 1,
    /// The reporting node's own role changed (`node_id`, `role`).
    RoleChanged = 2,
    /// A journal partition's readable range changed (`partition`, `min_index`, `max_index`).
    JournalChanged = 3,
    /// A user state machine changed on the reporting node (`machine`, `applied_index`). Only
    /// for subscriptions opened with `JK_EVENTS_STATE_MACHINES`.
    StateChanged = 4,
}

/// A `flags` bit of `jk_client_events_with` / `jk_server_events_with`: also deliver
/// `JK_CLUSTER_EVENT_KIND_STATE_CHANGED` events, one per hosted user state machine as the node
/// applies to it (needs nodes of protocol 1.8).
pub const JK_EVENTS_STATE_MACHINES: u32 = 1;

/// One cluster event, passed to a `jk_events_callback`. Borrowed: it and everything it points to
/// are valid during the callback only. Only the fields of its `kind` are set; the others are 0
/// or NULL. A subscription starts with the node's whole current state (one event of each kind,
/// one `JOURNAL_CHANGED` per partition) and, after a reconnect, repeats the latest state of each
/// kind: treat events as state, not as deltas to count.
#[repr(C)]
#[derive(Debug)]
pub struct jk_cluster_event {
    pub kind: jk_cluster_event_kind,
    /// `LEADER_CHANGED`: the leader; NULL when the node knows none.
    pub leader: *const jk_member,
    /// `LEADER_CHANGED`: the term.
    pub term: u64,
    /// `VOTERS_CHANGED`: the new configuration (its `leader` is NULL: leaders are reported by
    /// `LEADER_CHANGED`).
    pub configuration: *const jk_cluster_configuration,
    /// `ROLE_CHANGED`: the reporting node and its new role.
    pub node_id: u64,
    pub role: jk_role,
    /// `JOURNAL_CHANGED`: the partition, its smallest readable index and the next index to be
    /// written.
    pub partition: u16,
    pub min_index: u64,
    pub max_index: u64,
    /// `STATE_CHANGED`: the user state machine's name (NUL-terminated) and the log index of
    /// the last entry that ran its commands, or that replaced its state from a snapshot (0
    /// before any). Coalesced: the latest index, not every one.
    pub machine: *const c_char,
    pub applied_index: u64,
}

/// Called on the subscription's own library thread, once per event (`event` non-NULL, `error`
/// NULL), in the order the node saw them. When the subscription ends — client closed
/// (`JK_STATUS_CLOSED`), server stopped (`JK_STATUS_CLOSED`), no node took the subscription in
/// time (`JK_STATUS_TIMEOUT` / `JK_STATUS_UNAVAILABLE`), or another error a node reported — it
/// is called once more with `event` NULL and `error` set, and never again. Both pointers are
/// borrowed for the call only. The callback must not block for long (events queue up
/// meanwhile); it may call any `jk_` function, including blocking ones and `jk_events_close` of
/// its own subscription.
pub type jk_events_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        event: *const jk_cluster_event,
        error: *const jk_error,
    ),
>;

impl Source for EventStream {
    type Item = ClusterEvent;

    async fn next_item(&mut self) -> Result<ClusterEvent, Failure> {
        Ok(self.next().await?)
    }
}

impl Source for LocalEvents {
    type Item = ClusterEvent;

    async fn next_item(&mut self) -> Result<ClusterEvent, Failure> {
        self.next()
            .await
            .ok_or_else(|| Failure::new(jk_status::Closed, "the server was stopped"))
    }
}

/// An event with only its `kind` set.
fn empty(kind: jk_cluster_event_kind) -> jk_cluster_event {
    jk_cluster_event {
        kind,
        leader: std::ptr::null(),
        term: 0,
        configuration: std::ptr::null(),
        node_id: 0,
        role: jk_role::None,
        partition: 0,
        min_index: 0,
        max_index: 0,
        machine: std::ptr::null(),
        applied_index: 0,
    }
}

/// Calls the callback with the C view of `e` (its storage lives on this stack frame).
fn deliver(callback: &Callback<jk_cluster_event>, e: &ClusterEvent) {
    match e {
        ClusterEvent::LeaderChanged { leader, term } => {
            let mut addrs = Vec::new();
            let leader = leader.as_ref().map(|m| member(m, &mut addrs));
            callback.event(&jk_cluster_event {
                leader: leader
                    .as_ref()
                    .map_or(std::ptr::null(), |m| m as *const jk_member),
                term: *term,
                ..empty(jk_cluster_event_kind::LeaderChanged)
            });
        }
        ClusterEvent::VotersChanged { configuration } => {
            let storage = ConfigStorage::new(configuration);
            let view = storage.view();
            callback.event(&jk_cluster_event {
                configuration: &view,
                ..empty(jk_cluster_event_kind::VotersChanged)
            });
        }
        ClusterEvent::RoleChanged { node_id, role } => {
            callback.event(&jk_cluster_event {
                node_id: *node_id,
                role: jk_role::from(Some(*role)),
                ..empty(jk_cluster_event_kind::RoleChanged)
            });
        }
        ClusterEvent::JournalChanged {
            partition,
            min_index,
            max_index,
        } => {
            callback.event(&jk_cluster_event {
                partition: *partition,
                min_index: *min_index,
                max_index: *max_index,
                ..empty(jk_cluster_event_kind::JournalChanged)
            });
        }
        ClusterEvent::StateChanged {
            machine,
            applied_index,
        } => {
            // Machine names are `[A-Za-z0-9_.-]`: never an inner NUL.
            let name = CString::new(machine.as_str()).unwrap_or_default();
            callback.event(&jk_cluster_event {
                machine: name.as_ptr(),
                applied_index: *applied_index,
                ..empty(jk_cluster_event_kind::StateChanged)
            });
        }
    }
}

/// The core's options from `flags` (`JK_EVENTS_*` bits).
fn event_options(flags: u32) -> Result<EventOptions, Failure> {
    if flags & !JK_EVENTS_STATE_MACHINES != 0 {
        return Err(Failure::new(
            jk_status::InvalidArgument,
            format!("unknown event flags {flags:#x} (known: JK_EVENTS_STATE_MACHINES = 1)"),
        ));
    }
    Ok(EventOptions {
        state_machines: flags & JK_EVENTS_STATE_MACHINES != 0,
    })
}

fn start<S: Source<Item = ClusterEvent>>(
    source: S,
    callback: Callback<jk_cluster_event>,
) -> Result<*mut jk_events, Failure> {
    let events = Subscription::start("jk-events", source, callback, deliver)?;
    Ok(to_boxed_mut_ptr::<jk_events>(events))
}

/// Subscribes to the cluster's events as the node the client is subscribed to sees them
/// (leader, configuration, that node's role, every partition's bounds): first its whole current
/// state, then each change. Blocks until a node takes the subscription, then calls `callback`
/// with `user_data` on a library thread for every event (see `jk_events_callback`). The
/// subscription moves to another node when its node is lost (the new node's state follows) and
/// ends with `JK_STATUS_CLOSED` once the client is closed. On success `*out` is a new handle for
/// `jk_events_close`; when this returns an error the callback is never called. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_events(
    client: *const jk_client,
    callback: jk_events_callback,
    user_data: *mut c_void,
    out: *mut *mut jk_events,
    err_out: *mut *mut jk_error,
) -> jk_status {
    jk_client_events_with(client, 0, callback, user_data, out, err_out)
}

/// `jk_client_events` with `flags`: `JK_EVENTS_STATE_MACHINES` adds the user state machines'
/// `STATE_CHANGED` events. `JK_STATUS_INVALID_ARGUMENT` for an unknown bit. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_client_events_with(
    client: *const jk_client,
    flags: u32,
    callback: jk_events_callback,
    user_data: *mut c_void,
    out: *mut *mut jk_events,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let options = event_options(flags)?;
        let callback = Callback::new(callback, user_data)?;
        let stream = block_on(client.events_with(options))??;
        out.set(start(stream, callback)?);
        Ok(())
    }
}

/// Subscribes to an embedded node's own events, as a client subscribed to it would get them:
/// first its whole current state, then each change (a slow callback skips intermediate states
/// and gets the difference to the latest). Does not block on the network. `callback` runs with
/// `user_data` on a library thread (see `jk_events_callback`); the subscription ends with
/// `JK_STATUS_CLOSED` when the server stops. `JK_STATUS_CLOSED` (and no subscription) after
/// `jk_server_stop`. On success `*out` is a new handle for `jk_events_close`; when this returns
/// an error the callback is never called. The subscription does not keep the server alive:
/// stop and free it as usual. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_events(
    server: *const jk_server,
    callback: jk_events_callback,
    user_data: *mut c_void,
    out: *mut *mut jk_events,
    err_out: *mut *mut jk_error,
) -> jk_status {
    jk_server_events_with(server, 0, callback, user_data, out, err_out)
}

/// `jk_server_events` with `flags`: `JK_EVENTS_STATE_MACHINES` adds the hosted user state
/// machines' `STATE_CHANGED` events. `JK_STATUS_INVALID_ARGUMENT` for an unknown bit.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_server_events_with(
    server: *const jk_server,
    flags: u32,
    callback: jk_events_callback,
    user_data: *mut c_void,
    out: *mut *mut jk_events,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let options = event_options(flags)?;
        let callback = Callback::new(callback, user_data)?;
        let events = with_server(server, |s| Ok(s.events_with(options)))?;
        out.set(start(events, callback)?);
        Ok(())
    }
}

/// Stops the subscription and frees the handle. After it returns, the callback is never called
/// again (it waits for a callback in progress to return — unless called from that callback
/// itself, which is allowed: the subscription then ends when the callback returns). NULL is
/// allowed (nothing happens). Must be the last call on `events`, also after the final call with
/// `event` NULL. Returns `JK_STATUS_OK`, or `JK_STATUS_PANIC`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_events_close(events: *mut jk_events) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        if let Some(events) = free_box::<jk_events>(events) {
            events.close();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use journalkeeper::client::protocol::{ClusterConfiguration, Member, NodeRole};

    use super::*;

    /// Appends a summary of `event` to the `Vec<String>` behind `user_data`.
    unsafe extern "C" fn record(
        user_data: *mut c_void,
        event: *const jk_cluster_event,
        error: *const jk_error,
    ) {
        assert!(error.is_null());
        // SAFETY: `user_data` is the `&mut Vec<String>` the test passes; `deliver` calls back
        // synchronously, while the test holds it.
        let seen = unsafe { &mut *user_data.cast::<Vec<String>>() };
        // SAFETY: `deliver` passes a live event for the call.
        let e = unsafe { &*event };
        let addr = |m: *const jk_member| {
            // SAFETY: a non-NULL member of a live event, with a NUL-terminated address.
            unsafe { m.as_ref() }.map(|m| {
                // SAFETY: as above.
                let a = unsafe { CStr::from_ptr(m.addr) };
                format!("{}@{}", m.node_id, a.to_str().unwrap())
            })
        };
        seen.push(match e.kind {
            jk_cluster_event_kind::LeaderChanged => {
                format!("leader {:?} term {}", addr(e.leader), e.term)
            }
            jk_cluster_event_kind::VotersChanged => {
                // SAFETY: VOTERS_CHANGED carries a live configuration.
                let c = unsafe { &*e.configuration };
                // SAFETY: `voters` holds `voters_len` members.
                let voters = unsafe { std::slice::from_raw_parts(c.voters, c.voters_len) };
                let voters: Vec<_> = voters.iter().map(|m| addr(m).unwrap()).collect();
                format!("voters {voters:?} leader {:?}", addr(c.leader))
            }
            jk_cluster_event_kind::RoleChanged => format!("role {} {:?}", e.node_id, e.role),
            jk_cluster_event_kind::JournalChanged => {
                format!("journal {} {}..{}", e.partition, e.min_index, e.max_index)
            }
            jk_cluster_event_kind::StateChanged => {
                // SAFETY: STATE_CHANGED carries a live NUL-terminated name.
                let name = unsafe { CStr::from_ptr(e.machine) };
                format!("state {} {}", name.to_str().unwrap(), e.applied_index)
            }
        });
    }

    #[test]
    fn each_kind_carries_its_fields_and_zeroes_the_others() {
        let m = |id: u64| Member {
            node_id: id,
            addr: format!("127.0.0.1:{id}"),
        };
        let mut seen: Vec<String> = Vec::new();
        let callback = Callback::new(Some(record), (&mut seen as *mut Vec<String>).cast()).unwrap();
        for e in [
            ClusterEvent::LeaderChanged {
                leader: Some(m(2)),
                term: 7,
            },
            ClusterEvent::LeaderChanged {
                leader: None,
                term: 8,
            },
            ClusterEvent::VotersChanged {
                configuration: ClusterConfiguration {
                    voters: vec![m(1), m(2)],
                    ..ClusterConfiguration::default()
                },
            },
            ClusterEvent::RoleChanged {
                node_id: 3,
                role: NodeRole::Leader,
            },
            ClusterEvent::JournalChanged {
                partition: 4,
                min_index: 5,
                max_index: 9,
            },
            ClusterEvent::StateChanged {
                machine: "bank".into(),
                applied_index: 12,
            },
        ] {
            deliver(&callback, &e);
        }
        assert_eq!(
            seen,
            [
                "leader Some(\"2@127.0.0.1:2\") term 7",
                "leader None term 8",
                "voters [\"1@127.0.0.1:1\", \"2@127.0.0.1:2\"] leader None",
                "role 3 Leader",
                "journal 4 5..9",
                "state bank 12",
            ]
        );
        let empty = empty(jk_cluster_event_kind::RoleChanged);
        assert!(empty.leader.is_null() && empty.configuration.is_null() && empty.machine.is_null());
        assert!(event_options(2).is_err());
        assert!(
            event_options(JK_EVENTS_STATE_MACHINES)
                .unwrap()
                .state_machines
        );
        assert_eq!(
            (empty.term, empty.node_id, empty.role),
            (0, 0, jk_role::None)
        );
    }
}
