//! A node: drives the sans-IO raft core with tokio, persists through a storage writer thread,
//! applies committed entries on an apply thread, and serves the client protocol
//! ([`crate::client::protocol`]) and peer traffic on one port. See
//! `docs/architecture/server.md`.
//!
//! ```no_run
//! use journalkeeper::server::{Server, ServerConfig};
//! # async fn demo() -> Result<(), journalkeeper::api::Error> {
//! let cfg = ServerConfig::new(1, "127.0.0.1:7001".parse().unwrap(), 42, "/tmp/jk1");
//! let server = Server::start(cfg).await?; // a one-node cluster
//! println!("{:?}", server.status());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Owns: the order of effects (persist → report durability → send dependent messages; apply in
//! log order; answer reads once applied), client write acknowledgement per `ResponseConfig`,
//! read levels, watches, snapshots and compaction. Never does: consensus decisions (raft/), byte
//! layouts of files (storage/) or frames (net/).

mod apply;
mod at_index;
pub mod command;
mod compactor;
mod config;
mod driver;
pub mod events;
mod http;
mod lessor;
mod metrics;
mod observer_link;
mod proposal_batch;
mod read;
mod snapshot_data;
mod snapshot_file;
mod snapshot_receive;
mod storage;
mod txn_record;
pub mod user_machines;
mod watches;

use std::net::SocketAddr;

use crate::client::protocol::EventOptions;
use tokio::sync::{oneshot, watch};

pub use config::{ServerConfig, ServerRole};
pub use driver::{ServerStatus, Standing};

use crate::api::{Error, ErrorKind};
use crate::state::StateMachine;

/// The message type on a node's port: client protocol plus raft peer messages.
pub type PeerWire = crate::client::protocol::Wire<crate::raft::Message>;

/// A running node (embedded, in-process). Stop it with [`Server::shutdown`].
pub struct Server {
    node_id: u64,
    local_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    status: watch::Receiver<ServerStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    events: std::sync::Arc<watch::Sender<events::EventState>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

/// A server to start, with the user state machines it hosts ([`Server::builder`]).
pub struct ServerBuilder {
    config: ServerConfig,
    machines: Vec<(String, Box<dyn StateMachine>)>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("node_id", &self.config.node_id)
            .field(
                "state_machines",
                &self.machines.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ServerBuilder {
    /// Hosts `machine` under `name` (`[A-Za-z0-9_.-]{1,64}`, not starting with `jk.`). Every
    /// node of the cluster must host the same names: a node refuses to connect to a peer that
    /// hosts others, and a node that meets an update for a name it does not host stops.
    pub fn state_machine(self, name: impl Into<String>, machine: impl StateMachine) -> Self {
        self.state_machine_boxed(name, Box::new(machine))
    }

    /// [`ServerBuilder::state_machine`] for a machine already boxed (e.g. from a binding).
    pub fn state_machine_boxed(
        mut self,
        name: impl Into<String>,
        machine: Box<dyn StateMachine>,
    ) -> Self {
        self.machines.push((name.into(), machine));
        self
    }

    /// Validates the configuration and the names, opens (or recovers) the node's storage
    /// under `data_dir` — restoring every state machine, and the built-in SQL database
    /// (`jk.sql`, [`crate::client::Client::sql`]), from the latest snapshot — binds the
    /// listen address and starts the node. Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<Server, Error> {
        let ServerBuilder { config, machines } = self;
        config.validate()?;
        let mut seen = std::collections::BTreeSet::new();
        for (name, _) in &machines {
            user_machines::check_name(name)?;
            if !seen.insert(name.clone()) {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("state machine {name:?} is hosted twice"),
                ));
            }
        }
        let mut machines = machines;
        let sql = crate::state::sql::SqlMachine::new()
            .map_err(|e| Error::new(ErrorKind::Internal, format!("the SQL machine: {e}")))?;
        machines.push((crate::state::sql::SQL_MACHINE.to_string(), Box::new(sql)));
        let user = user_machines::UserMachines::new(machines, config.kv_limits.sessions);
        let node_id = config.node_id;
        let started = driver::start(config, user).await?;
        Ok(Server {
            node_id,
            local_addr: started.local_addr,
            http_addr: started.http_addr,
            status: started.status,
            stop: Some(started.stop),
            task: Some(started.task),
            events: started.events,
        })
    }
}

impl Server {
    /// A node hosting no user state machines: [`Server::builder`]`(config).start()`.
    pub async fn start(config: ServerConfig) -> Result<Server, Error> {
        Server::builder(config).start().await
    }

    /// A server to start with [`ServerBuilder::start`], after adding the user state machines
    /// it hosts.
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            machines: Vec::new(),
        }
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The address peers and clients reach this node at.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the HTTP monitoring endpoint (`ServerConfig::http_listen`), if on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The node's latest status (role, leader, term, indices, membership).
    pub fn status(&self) -> ServerStatus {
        self.status.borrow().clone()
    }

    /// Waits until `pred` holds for the status, or `timeout` passes (`Timeout`).
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        pred: impl Fn(&ServerStatus) -> bool,
    ) -> Result<ServerStatus, Error> {
        let mut rx = self.status.clone();
        let r = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
        match r {
            Ok(Ok(s)) => Ok(s.clone()),
            Ok(Err(_)) => Err(Error::new(ErrorKind::Closed, "the server stopped")),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("condition not reached within {timeout:?}"),
            )),
        }
    }

    /// This node's events, as a client subscribed to it would get them: first its current
    /// state (leader, voters, its role, every partition's bounds), then each change. The
    /// stream ends (`None`) when the server stops.
    pub fn events(&self) -> events::LocalEvents {
        self.events_with(EventOptions::default())
    }

    /// [`events`](Self::events) with `options`: with `state_machines`, also a `StateChanged`
    /// event for each hosted user state machine as this node applies to it (coalesced: the
    /// latest index, not every one).
    pub fn events_with(&self, options: EventOptions) -> events::LocalEvents {
        events::LocalEvents::new(self.events.subscribe(), options)
    }

    /// Waits until a committed configuration no longer holds this node (it then serves
    /// nothing); returns at once if it already was. `Closed` if the server stops first.
    pub async fn removed(&self) -> Result<(), Error> {
        let mut rx = self.status.clone();
        match rx.wait_for(|s| s.standing == Standing::Removed).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::new(ErrorKind::Closed, "the server stopped")),
        }
    }

    /// Stops the node cleanly: stops accepting, fails waiting requests with `Closed`, makes
    /// the log durable, stops the writer and apply threads and releases the port.
    pub async fn shutdown(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(node = self.node_id, reason = %e, "server task failed");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping without shutdown: ask the task to stop; it finishes on its own.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
