//! The observer's network side: one tokio task that sends the driver's pull requests to
//! parents (one connection per parent, kept while it works) and hands each answer — or the
//! failure — back to the driver as a report; and the one-shot registration of the observer
//! with the leader. The driver decides everything (which parent, what to ask); this only moves
//! bytes, so a slow or dead parent never blocks the driver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::{Error, ErrorKind};
use crate::client::conn::NodeConn;
use crate::client::protocol::{ReplyBody, RequestBody};
use crate::net::NetConfig;

/// A request for a parent, from the driver.
pub(crate) struct LinkJob {
    pub addr: String,
    pub body: RequestBody,
    /// Bound on the whole exchange (a long poll's wait included).
    pub timeout: Duration,
}

/// What came back, for the driver.
pub(crate) type LinkResult = Result<ReplyBody, Error>;

/// Spawns the link task; `report` hands each result to the driver (false: the driver is gone).
pub(crate) fn spawn(
    net: NetConfig,
    client_id: u64,
    report: impl Fn(LinkResult) -> bool + Send + 'static,
) -> mpsc::UnboundedSender<LinkJob> {
    let (tx, mut rx) = mpsc::unbounded_channel::<LinkJob>();
    tokio::spawn(async move {
        let mut conns: HashMap<String, Arc<NodeConn>> = HashMap::new();
        while let Some(job) = rx.recv().await {
            let result = exchange(&mut conns, &net, client_id, job).await;
            if !report(result) {
                break;
            }
        }
    });
    tx
}

async fn exchange(
    conns: &mut HashMap<String, Arc<NodeConn>>,
    net: &NetConfig,
    client_id: u64,
    job: LinkJob,
) -> LinkResult {
    let conn = match conns.get(&job.addr) {
        Some(c) if !c.is_dead() => c.clone(),
        _ => {
            let c = tokio::time::timeout(job.timeout, NodeConn::connect(&job.addr, client_id, net))
                .await
                .map_err(|_| unavailable(&job.addr, "connecting timed out"))??;
            let c = Arc::new(c);
            conns.insert(job.addr.clone(), c.clone());
            c
        }
    };
    if conn.version.minor < 10 {
        return Err(unavailable(
            &job.addr,
            &format!("protocol {} has no observers (1.10)", conn.version),
        ));
    }
    match tokio::time::timeout(job.timeout, conn.request(job.body)).await {
        Err(_) => {
            conns.remove(&job.addr);
            Err(unavailable(&job.addr, "no answer in time"))
        }
        Ok(Err(lost)) => {
            conns.remove(&job.addr);
            Err(unavailable(&job.addr, &lost.0))
        }
        Ok(Ok(reply)) => reply.result,
    }
}

fn unavailable(addr: &str, why: &str) -> Error {
    Error::new(ErrorKind::Unavailable, format!("parent {addr}: {why}"))
}

/// Registers `node_id` at `addr` as an observer with the leader, found through `seeds` (the
/// parents: any node answers with the leader's address).
pub(crate) async fn register(
    seeds: Vec<String>,
    net: NetConfig,
    node_id: u64,
    addr: String,
) -> Result<(), Error> {
    let mut config = crate::client::ClientConfig::new(net.cluster_id);
    config.net = net;
    let client = crate::client::Client::connect(seeds, config).await?;
    let result = client.admin().register_observer(node_id, Some(&addr)).await;
    client.close();
    result
}
