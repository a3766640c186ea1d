//! One node of a bank cluster as its own process: `bank-node server --config FILE` — the same
//! command line and TOML as `journalkeeper server`, with the bank hosted as `"bank"`. The fault
//! test (`tests/bank_under_faults.rs`) runs three of these to kill -9 and pause them.
//!
//! Runs until SIGTERM or SIGINT. A restore from a snapshot is logged ("bank restored"), so a
//! test can see that a node caught up through one.

use std::io::{Read, Write};
use std::path::PathBuf;

use journalkeeper::server::{Server, ServerConfig};
use journalkeeper::state::{ApplyContext, StateError, StateMachine};
use journalkeeper_bank_example::Bank;
use tokio::signal::unix::{SignalKind, signal};

/// The bank, with each restore logged.
#[derive(Debug, Default)]
struct LoggedBank(Bank);

impl StateMachine for LoggedBank {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        self.0.apply(ctx, command)
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        self.0.query(query)
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        self.0.snapshot(out)
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        self.0.restore(input)?;
        eprintln!("bank restored from a snapshot");
        Ok(())
    }
}

fn config_path() -> Result<PathBuf, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [server, flag, path] if server == "server" && flag == "--config" => Ok(path.into()),
        _ => Err("usage: bank-node server --config FILE".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::from_toml_file(config_path()?)?;
    let node = config.node_id;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = Server::builder(config)
        .state_machine("bank", LoggedBank::default())
        .start()
        .await?;
    eprintln!("bank node {node} serving on {}", server.local_addr());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
