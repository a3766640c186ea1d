//! Journal transaction commands (`tx …`): create one, append batches to it, commit or abort
//! it, list the open ones. A transaction outlives the command that created it (until its idle
//! timeout), so a script can create, append and commit in separate invocations.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Subcommand;
use journalkeeper::api::QueryConsistency;
use serde_json::json;

use crate::AnyResult;
use crate::client_cmds::ConnArgs;
use crate::coord_cmds::print;

#[derive(Subcommand, Debug)]
pub enum TxOp {
    /// Open a transaction; prints its id.
    Create {
        /// Context pairs kept with it (`key=value`, repeatable).
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Idle time after which the leader expires it.
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
    },
    /// Add one batch (the entries given, in order) for a partition to a transaction.
    Append {
        tx: u64,
        partition: u16,
        #[arg(required = true)]
        entries: Vec<String>,
    },
    /// Commit a transaction: returns once its entries are visible.
    Commit { tx: u64 },
    /// Abort a transaction: nothing of it is ever visible.
    Abort { tx: u64 },
    /// The transactions not yet ended.
    List {
        #[arg(long, default_value = "STRICT")]
        consistency: QueryConsistency,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

pub async fn run(conn: ConnArgs, op: TxOp) -> AnyResult<()> {
    let client = conn.connect().await?;
    let txns = client.transactions();
    let j = conn.json;
    match op {
        TxOp::Create {
            context,
            timeout_ms,
        } => {
            let context: BTreeMap<String, String> = context.into_iter().collect();
            let tx = txns
                .create_with_timeout(context, Duration::from_millis(timeout_ms))
                .await?;
            print(j, json!({"tx": tx}), tx.to_string());
        }
        TxOp::Append {
            tx,
            partition,
            entries,
        } => {
            let entries = entries.into_iter().map(String::into_bytes).collect();
            let held = txns.append(tx, partition, entries).await?;
            print(
                j,
                json!({"tx": tx, "entries": held}),
                format!("transaction {tx} holds {held} entries"),
            );
        }
        TxOp::Commit { tx } => {
            txns.commit(tx).await?;
            print(j, json!({"tx": tx, "committed": true}), "committed".into());
        }
        TxOp::Abort { tx } => {
            let existed = txns.abort(tx).await?;
            let text = if existed { "aborted" } else { "already ended" };
            print(j, json!({"tx": tx, "existed": existed}), text.into());
        }
        TxOp::List { consistency } => {
            for t in txns.opening(consistency).await? {
                let phase = format!("{:?}", t.phase).to_uppercase();
                print(
                    j,
                    json!({"tx": t.tx, "phase": phase, "entries": t.entries, "bytes": t.bytes,
                           "partitions": t.partitions, "context": t.context}),
                    format!(
                        "{} {phase} entries={} bytes={} partitions={:?} context={:?}",
                        t.tx, t.entries, t.bytes, t.partitions, t.context
                    ),
                );
            }
        }
    }
    client.close();
    Ok(())
}
