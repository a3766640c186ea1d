//! Client commands: `append`, `get`, `kv get|set|remove|list|cas|watch|applied-index` (`get`
//! and `list` also at an index), `status`. Each
//! connects with `journalkeeper::client::Client`, does one thing and prints plain text (or one
//! JSON object per line with `--json`). Values are taken and printed as UTF-8 text (invalid
//! bytes are shown lossily).

use clap::{Args, Subcommand};
use journalkeeper::api::{QueryConsistency, ResponseConfig};
use journalkeeper::cli::local_client_config;
use journalkeeper::client::Client;
use journalkeeper::client::protocol::{NodeDetail, NodeStatus};
use journalkeeper::state::watch::WatchFilter;
use serde_json::json;

use crate::AnyResult;

#[derive(Args, Debug)]
pub struct ConnArgs {
    /// Server addresses, comma separated (host:port,host:port,…).
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<String>,
    /// The cluster id of the servers' configuration.
    #[arg(long, default_value_t = journalkeeper::client::DEFAULT_CLUSTER_ID, global = true)]
    cluster_id: u64,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ConnArgs {
    pub async fn connect(&self) -> AnyResult<Client> {
        Ok(Client::connect(&self.servers, local_client_config(self.cluster_id)).await?)
    }
}

/// `--ack`: a `ResponseConfig` by its canonical name, parsed in any case with `-` or `_`
/// (`one-way`, `ONE_WAY`, `One_Way`).
pub type Ack = ResponseConfig;

/// `--consistency`: a `QueryConsistency` by its canonical name, in any case.
pub type Consistency = QueryConsistency;

#[derive(Subcommand, Debug)]
pub enum KvOp {
    /// Print a key's value.
    Get {
        key: String,
        #[arg(long, default_value = "STRICT")]
        consistency: Consistency,
        /// The value as it was at this log index (a read at an index; `--consistency` is
        /// then not used).
        #[arg(long)]
        at_index: Option<u64>,
    },
    /// Set a key; prints the previous value.
    Set { key: String, value: String },
    /// Remove a key; prints the value it had.
    Remove { key: String },
    /// Keys (with values) starting with a prefix, in key order.
    List {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(long, default_value = "STRICT")]
        consistency: Consistency,
        /// The keys as they were at this log index (one consistent state).
        #[arg(long)]
        at_index: Option<u64>,
    },
    /// Compare-and-set: set KEY to --new (remove it without --new) only if its value is
    /// --expect (absent without --expect).
    Cas {
        key: String,
        #[arg(long)]
        expect: Option<String>,
        #[arg(long)]
        new: Option<String>,
    },
    /// Print changes of KEY (or of every key under --prefix) as they are applied.
    Watch {
        /// The key to watch (omit and give --prefix to watch a prefix).
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        prefix: Option<String>,
        /// First log index to report (0: from the next change).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop after this many events (default: run until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print the leader's applied index: step 1 of a two-step read, whose step 2 is a
    /// `get` or `list` with `--at-index` (on any node).
    AppliedIndex,
}

fn text(v: &Option<Vec<u8>>) -> String {
    match v {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "(absent)".into(),
    }
}

fn json_value(v: &Option<Vec<u8>>) -> serde_json::Value {
    match v {
        Some(b) => json!(String::from_utf8_lossy(b)),
        None => serde_json::Value::Null,
    }
}

pub async fn append(
    conn: ConnArgs,
    partition: u16,
    ack: Ack,
    values: Vec<String>,
) -> AnyResult<()> {
    let client = conn.connect().await?;
    let count = values.len();
    let entries = values.into_iter().map(String::into_bytes).collect();
    let first = client.journal().append(partition, entries, ack).await?;
    // `ONE_WAY` only queued the entries: the flush on shutdown delivers them before we exit
    // (bounded by `one_way_flush_timeout`; a failure is this command's error).
    client.shutdown().await?;
    if conn.json {
        println!(
            "{}",
            json!({"partition": partition, "entries": count, "first_index": first})
        );
    } else {
        match first {
            Some(i) => println!(
                "appended {count} entr{} to partition {partition} at index {i}{}",
                if count == 1 { "y" } else { "ies" },
                if count > 1 {
                    format!("..={}", i + count as u64 - 1)
                } else {
                    String::new()
                }
            ),
            None => println!(
                "sent {count} entries to partition {partition} (no index at this ack level)"
            ),
        }
    }
    Ok(())
}

pub async fn get(
    conn: ConnArgs,
    partition: u16,
    index: u64,
    max: u32,
    consistency: Consistency,
) -> AnyResult<()> {
    let client = conn.connect().await?;
    let entries = client
        .journal()
        .get(partition, index, max, consistency)
        .await?;
    for e in &entries {
        let payload = String::from_utf8_lossy(&e.payload);
        if conn.json {
            println!(
                "{}",
                json!({"partition": e.partition, "index": e.index, "term": e.term,
                       "timestamp_ms": e.timestamp_ms, "batch_size": e.batch_size,
                       "offset": e.offset, "payload": payload})
            );
        } else {
            println!("{}/{}\tterm {}\t{payload}", e.partition, e.index, e.term);
        }
    }
    client.close();
    Ok(())
}

pub async fn kv(conn: ConnArgs, op: KvOp) -> AnyResult<()> {
    let client = conn.connect().await?;
    let kv = client.kv();
    let j = conn.json;
    match op {
        KvOp::AppliedIndex => {
            let index = client.sync().await?;
            if j {
                println!("{}", json!({ "applied_index": index }));
            } else {
                println!("{index}");
            }
        }
        KvOp::Get {
            key,
            consistency,
            at_index,
        } => {
            let v = match at_index {
                Some(index) => kv.get_at(&key, index).await?,
                None => kv.with_consistency(consistency).get(&key).await?,
            };
            if j {
                println!("{}", json!({"key": key, "value": json_value(&v)}));
            } else {
                println!("{}", text(&v));
            }
        }
        KvOp::Set { key, value } => {
            let prev = kv.set(&key, value.into_bytes()).await?;
            if j {
                println!("{}", json!({"key": key, "previous": json_value(&prev)}));
            } else {
                println!("set {key} (previous: {})", text(&prev));
            }
        }
        KvOp::Remove { key } => {
            let prev = kv.remove(&key).await?;
            if j {
                println!("{}", json!({"key": key, "previous": json_value(&prev)}));
            } else {
                println!("removed {key} (previous: {})", text(&prev));
            }
        }
        KvOp::List {
            prefix,
            consistency,
            at_index,
        } => {
            let entries = match at_index {
                Some(index) => kv.list_at(&prefix, index).await?,
                None => kv.with_consistency(consistency).list(&prefix).await?,
            };
            for (k, v) in entries {
                let v = Some(v);
                if j {
                    println!("{}", json!({"key": k, "value": json_value(&v)}));
                } else {
                    println!("{k}\t{}", text(&v));
                }
            }
        }
        KvOp::Cas { key, expect, new } => {
            let r = kv
                .compare_and_set(
                    &key,
                    expect.map(String::into_bytes),
                    new.map(String::into_bytes),
                )
                .await?;
            if j {
                println!(
                    "{}",
                    json!({"key": key, "swapped": r.swapped, "current": json_value(&r.current)})
                );
            } else {
                println!(
                    "{} (current: {})",
                    if r.swapped { "swapped" } else { "not swapped" },
                    text(&r.current)
                );
            }
        }
        KvOp::Watch {
            key,
            prefix,
            from,
            count,
        } => {
            let filter = match (key, prefix) {
                (Some(k), _) => WatchFilter::Key(k),
                (None, p) => WatchFilter::Prefix(p.unwrap_or_default()),
            };
            let mut stream = kv.watch(filter, from).await?;
            let mut seen = 0u64;
            while count.is_none_or(|c| seen < c) {
                let e = stream.next().await?;
                seen += 1;
                if j {
                    println!(
                        "{}",
                        json!({"index": e.index, "key": e.key, "old": json_value(&e.old_value),
                               "new": json_value(&e.new_value)})
                    );
                } else {
                    println!(
                        "{}\t{}\t{} -> {}",
                        e.index,
                        e.key,
                        text(&e.old_value),
                        text(&e.new_value)
                    );
                }
            }
        }
    }
    client.close();
    Ok(())
}

pub async fn status(conn: ConnArgs, node: Option<String>) -> AnyResult<()> {
    let client = conn.connect().await?;
    let nodes = match node {
        Some(n) => vec![n],
        None => conn.servers.clone(),
    };
    let mut failed = 0;
    for addr in &nodes {
        match client.admin().status(addr).await {
            Ok(s) => {
                if conn.json {
                    println!("{}", status_json(addr, &s));
                } else {
                    println!("{}", status_line(addr, &s));
                }
            }
            Err(e) => {
                failed += 1;
                if conn.json {
                    println!("{}", json!({"addr": addr, "error": e.to_string()}));
                } else {
                    println!("{addr}\tunreachable: {e}");
                }
            }
        }
    }
    client.close();
    if failed == nodes.len() {
        return Err("no node answered".into());
    }
    Ok(())
}

pub fn status_line(addr: &str, s: &NodeStatus) -> String {
    let resources = s.resources.map_or(String::new(), |r| {
        format!(
            "\tclients {}\tpeers {}\twatches {} (on {} connections)\tpending {}\tsessions {}",
            r.client_connections,
            r.peer_connections,
            r.watches,
            r.watching_connections,
            r.pending_requests,
            r.sessions_in_flight
        )
    });
    let joint = s
        .configuration
        .joint_old_voters
        .as_ref()
        .map_or(String::new(), |old| format!(" (joint, old {})", ids(old)));
    format!(
        "{addr}\tnode {}\t{}\tterm {}\tleader {}\tcommit {}\tapplied {}\tlast {}\tvoters {}{joint}{resources}{}",
        s.node_id,
        s.role,
        s.term,
        s.leader.as_ref().map_or("unknown".to_string(), |m| format!(
            "{} ({})",
            m.node_id, m.addr
        )),
        s.commit_index,
        s.applied_index,
        s.last_index,
        ids(&s.configuration.voters),
        s.detail.as_deref().map_or(String::new(), detail_text),
    )
}

fn ids(members: &[journalkeeper::client::Member]) -> String {
    members
        .iter()
        .map(|m| m.node_id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The monitoring detail (protocol 1.4) as more tab-separated fields.
fn detail_text(d: &NodeDetail) -> String {
    let mut out = format!("\tfirst {}\tdurable {}", d.first_index, d.durable_index);
    if let Some(p) = d.preferred_leader {
        out += &format!("\tpreferred {p}");
    }
    if let Some(ms) = d.leader_last_heard_ms {
        out += &format!("\tleader heard {ms} ms ago");
    }
    for f in &d.followers {
        out += &format!(
            "\tfollower {} next {} match {} lag {} heard {} ms ago",
            f.node_id, f.next_index, f.match_index, f.lag, f.last_heard_ms
        );
    }
    let parts: Vec<String> = d
        .partitions
        .iter()
        .map(|p| format!("{}:[{},{})", p.partition, p.min_index, p.max_index))
        .collect();
    out += &format!("\tpartitions {}", parts.join(" "));
    if let Some(u) = &d.disk {
        out += &format!(
            "\tdisk {} used {} free {} of {} bytes",
            u.path, u.used_bytes, u.free_bytes, u.total_bytes
        );
    }
    out
}

/// The library's JSON of a status (`status_json`, also served at HTTP `/status`) with the
/// address asked.
fn status_json(addr: &str, s: &NodeStatus) -> serde_json::Value {
    let mut v = journalkeeper::client::status_detail::status_json(s);
    v["addr"] = json!(addr);
    v
}
