//! The `journalkeeper` command line: a node (`server`), the cluster `demo`, benchmarks
//! (`bench storage`, `bench cluster`, `bench failover`, `bench transfer`, `bench coord`, `bench sm`,
//! `bench sm-host`, `bench snapshot-transfer`, `bench blob-host`), client commands (`append`, `get`, `kv …`,
//! `status`), the coordination recipes (`coord …`) and cluster administration (`admin …`).
//!
//! Files: `main.rs` (arguments and dispatch), `server_cmd.rs`, `client_cmds.rs`, `coord_cmds.rs`, `txn_cmds.rs`, `sm_cmds.rs`, `sql_cmd.rs`, `admin_cmds.rs`, `demo.rs`,
//! `bench_cluster.rs`, `bench_failover.rs`, `bench_storage.rs`, `bench_sm.rs`, `bench_snapshot.rs` (with the blob machine's host,
//! `bench_blob.rs`). The process cluster the demo and the cluster bench
//! start is `journalkeeper::cli::LocalCluster` (shared with the multi-process tests).

mod admin_cmds;
mod bench_blob;
mod bench_cluster;
mod bench_coord;
mod bench_etcd;
mod bench_failover;
mod bench_json;
mod bench_observers;
mod bench_sm;
mod bench_snapshot;
mod bench_storage;
mod bench_transfer;
mod client_cmds;
mod coord_cmds;
mod demo;
mod server_cmd;
mod sm_cmds;
mod sql_cmd;
mod txn_cmds;

use std::error::Error;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub type AnyResult<T> = Result<T, Box<dyn Error>>;

#[derive(Parser)]
#[command(
    name = "journalkeeper",
    version,
    about = "JournalKeeper-rs node, client, demo and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until SIGTERM / SIGINT (logs to stderr; RUST_LOG, default info).
    Server {
        /// The node's TOML configuration (see examples/cluster/node1.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a 3-node cluster as child processes, exercise it (writes, KV, watch, follower
    /// reads, leader kill, restart) and print a report.
    Demo,
    /// Run a benchmark; prints one JSON object per line.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Append values (one batch) to a partition; prints the index of the first.
    Append {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[arg(long)]
        partition: u16,
        /// Acknowledgement level: ONE_WAY, RECEIVE, PERSISTENCE, REPLICATION or ALL (any case,
        /// `-` or `_`). With ONE_WAY the command still waits (at most 5 s) until the leader
        /// stored the entries before it exits, and fails if it did not.
        #[arg(long, default_value = "REPLICATION")]
        ack: client_cmds::Ack,
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Read entries of a partition.
    Get {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[arg(long)]
        partition: u16,
        #[arg(long, default_value_t = 0)]
        index: u64,
        #[arg(long, default_value_t = 100)]
        max: u32,
        /// STRICT, SEQUENTIAL or NONE (any case).
        #[arg(long, default_value = "STRICT")]
        consistency: client_cmds::Consistency,
    },
    /// Coordination KV commands.
    Kv {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(subcommand)]
        op: client_cmds::KvOp,
    },
    /// Coordination recipes: grant, revoke, keep-alive, ttl, put (a key under a lease), lock,
    /// campaign, leader, observe, next-id, register, members.
    Coord {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(subcommand)]
        op: coord_cmds::CoordOp,
    },
    /// Journal transactions: create, append, commit, abort, list.
    Tx {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(subcommand)]
        op: txn_cmds::TxOp,
    },
    /// Statements against the cluster's built-in SQL database (`--query` to read).
    Sql {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(flatten)]
        args: sql_cmd::SqlArgs,
    },
    /// User state machines hosted by the servers: update, query.
    Sm {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(subcommand)]
        op: sm_cmds::SmOp,
    },
    /// Change a running cluster: members, add-voter, remove-voter, transfer-leader,
    /// preferred-leader, snapshot, snapshots, recover-snapshot, events.
    Admin {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        #[command(subcommand)]
        op: admin_cmds::AdminOp,
    },
    /// Node status: every server of --servers, or only --node.
    Status {
        #[command(flatten)]
        conn: client_cmds::ConnArgs,
        /// One node's address (host:port).
        #[arg(long)]
        node: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Durable appends against raw write + fdatasync, and journal open times.
    Storage {
        /// Shorter runs and a 128 MiB journal for the open-time cases.
        #[arg(long)]
        quick: bool,
        /// Directory for the temporary files (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Size of the journal for the open-time cases, in MiB (default 1024; 128 with --quick).
        #[arg(long)]
        open_mib: Option<u64>,
    },
    /// Appends with REPLICATION to a 3-node cluster (child processes on loopback, or
    /// --servers): records/s and latency percentiles per record size and client count, and
    /// each node's peak RSS.
    Cluster(bench_cluster::Args),
    /// Leader kill -9 → next acknowledged write (min/median/p90/max over --kills), and a
    /// SIGSTOPped node first in a client's server list (connect + first read), on a 3-node
    /// cluster of child processes with the default timeouts.
    Failover(bench_failover::Args),
    /// Lock acquire+release pairs, ID ranges and transaction commits (3 partitions x 8
    /// entries) with 16 concurrent tasks, next to etcd's equivalents when etcd is installed.
    Coord(bench_coord::Args),
    /// Leader transfers under a continuous writer: the longest gap between acknowledged
    /// appends during each transfer, next to the same-run baseline before it.
    Transfer(bench_transfer::Args),
    /// The voters' write throughput with 0 and with 4 observers in two levels (same run), and
    /// each observer's lag behind the leader in entries and ms.
    Observers(bench_observers::Args),
    /// Concurrent updates (REPLICATION) of a hosted counter machine on a running cluster:
    /// updates/s, p50, p99 (`make bench-machines` runs it against hosts in four languages).
    Sm(bench_sm::Args),
    /// Host the Rust counter machine on one embedded node per TOML file; prints `ready`, serves
    /// until stdin closes.
    SmHost(bench_sm::HostArgs),
    /// A 1 GiB disk-resident state (and 64 MiB of KV) sent by snapshot to a fresh node: the
    /// transfer rate next to the disk's write rate, the sender's and receiver's peak RSS.
    SnapshotTransfer(bench_snapshot::Args),
    /// One node of the `server` TOML hosting the disk-resident "blob" machine (for
    /// `snapshot-transfer`); serves until SIGTERM / SIGINT.
    BlobHost(bench_blob::HostArgs),
}

/// Logs to stderr; colours (ANSI escapes) only when stderr is a terminal, so log files and
/// pipes get plain text.
fn init_tracing(default: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn runtime() -> AnyResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Server { .. } => "info",
        _ => "warn",
    };
    init_tracing(default_log);
    let result = match cli.command {
        Command::Server { config } => runtime().and_then(|rt| rt.block_on(server_cmd::run(config))),
        Command::Demo => runtime().and_then(|rt| rt.block_on(demo::run())),
        Command::Bench {
            what:
                BenchWhat::Storage {
                    quick,
                    dir,
                    open_mib,
                },
        } => bench_storage::bench_storage(quick, dir, open_mib),
        Command::Bench {
            what: BenchWhat::Cluster(args),
        } => runtime().and_then(|rt| rt.block_on(bench_cluster::run(args))),
        Command::Bench {
            what: BenchWhat::Failover(args),
        } => runtime().and_then(|rt| rt.block_on(bench_failover::run(args))),
        Command::Bench {
            what: BenchWhat::Transfer(args),
        } => runtime().and_then(|rt| rt.block_on(bench_transfer::run(args))),
        Command::Bench {
            what: BenchWhat::Observers(args),
        } => runtime().and_then(|rt| rt.block_on(bench_observers::run(args))),
        Command::Bench {
            what: BenchWhat::Coord(args),
        } => runtime().and_then(|rt| rt.block_on(bench_coord::run(args))),
        Command::Bench {
            what: BenchWhat::Sm(args),
        } => runtime().and_then(|rt| rt.block_on(bench_sm::run(args))),
        Command::Bench {
            what: BenchWhat::SmHost(args),
        } => runtime().and_then(|rt| rt.block_on(bench_sm::host(args))),
        Command::Bench {
            what: BenchWhat::SnapshotTransfer(args),
        } => runtime().and_then(|rt| rt.block_on(bench_snapshot::run(args))),
        Command::Bench {
            what: BenchWhat::BlobHost(args),
        } => runtime().and_then(|rt| rt.block_on(bench_blob::host(args))),
        Command::Append {
            conn,
            partition,
            ack,
            values,
        } => {
            runtime().and_then(|rt| rt.block_on(client_cmds::append(conn, partition, ack, values)))
        }
        Command::Get {
            conn,
            partition,
            index,
            max,
            consistency,
        } => runtime()
            .and_then(|rt| rt.block_on(client_cmds::get(conn, partition, index, max, consistency))),
        Command::Kv { conn, op } => runtime().and_then(|rt| rt.block_on(client_cmds::kv(conn, op))),
        Command::Coord { conn, op } => {
            runtime().and_then(|rt| rt.block_on(coord_cmds::run(conn, op)))
        }
        Command::Tx { conn, op } => runtime().and_then(|rt| rt.block_on(txn_cmds::run(conn, op))),
        Command::Sql { conn, args } => {
            runtime().and_then(|rt| rt.block_on(sql_cmd::run(conn, args)))
        }
        Command::Sm { conn, op } => runtime().and_then(|rt| rt.block_on(sm_cmds::run(conn, op))),
        Command::Admin { conn, op } => {
            runtime().and_then(|rt| rt.block_on(admin_cmds::run(conn, op)))
        }
        Command::Status { conn, node } => {
            runtime().and_then(|rt| rt.block_on(client_cmds::status(conn, node)))
        }
    };
    if let Err(e) = result {
        eprintln!("journalkeeper: {e}");
        std::process::exit(1);
    }
}
