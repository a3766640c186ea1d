//! `_native.Transactions`: the journal transactions of a client (`Client::transactions()`) —
//! create with a context, append batches, commit, abort, the transactions not yet ended (as
//! dicts; `journalkeeper/types.py` has their `TypedDict`).
//!
//! Every call takes `aio` as in `client.rs`. Never does: checks the core makes itself (bounds,
//! the timeout's range, whether a transaction is open).

use std::collections::BTreeMap;

use journalkeeper::client::protocol::TxnInfo;
use journalkeeper::client::{Client, DEFAULT_TRANSACTION_TIMEOUT};
use journalkeeper::state::txn::TxnPhase;
use pyo3::prelude::*;

use crate::client::seconds;
use crate::convert::{bytes_arg, consistency, ranged};
use crate::process_bound::ProcessBound;
use crate::runtime::call;

/// One element of `transactions.opening()`.
#[derive(IntoPyObject)]
struct TxnInfoDict {
    tx: u64,
    context: BTreeMap<String, String>,
    /// `"OPEN"` or `"COMMITTING"` (as the CLI prints it).
    phase: &'static str,
    entries: u64,
    bytes: u64,
    partitions: Vec<u16>,
}

impl From<TxnInfo> for TxnInfoDict {
    fn from(t: TxnInfo) -> Self {
        TxnInfoDict {
            tx: t.tx,
            context: t.context,
            phase: match t.phase {
                TxnPhase::Open => "OPEN",
                TxnPhase::Committing => "COMMITTING",
            },
            entries: t.entries,
            bytes: t.bytes,
            partitions: t.partitions.into_iter().collect(),
        }
    }
}

/// The journal transactions of one client (`journalkeeper::client::Transactions`).
#[pyclass(frozen, name = "Transactions", module = "journalkeeper._native")]
pub struct PyTransactions {
    client: ProcessBound<Client>,
}

impl PyTransactions {
    pub fn new(client: Client) -> Self {
        PyTransactions {
            client: ProcessBound::new(client),
        }
    }

    fn core(&self) -> PyResult<Client> {
        Ok(self.client.get("Client")?.clone())
    }
}

#[pymethods]
impl PyTransactions {
    /// `context` (string pairs) and the idle `timeout` in seconds (`None`: the core's 60 s).
    #[pyo3(signature = (context, timeout, aio=false))]
    fn create(
        &self,
        py: Python<'_>,
        context: BTreeMap<String, String>,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let timeout = match timeout {
            Some(t) => seconds("timeout", t)?,
            None => DEFAULT_TRANSACTION_TIMEOUT,
        };
        let c = self.core()?;
        call(py, aio, async move {
            c.transactions().create_with_timeout(context, timeout).await
        })
    }

    #[pyo3(signature = (tx, partition, entries, aio=false))]
    fn append(
        &self,
        py: Python<'_>,
        tx: u64,
        partition: i128,
        entries: &Bound<'_, PyAny>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let partition = ranged("partition", partition)?;
        let entries = entries
            .try_iter()?
            .enumerate()
            .map(|(i, e)| bytes_arg(&format!("entries[{i}]"), &e?))
            .collect::<PyResult<Vec<_>>>()?;
        let c = self.core()?;
        call(py, aio, async move {
            c.transactions().append(tx, partition, entries).await
        })
    }

    #[pyo3(signature = (tx, aio=false))]
    fn commit(&self, py: Python<'_>, tx: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.transactions().commit(tx).await })
    }

    #[pyo3(signature = (tx, aio=false))]
    fn abort(&self, py: Python<'_>, tx: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.transactions().abort(tx).await })
    }

    #[pyo3(signature = (consistency_name, aio=false))]
    fn opening(&self, py: Python<'_>, consistency_name: &str, aio: bool) -> PyResult<Py<PyAny>> {
        let level = consistency(consistency_name)?;
        let c = self.core()?;
        call(py, aio, async move {
            let list = c.transactions().opening(level).await?;
            Ok(list.into_iter().map(TxnInfoDict::from).collect::<Vec<_>>())
        })
    }
}
