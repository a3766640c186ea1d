//! [`KeepAlive`]: a lease kept alive in the background — a renewal every third of its TTL,
//! sooner after a failed one — until the handle is dropped or the lease is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::cluster::Cluster;
use super::coord::{coord_write, lease_call};
use super::protocol::RequestBody;
use crate::api::{Error, ErrorKind};
use crate::state::coord::CoordCommand;

/// Whether the lease is still kept, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAliveState {
    /// Renewed; `remaining_ms` as the leader reported at the last renewal.
    Alive { remaining_ms: u64 },
    /// The lease ended (expired or revoked); nothing attached to it holds any more.
    Lost(Error),
}

/// Keeps one lease alive while it exists. Dropping it stops the renewals (the lease then runs
/// out after its TTL); [`revoke`](Self::revoke) ends it at once.
pub struct KeepAlive {
    lease: u64,
    cluster: Arc<Cluster>,
    state: watch::Receiver<KeepAliveState>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAlive")
            .field("lease", &self.lease)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KeepAlive {
    pub(super) fn spawn(cluster: Arc<Cluster>, lease: u64, ttl: Duration) -> Self {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let (tx, state) = watch::channel(KeepAliveState::Alive {
            remaining_ms: ttl_ms,
        });
        let task = tokio::spawn(renew(cluster.clone(), lease, ttl, tx));
        KeepAlive {
            lease,
            cluster,
            state,
            task,
        }
    }

    pub fn lease(&self) -> u64 {
        self.lease
    }

    /// The latest state.
    pub fn state(&self) -> KeepAliveState {
        self.state.borrow().clone()
    }

    /// Resolves with the reason once the lease is lost.
    pub async fn lost(&self) -> Error {
        let mut rx = self.state.clone();
        loop {
            if let KeepAliveState::Lost(e) = &*rx.borrow_and_update() {
                return e.clone();
            }
            if rx.changed().await.is_err() {
                return Error::new(ErrorKind::Closed, "the keep-alive stopped");
            }
        }
    }

    /// Stops the renewals and ends the lease now.
    pub async fn revoke(self) -> Result<(), Error> {
        self.task.abort();
        coord_write(&self.cluster, CoordCommand::Revoke { lease: self.lease })
            .await
            .map(|_| ())
    }
}

async fn renew(
    cluster: Arc<Cluster>,
    lease: u64,
    ttl: Duration,
    tx: watch::Sender<KeepAliveState>,
) {
    let every = (ttl / 3).max(Duration::from_millis(10));
    let retry = (ttl / 10).max(Duration::from_millis(10));
    let mut wait = every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cluster.closed() => {
                tx.send_replace(KeepAliveState::Lost(Error::new(
                    ErrorKind::Closed,
                    "the client was closed",
                )));
                return;
            }
        }
        match lease_call(&cluster, RequestBody::LeaseKeepAlive { lease }).await {
            Ok(status) => {
                tx.send_replace(KeepAliveState::Alive {
                    remaining_ms: status.remaining_ms,
                });
                wait = every;
            }
            Err(e) if matches!(e.kind, ErrorKind::LeaseExpired | ErrorKind::Closed) => {
                tracing::info!(lease, reason = %e, "lease lost");
                tx.send_replace(KeepAliveState::Lost(e));
                return;
            }
            Err(e) => {
                // No leader right now: the lease may well be alive; try again soon.
                tracing::debug!(lease, reason = %e, "keep-alive failed; retrying");
                wait = retry;
            }
        }
    }
}
