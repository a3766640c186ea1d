//! `_native.Client` (journal, KV and admin calls), `_native.Watch`, and the records they
//! return (`JournalEntry`, `WatchEvent`).
//!
//! Every call takes `aio`: `False` blocks with the GIL released and returns the value; `True`
//! returns an `asyncio.Future` of the running loop (see `runtime.rs`). The pure-Python layer
//! (`journalkeeper/client.py`) gives them their public names and signatures.
//! Never does: checks the core makes itself, retries, or caching.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind, JournalEntry};
use journalkeeper::client::protocol::MAX_ADMIN_TIMEOUT_MS;
use journalkeeper::client::{
    Client, ClientConfig, DEFAULT_ADMIN_TIMEOUT, Member, MemberRole, WatchStream,
};
use journalkeeper::state::watch::{KvEvent, WatchFilter};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::convert::{
    ConfigurationDict, NodeSnapshotsDict, NodeStatusDict, bytes_arg, opt_bytes_arg, ranged,
    response_config,
};
use crate::errors::invalid;
use crate::events::{PyEvents, Source};
use crate::process_bound::ProcessBound;
use crate::runtime::call;

/// Seconds (a Python float) as a `Duration`; `InvalidArgumentError` naming `what` otherwise.
pub fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid(format!(
            "{what} {value} is not a non-negative number of seconds"
        ))
    })
}

/// The bound of one admin change: `None` is the core's default (60 s); more than
/// `MAX_ADMIN_TIMEOUT_MS` is an `InvalidArgumentError` with the server's message, raised before
/// the core client adds it to a deadline (`Admin::with_timeout` does not check its bound, and
/// an `Instant` overflow would panic).
fn admin_timeout(timeout: Option<f64>) -> PyResult<Duration> {
    let Some(t) = timeout else {
        return Ok(DEFAULT_ADMIN_TIMEOUT);
    };
    let d = seconds("timeout", t)?;
    if d > Duration::from_millis(MAX_ADMIN_TIMEOUT_MS) {
        return Err(invalid(format!(
            "timeout_ms {} exceeds {MAX_ADMIN_TIMEOUT_MS}",
            d.as_millis()
        )));
    }
    Ok(d)
}

/// `fut`, failing with `Timeout` after `timeout` (for a core call the core does not bound by
/// its admin timeout itself).
async fn within<T>(
    timeout: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("{what} did not complete within {timeout:?}"),
            ))
        })
}

/// Connects to the cluster (`Client::connect`) with the given overrides of the defaults.
#[pyfunction]
#[pyo3(signature = (addrs, cluster_id, request_timeout=None, attempt_timeout=None, max_attempts=None, aio=false))]
pub fn connect(
    py: Python<'_>,
    addrs: Vec<String>,
    cluster_id: i128,
    request_timeout: Option<f64>,
    attempt_timeout: Option<f64>,
    max_attempts: Option<i128>,
    aio: bool,
) -> PyResult<Py<PyAny>> {
    let mut config = ClientConfig::new(ranged("cluster_id", cluster_id)?);
    if let Some(t) = request_timeout {
        config.set_request_timeout(seconds("request_timeout", t)?);
    }
    if let Some(t) = attempt_timeout {
        config.attempt_timeout = seconds("attempt_timeout", t)?;
    }
    if let Some(n) = max_attempts {
        config.max_attempts = ranged::<u32>("max_attempts", n)?;
    }
    call(py, aio, async move {
        let client = Client::connect(addrs, config).await?;
        Ok(PyClient {
            client: ProcessBound::new(client),
        })
    })
}

/// A connected cluster client (`journalkeeper::client::Client`).
#[pyclass(frozen, name = "Client", module = "journalkeeper._native")]
pub struct PyClient {
    /// Its connections live in the runtime of the process that made it.
    client: ProcessBound<Client>,
}

/// Garbage collection flushes too (in the background: a finalizer must not block).
impl Drop for PyClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.local()
            && !client.is_closed()
        {
            let _ = shutdown_in_background(client);
        }
    }
}

/// `Client::close` at once when nothing is pending, else `Client::shutdown` on the runtime.
fn shutdown_in_background(client: &Client) -> PyResult<()> {
    if client.one_way_pending() == 0 {
        client.close();
        return Ok(());
    }
    let c = client.clone();
    crate::runtime::runtime()?.spawn(async move {
        let _ = c.shutdown().await;
    });
    Ok(())
}

impl PyClient {
    /// A clone of the core client, after checking we are in the process that made it.
    fn core(&self) -> PyResult<Client> {
        Ok(self.client.get("Client")?.clone())
    }
}

#[pymethods]
impl PyClient {
    #[pyo3(signature = (partition, entries, response, aio=false))]
    fn append(
        &self,
        py: Python<'_>,
        partition: i128,
        entries: &Bound<'_, PyAny>,
        response: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let partition = ranged("partition", partition)?;
        let response = response_config(response)?;
        let entries = entries
            .try_iter()?
            .enumerate()
            .map(|(i, e)| bytes_arg(&format!("entries[{i}]"), &e?))
            .collect::<PyResult<Vec<_>>>()?;
        let c = self.core()?;
        call(py, aio, async move {
            c.journal().append(partition, entries, response).await
        })
    }

    #[pyo3(signature = (partition, index, max_entries, consistency, aio=false))]
    fn get(
        &self,
        py: Python<'_>,
        partition: i128,
        index: i128,
        max_entries: i128,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let partition = ranged("partition", partition)?;
        let index = ranged("index", index)?;
        let max_entries = ranged("max", max_entries)?;
        let consistency = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            let entries = c
                .journal()
                .get(partition, index, max_entries, consistency)
                .await?;
            Ok(entries.into_iter().map(PyJournalEntry).collect::<Vec<_>>())
        })
    }

    #[pyo3(signature = (consistency, aio=false))]
    fn min_indices(&self, py: Python<'_>, consistency: &str, aio: bool) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.journal().with_consistency(level).min_indices().await
        })
    }

    #[pyo3(signature = (consistency, aio=false))]
    fn max_indices(&self, py: Python<'_>, consistency: &str, aio: bool) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.journal().with_consistency(level).max_indices().await
        })
    }

    #[pyo3(signature = (consistency, aio=false))]
    fn list_partitions(&self, py: Python<'_>, consistency: &str, aio: bool) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            let set = c
                .journal()
                .with_consistency(level)
                .list_partitions()
                .await?;
            Ok(set.into_iter().collect::<Vec<u16>>())
        })
    }

    #[pyo3(signature = (partition, timestamp_ms, consistency, aio=false))]
    fn query_index(
        &self,
        py: Python<'_>,
        partition: i128,
        timestamp_ms: i128,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let partition = ranged("partition", partition)?;
        let timestamp_ms = ranged("timestamp_ms", timestamp_ms)?;
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.journal()
                .with_consistency(level)
                .query_index(partition, timestamp_ms)
                .await
        })
    }

    #[pyo3(signature = (partitions, aio=false))]
    fn scale_partitions(
        &self,
        py: Python<'_>,
        partitions: Vec<i128>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let partitions = partitions
            .into_iter()
            .map(|p| ranged::<u16>("partition", p))
            .collect::<PyResult<Vec<_>>>()?;
        let c = self.core()?;
        call(py, aio, async move {
            c.journal().scale_partitions(&partitions).await
        })
    }

    /// `client.state_machine(name).update_batch(commands, response)`: a list (one per command)
    /// of bytes or the exception instance for a refused one; `None` below REPLICATION.
    #[pyo3(signature = (name, commands, response, aio=false))]
    fn sm_update_batch(
        &self,
        py: Python<'_>,
        name: String,
        commands: &Bound<'_, PyAny>,
        response: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let response = response_config(response)?;
        let commands = commands
            .try_iter()?
            .enumerate()
            .map(|(i, e)| bytes_arg(&format!("commands[{i}]"), &e?))
            .collect::<PyResult<Vec<_>>>()?;
        let c = self.core()?;
        call(py, aio, async move {
            let results = c
                .state_machine(&name)
                .update_batch(commands, response)
                .await?;
            Ok(results.map(|rs| rs.into_iter().map(BatchResult).collect::<Vec<_>>()))
        })
    }

    /// `client.state_machine(name).update(command, response)`: the result, `None` below
    /// REPLICATION; a refusal raises `RejectedError`.
    #[pyo3(signature = (name, command, response, aio=false))]
    fn sm_update(
        &self,
        py: Python<'_>,
        name: String,
        command: &Bound<'_, PyAny>,
        response: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let response = response_config(response)?;
        let command = bytes_arg("command", command)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.state_machine(&name)
                .update_with(command, response)
                .await
                .map(Bytes::option)
        })
    }

    #[pyo3(signature = (name, query, consistency, aio=false))]
    fn sm_query(
        &self,
        py: Python<'_>,
        name: String,
        query: &Bound<'_, PyAny>,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let consistency = crate::convert::consistency(consistency)?;
        let query = bytes_arg("query", query)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.state_machine(&name)
                .query(query, consistency)
                .await
                .map(Bytes)
        })
    }

    #[pyo3(signature = (key, value, aio=false))]
    fn kv_set(
        &self,
        py: Python<'_>,
        key: String,
        value: &Bound<'_, PyAny>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let value = bytes_arg("value", value)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.kv().set(&key, value).await.map(Bytes::option)
        })
    }

    #[pyo3(signature = (key, consistency, aio=false))]
    fn kv_get(
        &self,
        py: Python<'_>,
        key: String,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.kv()
                .with_consistency(level)
                .get(&key)
                .await
                .map(Bytes::option)
        })
    }

    #[pyo3(signature = (key, consistency, aio=false))]
    fn kv_exists(
        &self,
        py: Python<'_>,
        key: String,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.kv().with_consistency(level).exists(&key).await
        })
    }

    #[pyo3(signature = (key, aio=false))]
    fn kv_remove(&self, py: Python<'_>, key: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.kv().remove(&key).await.map(Bytes::option)
        })
    }

    #[pyo3(signature = (prefix, consistency, aio=false))]
    fn kv_list(
        &self,
        py: Python<'_>,
        prefix: String,
        consistency: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let level = crate::convert::consistency(consistency)?;
        let c = self.core()?;
        call(py, aio, async move {
            let entries = c.kv().with_consistency(level).list(&prefix).await?;
            Ok(entries
                .into_iter()
                .map(|(k, v)| (k, Bytes(v)))
                .collect::<Vec<_>>())
        })
    }

    /// The value of `key` at log index `index` (a read at an index).
    #[pyo3(signature = (key, index, aio=false))]
    fn kv_get_at(&self, py: Python<'_>, key: String, index: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.kv().get_at(&key, index).await.map(Bytes::option)
        })
    }

    /// The keys under `prefix` at log index `index`.
    #[pyo3(signature = (prefix, index, aio=false))]
    fn kv_list_at(
        &self,
        py: Python<'_>,
        prefix: String,
        index: u64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let entries = c.kv().list_at(&prefix, index).await?;
            Ok(entries
                .into_iter()
                .map(|(k, v)| (k, Bytes(v)))
                .collect::<Vec<_>>())
        })
    }

    /// Returns `(swapped, current)`.
    #[pyo3(signature = (key, expect, new, aio=false))]
    fn kv_compare_and_set(
        &self,
        py: Python<'_>,
        key: String,
        expect: Option<&Bound<'_, PyAny>>,
        new: Option<&Bound<'_, PyAny>>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let expect = opt_bytes_arg("expect", expect)?;
        let new = opt_bytes_arg("new", new)?;
        let c = self.core()?;
        call(py, aio, async move {
            let r = c.kv().compare_and_set(&key, expect, new).await?;
            Ok((r.swapped, Bytes::option(r.current)))
        })
    }

    /// Opens a watch on exactly one of `key` / `prefix` (neither: every key).
    #[pyo3(signature = (key, prefix, from_index, aio=false))]
    fn kv_watch(
        &self,
        py: Python<'_>,
        key: Option<String>,
        prefix: Option<String>,
        from_index: i128,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let filter = match (key, prefix) {
            (Some(_), Some(_)) => return Err(invalid("watch takes key or prefix, not both")),
            (Some(k), None) => WatchFilter::Key(k),
            (None, p) => WatchFilter::Prefix(p.unwrap_or_default()),
        };
        let from_index = ranged("from_index", from_index)?;
        let c = self.core()?;
        call(py, aio, async move {
            let stream = c.kv().watch(filter, from_index).await?;
            Ok(PyWatch::new(stream))
        })
    }

    #[pyo3(signature = (node, aio=false))]
    fn admin_status(&self, py: Python<'_>, node: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.admin().status(&node).await.map(NodeStatusDict::from)
        })
    }

    #[pyo3(signature = (aio=false))]
    fn admin_cluster_configuration(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.admin()
                .cluster_configuration()
                .await
                .map(ConfigurationDict::from)
        })
    }

    #[pyo3(signature = (old, new, timeout=None, aio=false))]
    fn admin_update_voters(
        &self,
        py: Python<'_>,
        old: Vec<i128>,
        new: Vec<(i128, Option<String>)>,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let old = old
            .into_iter()
            .map(|id| ranged::<u64>("old: node id", id))
            .collect::<PyResult<Vec<_>>>()?;
        let new = new
            .into_iter()
            .map(|(id, addr)| {
                Ok(Member {
                    node_id: ranged("new: node id", id)?,
                    addr: addr.unwrap_or_default(),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin()
                .with_timeout(timeout)
                .update_voters(&old, &new)
                .await
        })
    }

    #[pyo3(signature = (node_id, addr, timeout=None, aio=false))]
    fn admin_add_voter(
        &self,
        py: Python<'_>,
        node_id: i128,
        addr: String,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let node_id = ranged("node_id", node_id)?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin()
                .with_timeout(timeout)
                .add_voter(node_id, &addr)
                .await
        })
    }

    #[pyo3(signature = (node_id, timeout=None, aio=false))]
    fn admin_remove_voter(
        &self,
        py: Python<'_>,
        node_id: i128,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let node_id = ranged("node_id", node_id)?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin().with_timeout(timeout).remove_voter(node_id).await
        })
    }

    #[pyo3(signature = (node_id, role, timeout=None, aio=false))]
    fn admin_convert_role(
        &self,
        py: Python<'_>,
        node_id: i128,
        role: String,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let node_id = ranged("node_id", node_id)?;
        let role: MemberRole = role.parse().map_err(crate::errors::to_py_err)?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin()
                .with_timeout(timeout)
                .convert_role(node_id, role)
                .await
        })
    }

    #[pyo3(signature = (node_id, timeout=None, aio=false))]
    fn admin_transfer_leader(
        &self,
        py: Python<'_>,
        node_id: i128,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let node_id = ranged("node_id", node_id)?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin()
                .with_timeout(timeout)
                .transfer_leader(node_id)
                .await
        })
    }

    /// `None` clears the preferred leader.
    #[pyo3(signature = (node_id, aio=false))]
    fn admin_set_preferred_leader(
        &self,
        py: Python<'_>,
        node_id: Option<i128>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let node_id = node_id.map(|id| ranged("node_id", id)).transpose()?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin().set_preferred_leader(node_id).await
        })
    }

    /// `Admin::take_snapshot`: the index every node snapshots at, once a majority saved it.
    #[pyo3(signature = (timeout=None, aio=false))]
    fn admin_take_snapshot(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.admin().with_timeout(timeout).take_snapshot().await
        })
    }

    /// `Admin::snapshots`: per member, its retained snapshots or its error.
    #[pyo3(signature = (aio=false))]
    fn admin_snapshots(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let nodes = c.admin().snapshots().await?;
            Ok(nodes
                .into_iter()
                .map(NodeSnapshotsDict::from)
                .collect::<Vec<_>>())
        })
    }

    /// `Admin::recover_snapshot`, bounded by `timeout` (the core's call is a plain write).
    #[pyo3(signature = (index, timeout=None, aio=false))]
    fn admin_recover_snapshot(
        &self,
        py: Python<'_>,
        index: i128,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let index = ranged("index", index)?;
        let timeout = admin_timeout(timeout)?;
        let c = self.core()?;
        call(py, aio, async move {
            let admin = c.admin().with_timeout(timeout);
            within(timeout, "recover_snapshot", admin.recover_snapshot(index)).await
        })
    }

    /// `Client::events_with`: subscribes (on any node) and returns the stream; with
    /// `state_machines`, the user state machines' `StateChanged` events too.
    #[pyo3(signature = (state_machines=false, aio=false))]
    fn events(&self, py: Python<'_>, state_machines: bool, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        let options = journalkeeper::client::EventOptions { state_machines };
        call(py, aio, async move {
            let stream = c.events_with(options).await?;
            Ok(PyEvents::new(Source::Client(stream)))
        })
    }

    /// The coordination recipes (`Client::coord`), sharing this client's connections.
    fn coord(&self) -> PyResult<crate::coord::PyCoord> {
        Ok(crate::coord::PyCoord::new(self.core()?))
    }

    /// Journal transactions (`Client::transactions`), sharing this client's connections.
    fn transactions(&self) -> PyResult<crate::transactions::PyTransactions> {
        Ok(crate::transactions::PyTransactions::new(self.core()?))
    }

    /// The built-in SQL database (`client.sql()`).
    fn sql(&self) -> PyResult<crate::sql::PySql> {
        Ok(crate::sql::PySql::new(self.core()?))
    }

    /// `Client::sync`: the leader's applied index, after which SEQUENTIAL reads see every
    /// write acknowledged before the call.
    #[pyo3(signature = (aio=false))]
    fn sync(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.sync().await })
    }

    /// `Client::flush`: waits until every ONE_WAY append accepted so far is stored, at most
    /// `timeout` seconds (`None`: the client's 5 s).
    #[pyo3(signature = (timeout=None, aio=false))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        let timeout = match timeout {
            Some(t) => seconds("timeout", t)?,
            None => ClientConfig::new(1).one_way_flush_timeout,
        };
        let c = self.core()?;
        call(py, aio, async move { c.flush(timeout).await })
    }

    /// `Client::shutdown`: flushes the accepted ONE_WAY appends (at most 5 s), then closes
    /// every connection; calls in flight and later calls fail with `ClosedError`. Never
    /// raises for the flush (appends it could not store are logged and given up). Blocks with
    /// the GIL released (`aio`: an awaitable). Idempotent; a no-op in a forked child (the
    /// connections are the parent's).
    #[pyo3(signature = (aio=false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let Some(client) = self.client.local() else {
            return call(py, aio, async { Ok(()) });
        };
        let c = client.clone();
        let closing = call(py, aio, async move {
            let _ = c.shutdown().await;
            Ok(())
        });
        if closing.is_err() {
            // Interrupted (Ctrl-C) or no runtime: close at once rather than not at all.
            client.close();
        }
        closing
    }

    /// Closes without waiting: at once when no ONE_WAY append is pending, else the flush (at
    /// most 5 s) and the close run in the background.
    fn close_nowait(&self) -> PyResult<()> {
        match self.client.local() {
            Some(client) => shutdown_in_background(client),
            None => Ok(()),
        }
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.client.local().is_none_or(Client::is_closed)
    }

    #[getter]
    fn client_id(&self) -> PyResult<u64> {
        Ok(self.client.get("Client")?.client_id())
    }

    #[getter]
    fn leader(&self) -> PyResult<Option<String>> {
        Ok(self.client.get("Client")?.leader())
    }

    /// The server addresses the client knows (given, then learned from leader hints).
    #[getter]
    fn servers(&self) -> PyResult<Vec<String>> {
        Ok(self.client.get("Client")?.servers())
    }

    /// In a forked child the parent's client shows no servers (it is not this process's).
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let servers = self.client.local().map(Client::servers).unwrap_or_default();
        Ok(format!(
            "Client(servers={}, closed={})",
            PyList::new(py, servers)?.repr()?,
            if self.is_closed() { "True" } else { "False" }
        ))
    }
}

/// Bytes that convert to Python `bytes`.
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Bytes {
    fn option(v: Option<Vec<u8>>) -> Option<Bytes> {
        v.map(Bytes)
    }
}

impl<'py> IntoPyObject<'py> for Bytes {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

/// One result of a state machine batch: `bytes`, or the exception (not raised) for a refusal.
pub(crate) struct BatchResult(Result<Vec<u8>, Error>);

impl<'py> IntoPyObject<'py> for BatchResult {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(match self.0 {
            Ok(b) => PyBytes::new(py, &b).into_any(),
            Err(e) => crate::errors::to_py_err(e)
                .into_value(py)
                .into_bound(py)
                .into_any(),
        })
    }
}

/// One journal entry (`journalkeeper::api::JournalEntry`); immutable.
#[pyclass(frozen, eq, name = "JournalEntry", module = "journalkeeper")]
#[derive(PartialEq)]
pub struct PyJournalEntry(JournalEntry);

#[pymethods]
impl PyJournalEntry {
    #[getter]
    fn partition(&self) -> u16 {
        self.0.partition
    }
    #[getter]
    fn index(&self) -> u64 {
        self.0.index
    }
    #[getter]
    fn batch_size(&self) -> u16 {
        self.0.batch_size
    }
    #[getter]
    fn offset(&self) -> u16 {
        self.0.offset
    }
    #[getter]
    fn term(&self) -> u64 {
        self.0.term
    }
    #[getter]
    fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms
    }
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.payload)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let e = &self.0;
        Ok(format!(
            "JournalEntry(partition={}, index={}, batch_size={}, offset={}, term={}, \
             timestamp_ms={}, payload={})",
            e.partition,
            e.index,
            e.batch_size,
            e.offset,
            e.term,
            e.timestamp_ms,
            PyBytes::new(py, &e.payload).repr()?
        ))
    }
}

/// One KV change (`journalkeeper::state::watch::KvEvent`); immutable.
#[pyclass(frozen, eq, name = "WatchEvent", module = "journalkeeper")]
#[derive(PartialEq)]
pub struct PyWatchEvent(KvEvent);

#[pymethods]
impl PyWatchEvent {
    /// Log index of the entry that made the change.
    #[getter]
    fn index(&self) -> u64 {
        self.0.index
    }
    #[getter]
    fn key(&self) -> &str {
        &self.0.key
    }
    /// `None` when the key did not exist before.
    #[getter]
    fn old_value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.old_value.as_deref().map(|v| PyBytes::new(py, v))
    }
    /// `None` when the change removed the key.
    #[getter]
    fn new_value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.new_value.as_deref().map(|v| PyBytes::new(py, v))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |v: Option<&[u8]>| -> PyResult<String> {
            match v {
                Some(v) => Ok(PyBytes::new(py, v).repr()?.to_string()),
                None => Ok("None".into()),
            }
        };
        Ok(format!(
            "WatchEvent(index={}, key={}, old_value={}, new_value={})",
            self.0.index,
            PyString::new(py, &self.0.key).repr()?,
            repr(self.0.old_value.as_deref())?,
            repr(self.0.new_value.as_deref())?
        ))
    }
}

/// A KV watch (`journalkeeper::client::WatchStream`). `next` may be called from several
/// threads / tasks; they take events in turn. `close` ends it (pending `next`s fail with
/// `ClosedError`) and unwatches on the server.
#[pyclass(frozen, name = "Watch", module = "journalkeeper._native")]
pub struct PyWatch {
    inner: ProcessBound<WatchInner>,
}

struct WatchInner {
    stream: Arc<tokio::sync::Mutex<Option<WatchStream>>>,
    closed: tokio::sync::watch::Sender<bool>,
}

impl PyWatch {
    fn new(stream: WatchStream) -> Self {
        PyWatch {
            inner: ProcessBound::new(WatchInner {
                stream: Arc::new(tokio::sync::Mutex::new(Some(stream))),
                closed: tokio::sync::watch::channel(false).0,
            }),
        }
    }
}

fn watch_closed() -> Error {
    Error::new(ErrorKind::Closed, "the watch is closed")
}

#[pymethods]
impl PyWatch {
    /// The next event; with `timeout` (seconds) fails with `TimeoutError` when none arrives
    /// in time (the watch stays usable).
    #[pyo3(signature = (timeout=None, aio=false))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        let inner = self.inner.get("Watch")?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let stream = inner.stream.clone();
        let mut closed = inner.closed.subscribe();
        call(py, aio, async move {
            let next = async {
                let mut guard = stream.lock().await;
                match guard.as_mut() {
                    Some(s) => s.next().await.map(PyWatchEvent),
                    None => Err(watch_closed()),
                }
            };
            let next = async {
                match timeout {
                    None => next.await,
                    Some(d) => tokio::time::timeout(d, next).await.unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!("no watch event within {d:?}"),
                        ))
                    }),
                }
            };
            let closed = async {
                let _ = closed.wait_for(|c| *c).await;
            };
            let outcome = tokio::select! {
                r = next => Some(r),
                () = closed => None,
            };
            match outcome {
                Some(r) => r,
                None => {
                    // Unwatch on the server now rather than when Python frees the object.
                    stream.lock().await.take();
                    Err(watch_closed())
                }
            }
        })
    }

    /// The lowest log index not yet received (where a resubscription would start).
    #[getter]
    fn next_index(&self) -> Option<u64> {
        self.inner
            .local()?
            .stream
            .try_lock()
            .ok()?
            .as_ref()
            .map(|s| s.next_index())
    }

    /// Ends the watch. Idempotent; a no-op in a forked child (the watch is the parent's).
    fn close(&self) {
        let Some(inner) = self.inner.local() else {
            return;
        };
        inner.closed.send_replace(true);
        if let Ok(mut guard) = inner.stream.try_lock() {
            guard.take();
        }
    }

    /// Also true in a forked child.
    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.local().is_none_or(|i| *i.closed.borrow())
    }
}
