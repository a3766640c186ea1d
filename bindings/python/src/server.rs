//! `_native.Server`: an embedded node (`journalkeeper::server::Server`) started from a dict of
//! the TOML keys or from TOML text / a TOML file.
//!
//! Owns: reading the dict into a `ServerConfig` (the same keys as the TOML format; unknown keys
//! are an `InvalidArgumentError`), and the Python state machines it hosts (`state_machine.rs`). Never does: validation — `Server::start` validates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use journalkeeper::api::{Error, ErrorKind};
use journalkeeper::server::{Server, ServerConfig, ServerRole, Standing};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{ServerStatusDict, ranged};
use crate::errors::{invalid, to_py_err};
use crate::events::{PyEvents, Source};
use crate::process_bound::ProcessBound;
use crate::runtime::block_on;
use crate::state_machine::PyStateMachine;

/// A running node. `close()` shuts it down cleanly (idempotent).
#[pyclass(frozen, name = "Server", module = "journalkeeper._native")]
pub struct PyServer {
    /// `None` once closed; the node runs in the process that made it.
    server: ProcessBound<Mutex<Option<Server>>>,
    node_id: u64,
    address: String,
}

/// Starts the node hosting `machines` (name → Python object, see `state_machine.rs`).
fn start(
    py: Python<'_>,
    config: ServerConfig,
    machines: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyServer> {
    let mut builder = Server::builder(config);
    if let Some(machines) = machines {
        for (name, object) in machines.iter() {
            let name: String = name.extract()?;
            for method in ["apply", "query", "snapshot", "restore"] {
                if !object.hasattr(method)? {
                    return Err(invalid(format!(
                        "state machine {name:?} has no {method}() method"
                    )));
                }
            }
            let machine = PyStateMachine::new(name.clone(), object.unbind());
            builder = builder.state_machine_boxed(name, Box::new(machine));
        }
    }
    let server = block_on(py, builder.start())?.map_err(to_py_err)?;
    Ok(PyServer {
        node_id: server.node_id(),
        address: server.local_addr().to_string(),
        server: ProcessBound::new(Mutex::new(Some(server))),
    })
}

fn closed(node_id: u64) -> Error {
    Error::new(ErrorKind::Closed, format!("server {node_id} is closed"))
}

fn addr(what: &str, text: &str) -> PyResult<SocketAddr> {
    text.parse()
        .map_err(|e| invalid(format!("{what} {text:?} is not an ip:port address: {e}")))
}

/// The TOML format's keys, from a dict.
fn config_from_dict(config: &Bound<'_, PyDict>) -> PyResult<ServerConfig> {
    let required = |key: &str| {
        config
            .get_item(key)?
            .ok_or_else(|| invalid(format!("server configuration: {key} is required")))
    };
    let node_id = ranged("node_id", required("node_id")?.extract()?)?;
    let listen = addr("listen", &required("listen")?.extract::<String>()?)?;
    let cluster_id = ranged("cluster_id", required("cluster_id")?.extract()?)?;
    let data_dir: PathBuf = required("data_dir")?.extract()?;
    let mut cfg = ServerConfig::new(node_id, listen, cluster_id, data_dir);
    let mut join = false;
    for (key, value) in config.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "node_id" | "listen" | "cluster_id" | "data_dir" => {}
            "join" => join = value.extract()?,
            "role" => {
                let role: String = value.extract()?;
                cfg.role = match role.as_str() {
                    "voter" => ServerRole::Voter,
                    "observer" => ServerRole::Observer,
                    _ => {
                        return Err(invalid(format!(
                            "role {role:?}: expected \"voter\" or \"observer\""
                        )));
                    }
                };
            }
            "parents" => {
                let parents: Vec<String> = value.extract()?;
                cfg.parents = parents
                    .iter()
                    .map(|a| addr("parents: address", a))
                    .collect::<PyResult<_>>()?;
            }
            "peers" => {
                let peers: BTreeMap<i128, String> = value.extract()?;
                cfg.peers = peers
                    .into_iter()
                    .map(|(id, a)| Ok((ranged("peers: node id", id)?, addr("peers: address", &a)?)))
                    .collect::<PyResult<_>>()?;
            }
            "partitions" => {
                let partitions: Vec<i128> = value.extract()?;
                cfg.partitions = partitions
                    .into_iter()
                    .map(|p| ranged("partitions: partition", p))
                    .collect::<PyResult<_>>()?;
            }
            "election_timeout_ms" => cfg.election_timeout_ms = value.extract()?,
            "heartbeat_interval_ms" => cfg.heartbeat_interval_ms = value.extract()?,
            "tick_ms" => cfg.tick_ms = value.extract()?,
            "lease_reads" => cfg.lease_reads = value.extract()?,
            "snapshot_interval" => cfg.snapshot_interval = value.extract()?,
            "snapshot_retained_entries" => cfg.snapshot_retained_entries = value.extract()?,
            "max_segment_bytes" => cfg.max_segment_bytes = value.extract()?,
            "max_pending_requests" => cfg.max_pending_requests = value.extract()?,
            other => {
                return Err(invalid(format!(
                    "server configuration: unknown key {other:?}"
                )));
            }
        }
    }
    if join {
        // `peers` names the members to join through; this node is added to them.
        let members = std::mem::take(&mut cfg.peers);
        cfg = cfg.joining(members);
    }
    Ok(cfg)
}

impl PyServer {
    /// The node's slot (`None` once closed); `ClosedError` in a forked child.
    fn node(&self) -> PyResult<std::sync::MutexGuard<'_, Option<Server>>> {
        let node = self.server.get("Server")?;
        Ok(node.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[pymethods]
impl PyServer {
    /// Starts a node from a dict of the TOML keys (blocks until it listens), hosting
    /// `state_machines` (name → object with apply/query/snapshot/restore).
    #[staticmethod]
    #[pyo3(signature = (config, state_machines=None))]
    fn start(
        py: Python<'_>,
        config: &Bound<'_, PyDict>,
        state_machines: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyServer> {
        start(py, config_from_dict(config)?, state_machines)
    }

    /// Starts a node from TOML text.
    #[staticmethod]
    #[pyo3(signature = (text, state_machines=None))]
    fn from_toml(
        py: Python<'_>,
        text: &str,
        state_machines: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyServer> {
        let config = ServerConfig::from_toml_str(text).map_err(to_py_err)?;
        start(py, config, state_machines)
    }

    /// Starts a node from a TOML file.
    #[staticmethod]
    #[pyo3(signature = (path, state_machines=None))]
    fn from_toml_file(
        py: Python<'_>,
        path: PathBuf,
        state_machines: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyServer> {
        let config = ServerConfig::from_toml_file(path).map_err(to_py_err)?;
        start(py, config, state_machines)
    }

    #[getter]
    fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The address peers and clients reach this node at (`"ip:port"`).
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// The node's latest status; `ClosedError` after `close()`.
    fn status(&self) -> PyResult<ServerStatusDict> {
        let guard = self.node()?;
        match guard.as_ref() {
            Some(s) => Ok(s.status().into()),
            None => Err(to_py_err(closed(self.node_id))),
        }
    }

    /// This node's events (`Server::events`): its current state first, then each change;
    /// the stream ends (`ClosedError`, and it is closed) when the server stops.
    #[pyo3(signature = (state_machines=false))]
    fn events(&self, state_machines: bool) -> PyResult<PyEvents> {
        let guard = self.node()?;
        let options = journalkeeper::client::EventOptions { state_machines };
        match guard.as_ref() {
            Some(s) => Ok(PyEvents::new(Source::Server {
                node_id: self.node_id,
                events: s.events_with(options),
            })),
            None => Err(to_py_err(closed(self.node_id))),
        }
    }

    /// Waits (GIL released) until a committed configuration no longer holds this node, at most
    /// `timeout` seconds (`None`: no bound; Ctrl-C interrupts): `TimeoutError` then,
    /// `ClosedError` when the server is closed first. Polls the status every 10 ms rather than
    /// awaiting `Server::removed`, which would hold the lock `status()` and `close()` take.
    #[pyo3(signature = (timeout=None))]
    fn wait_removed(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let node = self.server.get("Server")?;
        let timeout = timeout
            .map(|t| crate::client::seconds("timeout", t))
            .transpose()?;
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let node_id = self.node_id;
        let poll = async {
            loop {
                let standing = {
                    let guard = node.lock().unwrap_or_else(|e| e.into_inner());
                    guard.as_ref().map(|s| s.status().standing)
                };
                match standing {
                    None => return Err(closed(node_id)),
                    Some(Standing::Removed) => return Ok(()),
                    Some(_) => {}
                }
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("server {node_id} was not removed within {timeout:?}"),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        block_on(py, poll)?.map_err(to_py_err)
    }

    /// Stops the node cleanly (makes the log durable, releases the port). Idempotent; a no-op
    /// in a forked child (the node runs in the parent).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(node) = self.server.local() else {
            return Ok(());
        };
        let server = node.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(server) = server {
            block_on(py, server.shutdown())?;
        }
        Ok(())
    }

    /// Also true in a forked child.
    #[getter]
    fn is_closed(&self) -> bool {
        self.server
            .local()
            .is_none_or(|node| node.lock().unwrap_or_else(|e| e.into_inner()).is_none())
    }

    fn __repr__(&self) -> String {
        // Python's spelling: a quoted str (`'…'`, as `repr` quotes it) and `True`/`False`.
        format!(
            "Server(node_id={}, address='{}', closed={})",
            self.node_id,
            self.address,
            if self.is_closed() { "True" } else { "False" }
        )
    }
}
