//! A replicated bank on a 3-node cluster embedded in this process: deposits, concurrent
//! transfers, the leader stopped mid-way and started again, then every node must hold the same
//! balances and the total must be what was deposited. Exits non-zero otherwise.
//!
//! Run: `cargo run -p journalkeeper-bank-example`

use std::net::SocketAddr;
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind, QueryConsistency};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::server::{Server, ServerConfig};
use journalkeeper_bank_example::{Bank, total};

const CLUSTER_ID: u64 = 42;
const ACCOUNTS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path, addrs: &[SocketAddr], i: usize) -> ServerConfig {
    let peers = addrs.iter().enumerate().map(|(j, a)| (j as u64 + 1, *a));
    ServerConfig::new(
        i as u64 + 1,
        addrs[i],
        CLUSTER_ID,
        dir.join(format!("node{}", i + 1)),
    )
    .with_peers(peers)
    .with_timeouts(300, 30)
    .with_snapshots(50, 20)
}

async fn start(dir: &std::path::Path, addrs: &[SocketAddr], i: usize) -> Result<Server, Error> {
    Server::builder(config(dir, addrs, i))
        .state_machine("bank", Bank::default())
        .start()
        .await
}

/// Transfers between the accounts; refusals (short funds) are expected and counted.
async fn transfers(client: &Client, worker: usize, count: usize) -> Result<usize, Error> {
    let bank = client.state_machine("bank");
    let mut refused = 0;
    for k in 0..count {
        let from = ACCOUNTS[(worker + k) % ACCOUNTS.len()];
        let to = ACCOUNTS[(worker + k + 1) % ACCOUNTS.len()];
        let amount = 1 + (k * 37 + worker * 11) % 400;
        let command = format!("transfer {from} {to} {amount}");
        match bank.update(command.into_bytes()).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::Rejected => refused += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()))
        .collect::<Result<_, _>>()?;
    let mut servers = Vec::new();
    for i in 0..3 {
        servers.push(Some(start(dir.path(), &addrs, i).await?));
    }
    let client = Client::connect(
        addrs.iter().map(|a| a.to_string()),
        ClientConfig::new(CLUSTER_ID),
    )
    .await?;
    for a in ACCOUNTS {
        let balance = client
            .state_machine("bank")
            .update(format!("deposit {a} 1000").into_bytes())
            .await?;
        println!("deposit {a} 1000 -> {}", String::from_utf8_lossy(&balance));
    }

    let workers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move { transfers(&client, w, 50).await })
        })
        .collect();
    // Stop the leader while the transfers run.
    let leader = loop {
        if let Some(i) = (0..3).find(|&i| {
            servers[i]
                .as_ref()
                .is_some_and(|s: &Server| s.status().is_leader())
        }) {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some(s) = servers[leader].take() {
        println!("stopping the leader, node {}", leader + 1);
        s.shutdown().await;
    }
    let mut refused = 0;
    for w in workers {
        refused += w.await??;
    }
    println!("transfers done ({refused} refused for short funds)");
    servers[leader] = Some(start(dir.path(), &addrs, leader).await?);

    // Every node, once it has applied everything, answers from its own state.
    let applied = client.sync().await?;
    let mut views = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let server = server.as_ref().ok_or("a node is not running")?;
        server
            .wait_for(WAIT, |s| s.applied_index >= applied)
            .await?;
        let local = Client::connect([addrs[i].to_string()], ClientConfig::new(CLUSTER_ID)).await?;
        let balances = local
            .state_machine("bank")
            .query(b"balances".to_vec(), QueryConsistency::None)
            .await?;
        let balances = String::from_utf8(balances)?;
        println!("node {}: {}", i + 1, balances.replace('\n', " "));
        views.push(balances);
        local.close();
    }
    if views.iter().any(|v| v != &views[0]) {
        return Err("the nodes hold different balances".into());
    }
    let sum = total(&views[0]);
    if sum != 4000 {
        return Err(format!("the total is {sum}, not the 4000 deposited").into());
    }
    println!("every node holds the same balances; the total is conserved ({sum})");
    client.close();
    for s in servers.into_iter().flatten() {
        s.shutdown().await;
    }
    Ok(())
}
