//! `client.transactions`: journal transactions (`Client::transactions()`) as Promises — create
//! with a context, append batches to any partitions, commit (resolves once every entry is
//! visible), abort, the transactions not yet ended.
//!
//! Durations are milliseconds; transaction ids are JS numbers (`to_number`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use journalkeeper::client::protocol::TxnInfo as CoreTxnInfo;
use journalkeeper::client::{Client as CoreClient, DEFAULT_TRANSACTION_TIMEOUT};
use journalkeeper::state::txn::TxnPhase as CorePhase;
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Unknown};
use napi_derive::napi;

use crate::args::{self, R};
use crate::client::consistency;
use crate::{promise, to_number, to_u64};

/// Options of `transactions.create()`.
#[napi(object)]
#[derive(Default)]
pub struct TxnCreateOptions {
    /// String pairs kept with the transaction (at most 64 of 16 KiB together), reported by
    /// `opening()`.
    pub context: Option<HashMap<String, String>>,
    /// Idle time after which the leader aborts it (100 ms to 24 h; default 60 000).
    pub timeout_ms: Option<f64>,
}

/// Where a transaction not yet ended stands.
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug)]
pub enum TxnPhase {
    /// Taking appends.
    Open,
    /// Its commit is decided and its entries are being published: no more appends, no abort.
    Committing,
}

/// A transaction not yet ended (`transactions.opening()`).
#[napi(object, object_from_js = false)]
pub struct TxnInfo {
    /// Its id (the log index of its creation: ids increase).
    pub tx: f64,
    /// The context it was created with.
    pub context: HashMap<String, String>,
    pub phase: TxnPhase,
    /// Entries and payload bytes it holds.
    pub entries: f64,
    pub bytes: f64,
    /// The partitions it appended to, ascending.
    pub partitions: Vec<u32>,
}

fn txn_info(t: CoreTxnInfo) -> R<TxnInfo> {
    Ok(TxnInfo {
        tx: to_number("tx", t.tx)?,
        context: t.context.into_iter().collect(),
        phase: match t.phase {
            CorePhase::Open => TxnPhase::Open,
            CorePhase::Committing => TxnPhase::Committing,
        },
        entries: to_number("entries", t.entries)?,
        bytes: to_number("bytes", t.bytes)?,
        partitions: t.partitions.into_iter().map(u32::from).collect(),
    })
}

/// The journal transactions of a client. A call for a transaction that has ended (committed,
/// aborted, expired) rejects with `INVALID_ARGUMENT` ("not open").
#[napi]
pub struct Transactions {
    inner: CoreClient,
}

impl Transactions {
    pub fn new(inner: CoreClient) -> Self {
        Transactions { inner }
    }
}

#[napi]
impl Transactions {
    /// Opens a transaction; resolves to its id (ids increase). At most 128 are open at once.
    #[napi(ts_args_type = "options?: TxnCreateOptions | undefined | null")]
    pub fn create<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            let o = args::options::<TxnCreateOptions>("options", options)?.unwrap_or_default();
            let context: BTreeMap<String, String> =
                o.context.unwrap_or_default().into_iter().collect();
            let timeout = match o.timeout_ms {
                Some(ms) => Duration::from_millis(to_u64("timeoutMs", ms)?),
                None => DEFAULT_TRANSACTION_TIMEOUT,
            };
            Ok((context, timeout))
        });
        promise(env, async move {
            let (context, timeout) = args?;
            let tx = c
                .transactions()
                .create_with_timeout(context, timeout)
                .await?;
            to_number("tx", tx)
        })
    }

    /// Adds `entries` as one batch for `partition` to transaction `tx` (the bounds of
    /// `journal.append`; at most 3 MiB and 65 536 entries per transaction); nothing of it is
    /// readable before the commit. Resolves to the number of entries the transaction holds.
    #[napi(ts_args_type = "tx: number, partition: number, entries: Array<Buffer>")]
    pub fn append<'env>(
        &self,
        env: &'env Env,
        tx: Unknown<'env>,
        partition: Unknown<'env>,
        entries: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::uint("tx", tx)?,
                args::partition("partition", partition)?,
                args::buffers("entries", entries)?,
            ))
        });
        promise(env, async move {
            let (tx, partition, entries) = args?;
            let held = c.transactions().append(tx, partition, entries).await?;
            to_number("entries", held)
        })
    }

    /// Commits `tx`: resolves once every entry is visible to readers at every level, all at
    /// once, in each partition in the order appended. A retry after a lost reply applies once.
    #[napi(ts_args_type = "tx: number", ts_return_type = "Promise<void>")]
    pub fn commit<'env>(
        &self,
        env: &'env Env,
        tx: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        let tx = args::uint("tx", tx);
        promise(env, async move { c.transactions().commit(tx?).await })
    }

    /// Aborts `tx`: nothing of it will ever be visible. False when it had already ended
    /// (aborted or expired); a transaction whose commit is decided cannot be aborted.
    #[napi(ts_args_type = "tx: number")]
    pub fn abort<'env>(
        &self,
        env: &'env Env,
        tx: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let tx = args::uint("tx", tx);
        promise(env, async move { c.transactions().abort(tx?).await })
    }

    /// The transactions not yet ended (open, or committing), oldest first.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn opening<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<TxnInfo>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let list = c.transactions().opening(level?).await?;
            list.into_iter().map(txn_info).collect::<R<Vec<_>>>()
        })
    }
}
