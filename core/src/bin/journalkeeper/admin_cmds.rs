//! `journalkeeper admin …`: change a running cluster — list the members, add or remove a
//! voter, hand leadership over, set the preferred leader, take, list and recover snapshots —
//! and follow its events. Each command connects with
//! `journalkeeper::client::Client`, calls `client.admin()` and prints plain text (or one JSON
//! object with `--json`); a refused or timed-out change exits non-zero with the reason.

use std::time::Duration;

use clap::Subcommand;
use journalkeeper::client::Client;
use journalkeeper::client::protocol::{ClusterConfiguration, Member};
use journalkeeper::client::{ClusterEvent, EventOptions, MemberRole, NodeSnapshots};
use serde_json::json;

use crate::AnyResult;
use crate::client_cmds::ConnArgs;

#[derive(Subcommand, Debug)]
pub enum AdminOp {
    /// The voters, the old voters of a change in progress, the non-voting members (learners
    /// catching up and observers) and the leader.
    Members,
    /// Add NODE_ID (started with `join = true`, reachable at ADDR) as a voter: it joins as a
    /// learner, catches up, then is promoted. Returns once the new configuration is committed.
    AddVoter {
        node_id: u64,
        /// The new node's address (host:port), as the other nodes will reach it.
        addr: String,
        /// Give up (and cancel the change) after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Remove voter NODE_ID (it may be the leader); it stops serving once that is committed.
    RemoveVoter {
        node_id: u64,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Convert NODE_ID to ROLE (VOTER or OBSERVER, any case): a voter becomes a read replica
    /// that pulls from its parents (or the voters); a registered observer (started with
    /// `role = "observer"`) is caught up and promoted. Returns once that is committed.
    ConvertRole {
        node_id: u64,
        /// VOTER or OBSERVER.
        role: String,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Hand leadership to voter NODE_ID; returns once it leads.
    TransferLeader {
        node_id: u64,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Set the preferred leader (leadership moves to it whenever it is alive and caught up),
    /// or clear it with `none`.
    PreferredLeader {
        /// A voter's node id, or `none`.
        node: String,
    },
    /// Make every node snapshot at one log index; prints that index.
    Snapshot,
    /// The snapshots each member retains (index, term, time, size).
    Snapshots,
    /// Roll the cluster's state back to the retained snapshot at INDEX (every node, through
    /// the log; refused unless a majority of the voters retain it).
    RecoverSnapshot { index: u64 },
    /// Print the cluster's events as a node sees them (first its current state: leader,
    /// voters, its role, each partition's bounds; then every change), one per line.
    Events {
        /// Stop after this many events (default: run until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// Also each user state machine's changes (`state NAME INDEX`: the log index it last
        /// changed at, coalesced); needs nodes of protocol 1.8.
        #[arg(long)]
        state_machines: bool,
    },
}

pub async fn run(conn: ConnArgs, op: AdminOp) -> AnyResult<()> {
    let client = conn.connect().await?;
    let result = run_op(&client, &conn, op).await;
    client.close();
    result
}

async fn run_op(client: &Client, conn: &ConnArgs, op: AdminOp) -> AnyResult<()> {
    let admin = client.admin();
    match op {
        AdminOp::Members => {
            let c = admin.cluster_configuration().await?;
            print_members(&c, conn.json);
        }
        AdminOp::AddVoter {
            node_id,
            addr,
            timeout_secs,
        } => {
            let t = std::time::Instant::now();
            admin
                .with_timeout(Duration::from_secs(timeout_secs))
                .add_voter(node_id, &addr)
                .await?;
            done(conn.json, &format!("node {node_id} is a voter"), t);
        }
        AdminOp::RemoveVoter {
            node_id,
            timeout_secs,
        } => {
            let t = std::time::Instant::now();
            admin
                .with_timeout(Duration::from_secs(timeout_secs))
                .remove_voter(node_id)
                .await?;
            done(conn.json, &format!("node {node_id} was removed"), t);
        }
        AdminOp::ConvertRole {
            node_id,
            role,
            timeout_secs,
        } => {
            let role: MemberRole = role.parse()?;
            let t = std::time::Instant::now();
            admin
                .with_timeout(Duration::from_secs(timeout_secs))
                .convert_role(node_id, role)
                .await?;
            done(
                conn.json,
                &format!("node {node_id} is {}", role.as_str().to_ascii_lowercase()),
                t,
            );
        }
        AdminOp::TransferLeader {
            node_id,
            timeout_secs,
        } => {
            let t = std::time::Instant::now();
            admin
                .with_timeout(Duration::from_secs(timeout_secs))
                .transfer_leader(node_id)
                .await?;
            done(conn.json, &format!("node {node_id} leads"), t);
        }
        AdminOp::Snapshot => {
            let t = std::time::Instant::now();
            let index = admin.take_snapshot().await?;
            done(conn.json, &format!("snapshot at index {index}"), t);
        }
        AdminOp::Snapshots => {
            for n in admin.snapshots().await? {
                print_snapshots(&n, conn.json);
            }
        }
        AdminOp::RecoverSnapshot { index } => {
            let t = std::time::Instant::now();
            admin.recover_snapshot(index).await?;
            done(
                conn.json,
                &format!("state rolled back to snapshot {index}"),
                t,
            );
        }
        AdminOp::Events {
            count,
            state_machines,
        } => {
            let mut events = client.events_with(EventOptions { state_machines }).await?;
            let mut seen = 0;
            while count.is_none_or(|c| seen < c) {
                let e = events.next().await?;
                seen += 1;
                if conn.json {
                    println!("{}", event_json(&e));
                } else {
                    println!("{}", event_line(&e));
                }
            }
        }
        AdminOp::PreferredLeader { node } => {
            let t = std::time::Instant::now();
            let id = match node.to_ascii_lowercase().as_str() {
                "none" => None,
                n => Some(
                    n.parse::<u64>()
                        .map_err(|_| format!("{node:?} is neither a node id nor `none`"))?,
                ),
            };
            admin.set_preferred_leader(id).await?;
            let what = id.map_or("no preferred leader".to_string(), |i| {
                format!("node {i} is the preferred leader")
            });
            done(conn.json, &what, t);
        }
    }
    Ok(())
}

fn done(json: bool, what: &str, since: std::time::Instant) {
    let ms = since.elapsed().as_millis() as u64;
    if json {
        println!("{}", json!({"ok": true, "result": what, "elapsed_ms": ms}));
    } else {
        println!("{what} ({ms} ms)");
    }
}

fn print_snapshots(n: &NodeSnapshots, json: bool) {
    let id = n.node.node_id;
    if json {
        let list: Vec<serde_json::Value> = n
            .snapshots
            .iter()
            .map(|s| {
                json!({"index": s.index, "term": s.term, "time_ms": s.time_ms,
                       "size_bytes": s.size_bytes})
            })
            .collect();
        let error = n.error.as_ref().map(|e| e.to_string());
        println!(
            "{}",
            json!({"node_id": id, "addr": n.node.addr, "snapshots": list, "error": error})
        );
        return;
    }
    if let Some(e) = &n.error {
        println!("{id}\t{}\tunreachable: {e}", n.node.addr);
    }
    for s in &n.snapshots {
        println!(
            "{id}\t{}\tindex {}\tterm {}\ttime_ms {}\t{} bytes",
            n.node.addr, s.index, s.term, s.time_ms, s.size_bytes
        );
    }
}

fn event_line(e: &ClusterEvent) -> String {
    match e {
        ClusterEvent::LeaderChanged { leader, term } => match leader {
            Some(l) => format!("leader\t{}\t{}\tterm {term}", l.node_id, l.addr),
            None => format!("leader\tnone\t\tterm {term}"),
        },
        ClusterEvent::VotersChanged { configuration: c } => {
            let ids = |ms: &[Member]| {
                ms.iter()
                    .map(|m| m.node_id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let joint = c
                .joint_old_voters
                .as_deref()
                .map_or(String::new(), |old| format!("\tchanging from {}", ids(old)));
            format!("voters\t{}{joint}", ids(&c.voters))
        }
        ClusterEvent::RoleChanged { node_id, role } => {
            format!("role\t{node_id}\t{}", role.name())
        }
        ClusterEvent::JournalChanged {
            partition,
            min_index,
            max_index,
        } => format!("journal\t{partition}\t{min_index}..{max_index}"),
        ClusterEvent::StateChanged {
            machine,
            applied_index,
        } => format!("state\t{machine}\t{applied_index}"),
    }
}

fn event_json(e: &ClusterEvent) -> serde_json::Value {
    match e {
        ClusterEvent::LeaderChanged { leader, term } => json!({
            "event": "leader_changed",
            "leader": leader.as_ref().map(|l| json!({"node_id": l.node_id, "addr": l.addr})),
            "term": term,
        }),
        ClusterEvent::VotersChanged { configuration: c } => json!({
            "event": "voters_changed",
            "voters": members_json(&c.voters),
            "joint_old_voters": c.joint_old_voters.as_deref().map(members_json),
            "observers": members_json(&c.observers),
        }),
        ClusterEvent::RoleChanged { node_id, role } => json!({
            "event": "role_changed", "node_id": node_id, "role": role.name(),
        }),
        ClusterEvent::JournalChanged {
            partition,
            min_index,
            max_index,
        } => json!({
            "event": "journal_changed", "partition": partition,
            "min_index": min_index, "max_index": max_index,
        }),
        ClusterEvent::StateChanged {
            machine,
            applied_index,
        } => json!({
            "event": "state_changed", "machine": machine, "applied_index": applied_index,
        }),
    }
}

fn members_json(ms: &[Member]) -> serde_json::Value {
    ms.iter()
        .map(|m| json!({"node_id": m.node_id, "addr": m.addr}))
        .collect()
}

fn print_members(c: &ClusterConfiguration, json: bool) {
    let leader = c.leader.as_ref().map(|l| l.node_id);
    if json {
        println!(
            "{}",
            json!({
                "voters": members_json(&c.voters),
                "joint_old_voters": c.joint_old_voters.as_deref().map(members_json),
                "observers": members_json(&c.observers),
                "leader": leader,
            })
        );
        return;
    }
    for m in &c.voters {
        let mark = if Some(m.node_id) == leader {
            "\tleader"
        } else {
            ""
        };
        println!("voter\t{}\t{}{mark}", m.node_id, m.addr);
    }
    for m in &c.observers {
        println!("observer\t{}\t{}", m.node_id, m.addr);
    }
    if let Some(old) = &c.joint_old_voters {
        let ids: Vec<String> = old.iter().map(|m| m.node_id.to_string()).collect();
        println!("changing\tfrom voters {}", ids.join(","));
    }
}
