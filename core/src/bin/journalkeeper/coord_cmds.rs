//! Coordination commands (`coord …`): leases, locks, elections, IDs and liveness groups. The
//! commands that hold something (`lock`, `campaign`, `register`) keep their lease alive until
//! the command they run exits, or until SIGINT / SIGTERM when they run none, then revoke it.

use std::time::Duration;

use clap::Subcommand;
use journalkeeper::client::{Client, KeepAlive, MemberEvent};
use serde_json::json;

use crate::AnyResult;
use crate::client_cmds::ConnArgs;

#[derive(Subcommand, Debug)]
pub enum CoordOp {
    /// Grant a lease; prints its id (it ends unless kept alive within the TTL).
    Grant {
        #[arg(long, default_value_t = 10_000)]
        ttl_ms: u64,
    },
    /// End a lease now (its keys, locks, campaigns and registrations go with it).
    Revoke { lease: u64 },
    /// Renew a lease once; prints what it has left.
    KeepAlive { lease: u64 },
    /// What a lease has left and which keys are attached to it.
    Ttl { lease: u64 },
    /// Set a KV key attached to a lease (removed when the lease ends).
    Put {
        key: String,
        value: String,
        #[arg(long)]
        lease: u64,
    },
    /// Hold a lock: prints its fencing token, runs the command (with JK_FENCING_TOKEN set) or
    /// waits for SIGINT / SIGTERM, then releases it.
    Lock {
        name: String,
        #[arg(long, default_value_t = 10_000)]
        ttl_ms: u64,
        /// The command to run while holding the lock.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Campaign in an election; once leading, prints the token, runs the command (or waits
    /// for SIGINT / SIGTERM), then resigns.
    Campaign {
        name: String,
        value: String,
        #[arg(long, default_value_t = 10_000)]
        ttl_ms: u64,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The current leader of an election.
    Leader { name: String },
    /// Print the leader of an election and each change (at most --count lines).
    Observe {
        name: String,
        #[arg(long)]
        count: Option<u64>,
    },
    /// The next IDs of a sequence (unique and increasing across leader changes).
    NextId {
        name: String,
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Register a live member of a group until the command exits (or SIGINT / SIGTERM).
    Register {
        group: String,
        member: String,
        #[arg(default_value = "")]
        info: String,
        #[arg(long, default_value_t = 10_000)]
        ttl_ms: u64,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The live members of a group.
    Members {
        group: String,
        /// Then print each join and leave (at most --count lines).
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        count: Option<u64>,
    },
}

pub async fn run(conn: ConnArgs, op: CoordOp) -> AnyResult<()> {
    let client = conn.connect().await?;
    let coord = client.coord();
    let j = conn.json;
    match op {
        CoordOp::Grant { ttl_ms } => {
            let lease = coord.grant(Duration::from_millis(ttl_ms)).await?;
            print(
                j,
                json!({"lease": lease, "ttl_ms": ttl_ms}),
                lease.to_string(),
            );
        }
        CoordOp::Revoke { lease } => {
            let existed = coord.revoke(lease).await?;
            let text = if existed { "revoked" } else { "already ended" };
            print(j, json!({"lease": lease, "existed": existed}), text.into());
        }
        CoordOp::KeepAlive { lease } => print_lease(j, coord.keep_alive(lease).await?),
        CoordOp::Ttl { lease } => print_lease(j, coord.time_to_live(lease).await?),
        CoordOp::Put { key, value, lease } => {
            coord.put(&key, value.into_bytes(), lease).await?;
            print(j, json!({"key": key, "lease": lease}), format!("set {key}"));
        }
        CoordOp::Lock {
            name,
            ttl_ms,
            command,
        } => {
            let (lease, keeper) = lease_kept(&client, ttl_ms).await?;
            let token = coord.lock(&name, lease).await?;
            print(j, json!({"lock": name, "token": token}), token.to_string());
            let held = hold(&keeper, &command, token).await;
            coord.unlock(&name, lease).await?;
            keeper.revoke().await?;
            held?;
        }
        CoordOp::Campaign {
            name,
            value,
            ttl_ms,
            command,
        } => {
            let (lease, keeper) = lease_kept(&client, ttl_ms).await?;
            let token = coord.campaign(&name, value.into_bytes(), lease).await?;
            print(
                j,
                json!({"election": name, "token": token}),
                token.to_string(),
            );
            let held = hold(&keeper, &command, token).await;
            coord.resign(&name, lease).await?;
            keeper.revoke().await?;
            held?;
        }
        CoordOp::Leader { name } => print_leader(j, &name, coord.leader(&name).await?),
        CoordOp::Observe { name, count } => {
            let mut observer = coord.observe(&name).await?;
            let mut seen = 0;
            while count.is_none_or(|c| seen < c) {
                print_leader(j, &name, observer.next().await?);
                seen += 1;
            }
        }
        CoordOp::NextId { name, count } => {
            let ids = coord.next_ids(&name, count).await?;
            let text = if count == 1 {
                ids.start.to_string()
            } else {
                format!("{}..{}", ids.start, ids.end)
            };
            print(j, json!({"first": ids.start, "end": ids.end}), text);
        }
        CoordOp::Register {
            group,
            member,
            info,
            ttl_ms,
            command,
        } => {
            let reg = coord
                .register(
                    &group,
                    &member,
                    info.into_bytes(),
                    Duration::from_millis(ttl_ms),
                )
                .await?;
            print(
                j,
                json!({"group": group, "member": member, "lease": reg.lease}),
                format!("registered {member} in {group}"),
            );
            let held = hold(reg.keep_alive(), &command, 0).await;
            reg.close().await?;
            held?;
        }
        CoordOp::Members {
            group,
            watch,
            count,
        } => {
            let mut events = if watch {
                Some(coord.watch_members(&group).await?)
            } else {
                None
            };
            for m in coord.members(&group).await? {
                let info = String::from_utf8_lossy(&m.info).into_owned();
                print(
                    j,
                    json!({"member": m.member, "info": info, "lease": m.lease}),
                    format!("{}\t{info}", m.member),
                );
            }
            let mut seen = 0;
            while let Some(events) = events.as_mut()
                && count.is_none_or(|c| seen < c)
            {
                match events.next().await? {
                    MemberEvent::Joined(m) => {
                        let info = String::from_utf8_lossy(&m.info).into_owned();
                        print(
                            j,
                            json!({"event": "joined", "member": m.member, "info": info}),
                            format!("joined\t{}\t{info}", m.member),
                        );
                    }
                    MemberEvent::Left { member } => print(
                        j,
                        json!({"event": "left", "member": member}),
                        format!("left\t{member}"),
                    ),
                }
                seen += 1;
            }
        }
    }
    Ok(())
}

pub(crate) fn print(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn print_lease(j: bool, s: journalkeeper::client::protocol::LeaseStatus) {
    print(
        j,
        json!({"lease": s.lease, "ttl_ms": s.ttl_ms, "remaining_ms": s.remaining_ms, "keys": s.keys}),
        format!(
            "lease {}: {} ms left of {} ms; keys: {}",
            s.lease,
            s.remaining_ms,
            s.ttl_ms,
            s.keys.join(",")
        ),
    );
}

fn print_leader(j: bool, name: &str, leader: Option<journalkeeper::client::ElectionLeader>) {
    match leader {
        Some(l) => {
            let value = String::from_utf8_lossy(&l.value).into_owned();
            print(
                j,
                json!({"election": name, "leader": value, "lease": l.lease, "token": l.token}),
                format!("{value}\t(token {})", l.token),
            );
        }
        None => print(
            j,
            json!({"election": name, "leader": null}),
            "(no leader)".into(),
        ),
    }
}

/// A new lease of `ttl_ms`, kept alive in the background.
async fn lease_kept(client: &Client, ttl_ms: u64) -> AnyResult<(u64, KeepAlive)> {
    let lease = client.coord().grant(Duration::from_millis(ttl_ms)).await?;
    let keeper = client.coord().keep_alive_forever(lease).await?;
    Ok((lease, keeper))
}

/// Runs `command` (with `JK_FENCING_TOKEN`), or waits for SIGINT / SIGTERM; ends early with an
/// error when the lease is lost.
async fn hold(keeper: &KeepAlive, command: &[String], token: u64) -> AnyResult<()> {
    let run = async {
        match command.split_first() {
            Some((program, args)) => {
                let status = tokio::process::Command::new(program)
                    .args(args)
                    .env("JK_FENCING_TOKEN", token.to_string())
                    .status()
                    .await?;
                if !status.success() {
                    return Err(format!("{program} exited with {status}").into());
                }
                Ok(())
            }
            None => {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                Ok(())
            }
        }
    };
    tokio::select! {
        r = run => r,
        e = keeper.lost() => Err(format!("the lease was lost: {e}").into()),
    }
}
