//! `journalkeeper server --config FILE`: one node until SIGTERM or SIGINT, or until the cluster
//! removes it, then a clean shutdown (the log is made durable, the port released).

use std::path::PathBuf;

use journalkeeper::server::{Server, ServerConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::AnyResult;

pub async fn run(config_path: PathBuf) -> AnyResult<()> {
    let config = ServerConfig::from_toml_file(&config_path)?;
    let (node_id, data_dir, peers) = (config.node_id, config.data_dir.clone(), config.peers.len());
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = Server::start(config).await?;
    tracing::info!(
        node = node_id,
        addr = %server.local_addr(),
        data_dir = %data_dir.display(),
        voters = peers,
        config = %config_path.display(),
        "node started"
    );
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        Ok(()) = server.removed() => "removed from the cluster",
    };
    tracing::info!(node = node_id, reason = which, "shutting down");
    server.shutdown().await;
    tracing::info!(node = node_id, "stopped");
    Ok(())
}
