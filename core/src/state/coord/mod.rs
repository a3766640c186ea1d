//! The coordination recipes' state machine: leases (TTL sessions), named queues that serve
//! locks with fencing tokens and leader elections, monotonic ID sequences and liveness groups.
//!
//! Owns: which leases exist (and what each holds: KV keys attached to it, its place in lock and
//! election queues, its group memberships), who holds each lock / leads each election and who
//! waits in what order, and the next value of every ID sequence.
//!
//! Never does: decide *when* a lease expires. Expiry is a log entry ([`CoordCommand::Expire`])
//! the leader proposes from its own clock (the driver's lessor), so every replica removes the
//! lease at the same index. No clock, no randomness: the state is a function of the log.
//!
//! What clients observe goes through the KV, under the reserved prefix [`RESERVED_PREFIX`]
//! that only this module writes: a lock's or an election's holder is the value of
//! [`holder_key`], a live member is [`member_key`]. Reading and watching those keys (with the
//! KV's history and resumable watches) is how a waiter learns it was granted a lock, and how an
//! observer follows an election. Fencing tokens are log indices: the index of the entry at which
//! that acquisition took effect, so they increase strictly with every acquisition of a lock,
//! across leader changes and restarts, without any per-lock counter to keep.

mod leases;
mod queues;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use leases::LeaseInfo;
pub use queues::QueueKind;

use super::kv::KvStore;
use super::session::{Admission, ClientSessions, RequestId, SessionLimits};
use super::{ApplyContext, StateError, decode, encode};
use leases::Leases;
use queues::Queues;

/// Keys under this prefix belong to the coordination recipes: clients cannot write them, and a
/// list or watch by a prefix outside it never shows them.
pub const RESERVED_PREFIX: &str = "\u{0}jk/";

/// Whether `key` is one only the coordination state machine writes.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// The KV key whose value is the holder ([`Holder`]) of lock or election `name`.
pub fn holder_key(kind: QueueKind, name: &str) -> String {
    format!("{RESERVED_PREFIX}{}/{name}", kind.word())
}

/// The prefix of every live member of `group`.
pub fn members_prefix(group: &str) -> String {
    format!("{RESERVED_PREFIX}members/{group}/")
}

/// The KV key of `member` in `group`; its value is a [`MemberRecord`].
pub fn member_key(group: &str, member: &str) -> String {
    format!("{}{member}", members_prefix(group))
}

/// Bounds of the coordination state. Every one is checked, with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordLimits {
    pub max_leases: usize,
    pub min_ttl_ms: u64,
    pub max_ttl_ms: u64,
    /// KV keys, queue places and memberships one lease may hold.
    pub max_holdings_per_lease: usize,
    /// Waiters of one lock or election.
    pub max_waiters: usize,
    pub max_sequences: usize,
    /// Most IDs one `NextIds` hands out.
    pub max_ids_per_call: u64,
    /// Longest lock, election, sequence, group or member name (bytes).
    pub max_name_bytes: usize,
    pub sessions: SessionLimits,
}

impl Default for CoordLimits {
    fn default() -> Self {
        Self {
            max_leases: 100_000,
            min_ttl_ms: 100,
            max_ttl_ms: 7 * 24 * 3600 * 1000,
            max_holdings_per_lease: 10_000,
            max_waiters: 10_000,
            max_sequences: 100_000,
            max_ids_per_call: 1_000_000,
            max_name_bytes: 1024,
            sessions: SessionLimits::default(),
        }
    }
}

/// A change to the coordination state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordCommand {
    /// A new lease of `ttl_ms`; its id is the log index of this entry.
    Grant { ttl_ms: u64 },
    /// The holder gives the lease up: everything it holds is released.
    Revoke { lease: u64 },
    /// The leader's lessor saw the lease run out (same effect as `Revoke`).
    Expire { lease: u64 },
    /// A KV write of `key` attached to `lease`: the key is removed when the lease ends.
    Put {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        lease: u64,
    },
    /// Joins the queue of lock / election `name` (holding it at once when free).
    Acquire {
        kind: QueueKind,
        name: String,
        lease: u64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Leaves the queue of `name`: releases it when held (the next waiter gets it), else stops
    /// waiting.
    Release {
        kind: QueueKind,
        name: String,
        lease: u64,
    },
    /// The next `count` values of sequence `name` (a contiguous range).
    NextIds { name: String, count: u64 },
    /// `member` of `group` is alive while `lease` is.
    Register {
        group: String,
        member: String,
        lease: u64,
        #[serde(with = "serde_bytes")]
        info: Vec<u8>,
    },
    /// Removes `member` from `group` (when registered under `lease`).
    Unregister {
        group: String,
        member: String,
        lease: u64,
    },
}

/// A coordination write as it is proposed to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordRequest {
    /// Present for writes that must take effect once even when retried.
    pub id: Option<RequestId>,
    pub command: CoordCommand,
}

/// The result of applying a [`CoordCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordOutcome {
    Granted {
        lease: u64,
        ttl_ms: u64,
    },
    /// `existed`: false when the lease had already ended.
    Revoked {
        existed: bool,
    },
    Put,
    /// The lease holds the lock / leads the election; `token` is its fencing token.
    Acquired {
        token: u64,
    },
    /// The lease waits; `ahead` waiters (and the holder) come before it. Watch
    /// [`holder_key`] from `index` + 1 to learn when it holds.
    Queued {
        ahead: u64,
        index: u64,
    },
    /// `held`: whether the lease held `name` (false: it only waited, or was not there).
    Released {
        held: bool,
    },
    /// Values `first .. first + count`.
    Ids {
        first: u64,
        count: u64,
    },
    Registered,
    Unregistered {
        existed: bool,
    },
}

/// The value of a [`holder_key`]: who holds a lock or leads an election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub lease: u64,
    /// The fencing token: the log index at which this holder acquired it.
    pub token: u64,
    /// The campaign value (empty for a lock).
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

impl Holder {
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        decode("lock holder", bytes)
    }
}

/// The value of a [`member_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub lease: u64,
    #[serde(with = "serde_bytes")]
    pub info: Vec<u8>,
}

impl MemberRecord {
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        decode("member record", bytes)
    }
}

/// The coordination state machine (applied beside the KV it mirrors into).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordination {
    limits: CoordLimits,
    leases: Leases,
    queues: Queues,
    /// Next value of every sequence (absent: 1).
    sequences: BTreeMap<String, u64>,
    /// `(group, member)` → the lease it lives under.
    members: BTreeMap<(String, String), u64>,
    sessions: ClientSessions,
}

impl Default for Coordination {
    fn default() -> Self {
        Self::new(CoordLimits::default())
    }
}

impl Coordination {
    pub fn new(limits: CoordLimits) -> Self {
        Self {
            limits,
            leases: Leases::default(),
            queues: Queues::default(),
            sequences: BTreeMap::new(),
            members: BTreeMap::new(),
            sessions: ClientSessions::new(limits.sessions),
        }
    }

    /// The leases that exist, with their TTL (the lessor's input).
    pub fn leases(&self) -> impl Iterator<Item = (u64, &LeaseInfo)> {
        self.leases.iter()
    }

    pub fn lease(&self, lease: u64) -> Option<&LeaseInfo> {
        self.leases.get(lease)
    }

    /// Changes whenever a lease is granted or ends (so the lessor knows when to look again).
    pub fn lease_version(&self) -> u64 {
        self.leases.version()
    }

    /// Applies one request at `ctx.index`, writing the mirrored keys into `kv`. A retried
    /// request returns its first result.
    pub fn apply_request(
        &mut self,
        ctx: &ApplyContext,
        request: &CoordRequest,
        kv: &mut KvStore,
    ) -> Result<CoordOutcome, StateError> {
        let Some(id) = &request.id else {
            return self.apply_command(ctx.index, &request.command, kv);
        };
        match self.sessions.admit(id)? {
            Admission::Duplicate(result) => {
                result.and_then(|bytes| decode("coordination outcome", &bytes))
            }
            Admission::Apply => {
                let result = self.apply_command(ctx.index, &request.command, kv);
                let stored = match &result {
                    Ok(outcome) => encode("coordination outcome", outcome),
                    Err(e) => Err(e.clone()),
                };
                self.sessions.record(id, ctx.index, stored);
                result
            }
        }
    }

    /// A client KV write changed `key` (not through a lease): it is no longer attached.
    pub fn key_written(&mut self, key: &str) {
        self.leases.detach_key(key);
    }

    fn apply_command(
        &mut self,
        index: u64,
        command: &CoordCommand,
        kv: &mut KvStore,
    ) -> Result<CoordOutcome, StateError> {
        match command {
            CoordCommand::Grant { ttl_ms } => {
                let (min, max) = (self.limits.min_ttl_ms, self.limits.max_ttl_ms);
                if !(min..=max).contains(ttl_ms) {
                    return Err(invalid(format!(
                        "lease ttl {ttl_ms} ms is outside {min}..={max} ms"
                    )));
                }
                if self.leases.len() >= self.limits.max_leases {
                    return Err(invalid(format!(
                        "at most {} leases may exist at once",
                        self.limits.max_leases
                    )));
                }
                self.leases.grant(index, *ttl_ms);
                Ok(CoordOutcome::Granted {
                    lease: index,
                    ttl_ms: *ttl_ms,
                })
            }
            CoordCommand::Revoke { lease } | CoordCommand::Expire { lease } => {
                let existed = self.end_lease(index, *lease, kv);
                Ok(CoordOutcome::Revoked { existed })
            }
            CoordCommand::Put { key, value, lease } => {
                if is_reserved(key) {
                    return Err(invalid(format!("key {key:?} is reserved")));
                }
                self.check_holding(*lease)?;
                kv.system_set(index, key, value.clone())?;
                if let Some(old) = self.leases.attach_key(key, *lease) {
                    tracing::trace!(key, old, lease, "key moved to another lease");
                }
                Ok(CoordOutcome::Put)
            }
            CoordCommand::Acquire {
                kind,
                name,
                lease,
                value,
            } => {
                self.check_name("name", name)?;
                let key = holder_key(*kind, name);
                kv.check_system_write(&key, value)?;
                if let Some(outcome) = self.queues.already_in(*kind, name, *lease, index) {
                    return Ok(outcome);
                }
                self.check_holding(*lease)?;
                if self.queues.waiters(*kind, name) >= self.limits.max_waiters {
                    return Err(invalid(format!(
                        "{} {name:?} has {} waiters, the most allowed",
                        kind.word(),
                        self.limits.max_waiters
                    )));
                }
                self.leases.hold_place(*lease, *kind, name);
                let outcome = self.queues.join(*kind, name, *lease, value.clone(), index);
                if let CoordOutcome::Acquired { .. } = outcome {
                    self.mirror_holder(index, *kind, name, kv);
                }
                Ok(outcome)
            }
            CoordCommand::Release { kind, name, lease } => {
                let held = self.leave(index, *kind, name, *lease, kv);
                Ok(CoordOutcome::Released { held })
            }
            CoordCommand::NextIds { name, count } => {
                self.check_name("sequence name", name)?;
                let max = self.limits.max_ids_per_call;
                if !(1..=max).contains(count) {
                    return Err(invalid(format!("id count {count} is outside 1..={max}")));
                }
                if !self.sequences.contains_key(name)
                    && self.sequences.len() >= self.limits.max_sequences
                {
                    return Err(invalid(format!(
                        "at most {} sequences may exist",
                        self.limits.max_sequences
                    )));
                }
                let next = self.sequences.entry(name.clone()).or_insert(1);
                let first = *next;
                *next = first
                    .checked_add(*count)
                    .ok_or_else(|| invalid(format!("sequence {name:?} is exhausted")))?;
                Ok(CoordOutcome::Ids {
                    first,
                    count: *count,
                })
            }
            CoordCommand::Register {
                group,
                member,
                lease,
                info,
            } => {
                self.check_name("group", group)?;
                self.check_name("member", member)?;
                if group.contains('/') {
                    return Err(invalid(format!("group {group:?} contains '/'")));
                }
                let key = member_key(group, member);
                let record = encode(
                    "member record",
                    &MemberRecord {
                        lease: *lease,
                        info: info.clone(),
                    },
                )?;
                kv.check_system_write(&key, &record)?;
                self.check_holding(*lease)?;
                let id = (group.clone(), member.clone());
                if let Some(old) = self.members.insert(id.clone(), *lease) {
                    self.leases.drop_membership(old, &id);
                }
                self.leases.hold_membership(*lease, id);
                kv.system_set(index, &key, record)?;
                Ok(CoordOutcome::Registered)
            }
            CoordCommand::Unregister {
                group,
                member,
                lease,
            } => {
                let id = (group.clone(), member.clone());
                if self.members.get(&id) != Some(lease) {
                    return Ok(CoordOutcome::Unregistered { existed: false });
                }
                self.members.remove(&id);
                self.leases.drop_membership(*lease, &id);
                kv.system_remove(index, &member_key(group, member));
                Ok(CoordOutcome::Unregistered { existed: true })
            }
        }
    }

    /// The lease must exist and have room for one more holding.
    fn check_holding(&self, lease: u64) -> Result<(), StateError> {
        let Some(info) = self.leases.get(lease) else {
            return Err(lease_gone(lease));
        };
        if info.holdings() >= self.limits.max_holdings_per_lease {
            return Err(invalid(format!(
                "lease {lease} holds {} keys, queue places and memberships, the most allowed",
                self.limits.max_holdings_per_lease
            )));
        }
        Ok(())
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), StateError> {
        let max = self.limits.max_name_bytes;
        if name.is_empty() || name.len() > max {
            return Err(invalid(format!(
                "{what} of {} bytes is outside 1..={max} bytes",
                name.len()
            )));
        }
        Ok(())
    }

    /// Removes `lease` and everything it holds; false when it did not exist.
    fn end_lease(&mut self, index: u64, lease: u64, kv: &mut KvStore) -> bool {
        let Some(info) = self.leases.remove(lease) else {
            return false;
        };
        for key in &info.keys {
            kv.system_remove(index, key);
        }
        for (kind, name) in &info.places {
            self.leave(index, *kind, name, lease, kv);
        }
        for id in &info.memberships {
            if self.members.get(id) == Some(&lease) {
                self.members.remove(id);
                kv.system_remove(index, &member_key(&id.0, &id.1));
            }
        }
        true
    }

    /// `lease` leaves queue `name`; when it held it, the next waiter (if any) holds it from
    /// `index`. Returns whether `lease` held it.
    fn leave(
        &mut self,
        index: u64,
        kind: QueueKind,
        name: &str,
        lease: u64,
        kv: &mut KvStore,
    ) -> bool {
        self.leases.drop_place(lease, kind, name);
        let held = self.queues.leave(kind, name, lease, index);
        if held {
            self.mirror_holder(index, kind, name, kv);
        }
        held
    }

    /// Writes the holder of `name` (or removes the key when nobody holds it).
    fn mirror_holder(&self, index: u64, kind: QueueKind, name: &str, kv: &mut KvStore) {
        let key = holder_key(kind, name);
        match self.queues.holder(kind, name) {
            Some(holder) => match encode("lock holder", holder) {
                Ok(bytes) => {
                    if let Err(e) = kv.system_set(index, &key, bytes) {
                        tracing::error!(key, reason = %e, "holder not mirrored");
                    }
                }
                Err(e) => tracing::error!(key, reason = %e, "holder not encoded"),
            },
            None => kv.system_remove(index, &key),
        }
    }
}

fn invalid(message: String) -> StateError {
    StateError::InvalidArgument(message)
}

/// The error of an operation on a lease that does not exist (never granted, revoked or expired).
pub fn lease_gone(lease: u64) -> StateError {
    StateError::LeaseExpired(lease)
}

#[cfg(test)]
mod tests;
