//! [`Transactions`]: journal transactions (the seed's JK-PS transactions). Entries appended
//! under one transaction, to any partitions, become visible together when it commits — in
//! each partition in the order they were appended, each batch keeping its batch size — or
//! never, when it is aborted or expires.
//!
//! Owns: argument checks and the mapping of outcomes to return values. Every write carries a
//! session id, so a retried call applies once; `commit` returns only once the entries are
//! visible to readers at every level (a leader change in between is finished by the next
//! leader, and the retry waits for it).

use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::Target;
use super::protocol::{self, ReplyBody, RequestBody, TxnInfo};
use super::{Client, unexpected};
use crate::api::{Error, ErrorKind, QueryConsistency};
use crate::state::txn::{TxnCommand, TxnOutcome, TxnRequest};

/// How long a transaction may stay idle (no append, no completion) before the leader expires
/// it, unless created with [`Transactions::create_with_timeout`].
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Journal transactions of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Transactions<'a> {
    client: &'a Client,
}

impl<'a> Transactions<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Transactions { client }
    }

    /// Opens a transaction carrying `context` (any key/value pairs, returned by
    /// [`opening`](Self::opening)): its id. It expires after
    /// [`DEFAULT_TRANSACTION_TIMEOUT`] without an append.
    pub async fn create(&self, context: BTreeMap<String, String>) -> Result<u64, Error> {
        self.create_with_timeout(context, DEFAULT_TRANSACTION_TIMEOUT)
            .await
    }

    /// [`create`](Self::create) with its own idle timeout (100 ms ..= 24 h).
    pub async fn create_with_timeout(
        &self,
        context: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<u64, Error> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        match self
            .write(TxnCommand::Create {
                context,
                timeout_ms,
            })
            .await?
        {
            TxnOutcome::Created { tx } => Ok(tx),
            other => Err(unexpected_outcome("Create", &other)),
        }
    }

    /// Adds one batch for `partition` to transaction `tx` (invisible until it commits): the
    /// number of entries the transaction holds now.
    pub async fn append(
        &self,
        tx: u64,
        partition: u16,
        entries: Vec<Vec<u8>>,
    ) -> Result<u64, Error> {
        protocol::check_append_batches(&[entries.as_slice()])?;
        let command = TxnCommand::Append {
            tx,
            partition,
            entries: entries
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
        };
        match self.write(command).await? {
            TxnOutcome::Appended { entries } => Ok(entries),
            other => Err(unexpected_outcome("Append", &other)),
        }
    }

    /// Commits `tx`: returns once every entry is visible. A retry after a lost reply or a
    /// leader change applies once and waits for the same publication; a new call for a
    /// transaction that already ended fails with `InvalidArgument` ("not open").
    pub async fn commit(&self, tx: u64) -> Result<(), Error> {
        match self
            .write(TxnCommand::Complete { tx, commit: true })
            .await?
        {
            TxnOutcome::Committed { .. } => Ok(()),
            other => Err(unexpected_outcome("Commit", &other)),
        }
    }

    /// Aborts `tx`: nothing of it will ever be visible. `false` when it had already ended
    /// (aborted or expired). A transaction whose commit is decided cannot be aborted.
    pub async fn abort(&self, tx: u64) -> Result<bool, Error> {
        match self
            .write(TxnCommand::Complete { tx, commit: false })
            .await?
        {
            TxnOutcome::Aborted { existed } => Ok(existed),
            other => Err(unexpected_outcome("Abort", &other)),
        }
    }

    /// Commits (`commit = true`) or aborts `tx`, as the seed's `completeTransaction`.
    pub async fn complete(&self, tx: u64, commit: bool) -> Result<(), Error> {
        if commit {
            self.commit(tx).await
        } else {
            self.abort(tx).await.map(|_| ())
        }
    }

    /// Every transaction not yet ended (open, or committing), oldest first, read at
    /// `consistency`.
    pub async fn opening(&self, consistency: QueryConsistency) -> Result<Vec<TxnInfo>, Error> {
        let (target, read) = self.client.inner.read_at(consistency);
        match self
            .client
            .inner
            .call(target, RequestBody::OpenTransactions { read })
            .await?
        {
            ReplyBody::Transactions(list) => Ok(list),
            other => Err(unexpected("OpenTransactions", &other)),
        }
    }

    async fn write(&self, command: TxnCommand) -> Result<TxnOutcome, Error> {
        let cluster = &self.client.inner;
        let session = cluster.begin_write();
        let body = RequestBody::TxnWrite {
            request: TxnRequest {
                id: Some(session.id),
                command,
            },
        };
        match cluster.call(Target::Leader, body).await? {
            ReplyBody::TxnWritten(outcome) => Ok(outcome),
            other => Err(unexpected("TxnWrite", &other)),
        }
    }
}

fn unexpected_outcome(call: &str, outcome: &TxnOutcome) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("unexpected outcome of transaction {call}: {outcome:?}"),
    )
}
