//! Journal transactions (the seed's JK-PS transactions): entries appended to any partitions
//! under one transaction id become visible together, in append order, or not at all.
//!
//! Owns: the open transactions — their context, the batches appended so far (held here, in
//! memory and in every snapshot, so any node that becomes leader can finish one), whether the
//! commit was decided — and the bounds on how many are open and how much they hold.
//!
//! The life of a transaction, each step one log entry:
//! 1. `Create` → the id is the log index of the entry (unique, increasing).
//! 2. `Append` (any number of times, any partitions) → the batch is kept here, invisible.
//! 3. `Complete { commit: true }` → *decided* (the seed's PRE_COMPLETE): no more appends, the
//!    outcome is fixed. `Complete { commit: false }` or the leader's `Expire` → gone, no trace.
//! 4. The leader sees a decided transaction and proposes one *publish* record holding every
//!    batch (`server::txn_record`); applying it places all entries in their partitions at one
//!    index (the seed's COMPLETE) and ends the transaction here ([`Transactions::published`]).
//!    A new leader publishes whatever its predecessor decided but did not publish.
//!
//! Never does: read a clock. Expiry of an abandoned transaction is decided by the leader (its
//! lessor, by its own monotonic clock) and arrives as an `Expire` entry.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::session::{Admission, ClientSessions, RequestId, SessionLimits};
use super::{ApplyContext, StateError, decode, encode};

/// Bounds of the transaction state. Every one is checked, with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnLimits {
    /// Transactions open at once (the seed: 128).
    pub max_open: usize,
    /// Payload bytes one transaction may hold (all of it is published as one log record, so
    /// this stays below the record bound).
    pub max_bytes_per_txn: usize,
    /// Payload bytes all open transactions may hold together.
    pub max_open_bytes: usize,
    /// Entries one transaction may hold.
    pub max_entries_per_txn: usize,
    /// Context pairs, and bytes of all context keys and values.
    pub max_context_entries: usize,
    pub max_context_bytes: usize,
    /// Bounds of the inactivity timeout a transaction is created with.
    pub min_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub sessions: SessionLimits,
}

impl Default for TxnLimits {
    fn default() -> Self {
        Self {
            max_open: 128,
            max_bytes_per_txn: 3 * 1024 * 1024,
            max_open_bytes: 64 * 1024 * 1024,
            max_entries_per_txn: 65_536,
            max_context_entries: 64,
            max_context_bytes: 16 * 1024,
            min_timeout_ms: 100,
            max_timeout_ms: 24 * 3600 * 1000,
            sessions: SessionLimits::default(),
        }
    }
}

/// A change to the transaction state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnCommand {
    /// A new transaction; its id is the log index of this entry. It expires when no append
    /// or completion reaches the leader for `timeout_ms`.
    Create {
        context: BTreeMap<String, String>,
        timeout_ms: u64,
    },
    /// One batch for `partition` (kept as one batch when published).
    Append {
        tx: u64,
        partition: u16,
        entries: Vec<serde_bytes::ByteBuf>,
    },
    /// Commit (decided now, published by the leader next) or abort (gone now).
    Complete { tx: u64, commit: bool },
    /// The leader saw the transaction idle past its timeout (same effect as an abort).
    Expire { tx: u64 },
}

impl TxnCommand {
    /// The transaction the command is about (`None` for `Create`).
    pub fn tx(&self) -> Option<u64> {
        match self {
            TxnCommand::Create { .. } => None,
            TxnCommand::Append { tx, .. }
            | TxnCommand::Complete { tx, .. }
            | TxnCommand::Expire { tx } => Some(*tx),
        }
    }
}

/// A transaction write as it is proposed to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    /// Present for writes that must take effect once even when retried.
    pub id: Option<RequestId>,
    pub command: TxnCommand,
}

/// The result of applying a [`TxnCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    Created {
        tx: u64,
    },
    /// The batch is held; `entries` the transaction holds now.
    Appended {
        entries: u64,
    },
    /// The commit is decided; the entries become visible when the publish record applies.
    Committing {
        tx: u64,
    },
    /// The entries are visible (the reply to a commit; never a state-machine result).
    Committed {
        tx: u64,
    },
    /// `existed`: false when the transaction had already ended (expired or aborted before).
    Aborted {
        existed: bool,
    },
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnPhase {
    /// Taking appends.
    Open,
    /// Commit decided; waiting for the leader's publish record.
    Committing,
}

/// One batch of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnBatch {
    pub partition: u16,
    pub entries: Vec<serde_bytes::ByteBuf>,
}

/// An open transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTxn {
    pub context: BTreeMap<String, String>,
    pub timeout_ms: u64,
    pub phase: TxnPhase,
    /// In append order.
    pub batches: Vec<TxnBatch>,
    pub entries: u64,
    pub bytes: u64,
}

/// The transaction state machine (part of the journal store's snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transactions {
    limits: TxnLimits,
    open: BTreeMap<u64, OpenTxn>,
    open_bytes: u64,
    sessions: ClientSessions,
}

impl Default for Transactions {
    fn default() -> Self {
        Self::new(TxnLimits::default())
    }
}

fn invalid(msg: String) -> StateError {
    StateError::InvalidArgument(msg)
}

fn gone(tx: u64) -> StateError {
    StateError::Rejected(format!(
        "transaction {tx} is not open (it was committed, aborted, expired or never created)"
    ))
}

impl Transactions {
    pub fn new(limits: TxnLimits) -> Self {
        Self {
            limits,
            open: BTreeMap::new(),
            open_bytes: 0,
            sessions: ClientSessions::new(limits.sessions),
        }
    }

    pub fn limits(&self) -> &TxnLimits {
        &self.limits
    }

    /// Every transaction not yet ended, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &OpenTxn)> {
        self.open.iter().map(|(id, t)| (*id, t))
    }

    pub fn get(&self, tx: u64) -> Option<&OpenTxn> {
        self.open.get(&tx)
    }

    /// Applies one request at `ctx.index`; `partition_exists` says whether a client partition
    /// is declared. A retried request returns its first result.
    pub fn apply_request(
        &mut self,
        ctx: &ApplyContext,
        request: &TxnRequest,
        partition_exists: impl Fn(u16) -> bool,
    ) -> Result<TxnOutcome, StateError> {
        let Some(id) = &request.id else {
            return self.apply_command(ctx.index, &request.command, partition_exists);
        };
        match self.sessions.admit(id)? {
            Admission::Duplicate(result) => {
                result.and_then(|bytes| decode("transaction outcome", &bytes))
            }
            Admission::Apply => {
                let result = self.apply_command(ctx.index, &request.command, partition_exists);
                let stored = match &result {
                    Ok(outcome) => encode("transaction outcome", outcome),
                    Err(e) => Err(e.clone()),
                };
                self.sessions.record(id, ctx.index, stored);
                result
            }
        }
    }

    /// The publish record of committing transaction `tx` applied: it ends here. Returns
    /// whether it was committing (a publish of anything else is ignored by the state; what the
    /// record places in the partitions is decided by the record alone).
    pub fn published(&mut self, tx: u64) -> bool {
        match self.open.get(&tx) {
            Some(t) if t.phase == TxnPhase::Committing => {
                self.remove(tx);
                true
            }
            _ => false,
        }
    }

    fn remove(&mut self, tx: u64) -> Option<OpenTxn> {
        let t = self.open.remove(&tx)?;
        self.open_bytes = self.open_bytes.saturating_sub(t.bytes);
        Some(t)
    }

    fn apply_command(
        &mut self,
        index: u64,
        command: &TxnCommand,
        partition_exists: impl Fn(u16) -> bool,
    ) -> Result<TxnOutcome, StateError> {
        match command {
            TxnCommand::Create {
                context,
                timeout_ms,
            } => {
                self.check_create(context, *timeout_ms)?;
                self.open.insert(
                    index,
                    OpenTxn {
                        context: context.clone(),
                        timeout_ms: *timeout_ms,
                        phase: TxnPhase::Open,
                        batches: Vec::new(),
                        entries: 0,
                        bytes: 0,
                    },
                );
                Ok(TxnOutcome::Created { tx: index })
            }
            TxnCommand::Append {
                tx,
                partition,
                entries,
            } => {
                if !partition_exists(*partition) {
                    return Err(invalid(format!("no such partition: {partition}")));
                }
                let limits = self.limits;
                let open_bytes = self.open_bytes;
                let t = self.open.get_mut(tx).ok_or_else(|| gone(*tx))?;
                if t.phase != TxnPhase::Open {
                    return Err(StateError::Rejected(format!(
                        "transaction {tx} is committing: it takes no more appends"
                    )));
                }
                if entries.is_empty() {
                    return Err(invalid(
                        "a transaction batch needs at least one entry".into(),
                    ));
                }
                let bytes: u64 = entries.iter().map(|e| e.len() as u64).sum();
                let count = entries.len() as u64;
                if t.entries + count > limits.max_entries_per_txn as u64 {
                    return Err(invalid(format!(
                        "transaction {tx} would hold {} entries, at most {}",
                        t.entries + count,
                        limits.max_entries_per_txn
                    )));
                }
                if t.bytes + bytes > limits.max_bytes_per_txn as u64 {
                    return Err(invalid(format!(
                        "transaction {tx} would hold {} bytes, at most {}",
                        t.bytes + bytes,
                        limits.max_bytes_per_txn
                    )));
                }
                if open_bytes + bytes > limits.max_open_bytes as u64 {
                    return Err(invalid(format!(
                        "open transactions would hold {} bytes, at most {} together",
                        open_bytes + bytes,
                        limits.max_open_bytes
                    )));
                }
                t.batches.push(TxnBatch {
                    partition: *partition,
                    entries: entries.clone(),
                });
                t.entries += count;
                t.bytes += bytes;
                let entries = t.entries;
                self.open_bytes += bytes;
                Ok(TxnOutcome::Appended { entries })
            }
            TxnCommand::Complete { tx, commit: true } => {
                let t = self.open.get_mut(tx).ok_or_else(|| gone(*tx))?;
                t.phase = TxnPhase::Committing;
                Ok(TxnOutcome::Committing { tx: *tx })
            }
            TxnCommand::Complete { tx, commit: false } => match self.open.get(tx) {
                Some(t) if t.phase == TxnPhase::Committing => Err(StateError::Rejected(format!(
                    "transaction {tx} is already committing: it cannot be aborted"
                ))),
                _ => Ok(TxnOutcome::Aborted {
                    existed: self.remove(*tx).is_some(),
                }),
            },
            TxnCommand::Expire { tx } => {
                // A decided transaction never expires: it is published.
                let existed = matches!(self.open.get(tx), Some(t) if t.phase == TxnPhase::Open)
                    && self.remove(*tx).is_some();
                Ok(TxnOutcome::Aborted { existed })
            }
        }
    }

    fn check_create(
        &self,
        context: &BTreeMap<String, String>,
        timeout_ms: u64,
    ) -> Result<(), StateError> {
        let l = &self.limits;
        if self.open.len() >= l.max_open {
            return Err(invalid(format!(
                "{} transactions are open, the most allowed at once",
                l.max_open
            )));
        }
        if !(l.min_timeout_ms..=l.max_timeout_ms).contains(&timeout_ms) {
            return Err(invalid(format!(
                "transaction timeout {timeout_ms} ms is outside {}..={} ms",
                l.min_timeout_ms, l.max_timeout_ms
            )));
        }
        if context.len() > l.max_context_entries {
            return Err(invalid(format!(
                "a transaction context holds at most {} pairs, not {}",
                l.max_context_entries,
                context.len()
            )));
        }
        let bytes: usize = context.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > l.max_context_bytes {
            return Err(invalid(format!(
                "a transaction context holds at most {} bytes, not {bytes}",
                l.max_context_bytes
            )));
        }
        Ok(())
    }
}
