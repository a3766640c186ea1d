//! The `journalkeeper` command line: demo, bench, and (with the cluster) server and client commands.

use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use journalkeeper::storage::{
    Journal, JournalOptions, Metadata, MetadataStore, PartitionIndex, Record, SnapshotStore,
};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "journalkeeper",
    version,
    about = "JournalKeeper-rs node, demo and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo.
    Demo,
    /// Run a server node from a TOML configuration file until Ctrl-C (or SIGTERM).
    Server {
        /// The node's configuration (format: see `journalkeeper::server::ServerConfig`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a benchmark; prints one JSON object per line.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
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
}

type AnyResult<T> = Result<T, Box<dyn Error>>;

/// Runs one node until Ctrl-C or SIGTERM, then shuts it down cleanly.
fn run_server(config: &Path) -> AnyResult<()> {
    let cfg = journalkeeper::server::ServerConfig::from_toml_file(config)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let server = journalkeeper::server::Server::start(cfg).await?;
        eprintln!(
            "journalkeeper: node {} listening on {}",
            server.node_id(),
            server.local_addr()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Server { config } => run_server(&config),
        Command::Bench {
            what:
                BenchWhat::Storage {
                    quick,
                    dir,
                    open_mib,
                },
        } => bench_storage(quick, dir, open_mib),
    };
    if let Err(e) = result {
        eprintln!("journalkeeper: {e}");
        std::process::exit(1);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Storage demo: a journal with three partitions, closed and reopened, read back by partition.
fn demo() -> AnyResult<()> {
    let root = tempfile::tempdir()?;
    let jdir = root.path().join("journal");
    let pdir = root.path().join("partitions");
    println!(
        "journalkeeper {} storage demo in {}",
        journalkeeper::VERSION,
        root.path().display()
    );
    let opts = JournalOptions {
        max_segment_bytes: 4096,
        max_record_bytes: 1024,
    };
    {
        let journal = Journal::open(&jdir, opts.clone())?;
        let mut index = PartitionIndex::open(&pdir, &journal)?;
        let (meta, _) = MetadataStore::open(root.path())?;
        meta.save(&Metadata {
            term: 1,
            voted_for: Some(1),
            config: b"node-1".to_vec(),
        })?;
        let partitions = ["orders", "payments", "audit"];
        let mut next = journal.last_index() + 1;
        for round in 0..10u64 {
            let batch: Vec<Record> = partitions
                .iter()
                .enumerate()
                .map(|(p, name)| {
                    let r = Record {
                        term: 1,
                        index: next,
                        partition: p as u16,
                        batch_size: 1,
                        timestamp_ms: now_ms(),
                        payload: format!("{name} event #{round}").into_bytes(),
                    };
                    next += 1;
                    r
                })
                .collect();
            let durable = journal.append_durable(&batch)?;
            index.index_records(&batch)?;
            if round % 3 == 0 {
                println!(
                    "appended a batch of {} records; durable index is now {durable}",
                    batch.len()
                );
            }
        }
        let snapshots = SnapshotStore::open(root.path().join("snapshots"))?;
        snapshots.create(15, |d| std::fs::write(d.join("state"), b"demo state at 15"))?;
        println!(
            "wrote {} records in {} segments with {} fdatasyncs; snapshot at 15 created",
            journal.last_index(),
            journal.segment_count(),
            journal.syncs_performed()
        );
        index.close()?;
        journal.close()?;
        println!("closed the journal");
    }
    let journal = Journal::open(&jdir, opts)?;
    let index = PartitionIndex::open(&pdir, &journal)?;
    let (_, meta) = MetadataStore::open(root.path())?;
    let snapshots = SnapshotStore::open(root.path().join("snapshots"))?;
    println!(
        "reopened: indices {}..={}, durable {}, metadata {:?}, snapshots {:?}",
        journal.first_index(),
        journal.last_index(),
        journal.durable_index(),
        meta,
        snapshots.list()?
    );
    for p in index.partitions() {
        let (min, next) = index.bounds(p).unwrap_or((0, 0));
        let tail = index.read(&journal, p, next.saturating_sub(3), 3)?;
        println!("partition {p}: partition indices {min}..{next}; last three:");
        for r in tail {
            println!(
                "  global index {:>2}, term {}: {}",
                r.index,
                r.term,
                String::from_utf8_lossy(&r.payload)
            );
        }
    }
    Ok(())
}

struct Measured {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    /// Duration of each batch, for the median.
    samples: Vec<Duration>,
}

impl Measured {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    fn p50_us(&mut self) -> f64 {
        self.samples.sort_unstable();
        self.samples
            .get(self.samples.len() / 2)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }
}

/// One case: `batch` records of `payload` bytes per durable append, against raw `write` +
/// `fdatasync` of the same encoded bytes. The two alternate batch by batch (in alternating order)
/// so that both see the same disk conditions on a shared machine; each side is timed alone.
fn bench_case(
    dir: &Path,
    payload: usize,
    batch: usize,
    budget: Duration,
) -> AnyResult<(Measured, Measured)> {
    let jdir = dir.join("journal-bench");
    let raw_path = dir.join("raw.bin");
    let journal = Journal::open(&jdir, JournalOptions::default())?;
    let mut raw = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&raw_path)?;
    let data = vec![0x5au8; payload];
    let encoded = (journalkeeper::storage::HEADER_LEN + payload) * batch;
    let raw_bytes = vec![0x5au8; encoded];
    let mut jm = Measured {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        samples: Vec::new(),
    };
    let mut rm = Measured {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        samples: Vec::new(),
    };
    let start = Instant::now();
    let mut next = 1u64;
    let mut round = 0u64;
    while start.elapsed() < budget {
        let recs: Vec<Record> = (0..batch as u64)
            .map(|i| Record {
                term: 1,
                index: next + i,
                partition: (i % 4) as u16,
                batch_size: 1,
                timestamp_ms: 0,
                payload: data.clone(),
            })
            .collect();
        for side in [round % 2, 1 - round % 2] {
            let t = Instant::now();
            if side == 0 {
                raw.write_all(&raw_bytes)?;
                raw.sync_data()?;
                rm.elapsed += t.elapsed();
                rm.samples.push(t.elapsed());
                rm.records += batch as u64;
                rm.bytes += encoded as u64;
            } else {
                let durable = journal.append_durable(&recs)?;
                jm.elapsed += t.elapsed();
                jm.samples.push(t.elapsed());
                if durable < next + batch as u64 - 1 {
                    return Err(format!(
                        "durable index {durable} below appended {}",
                        next + batch as u64 - 1
                    )
                    .into());
                }
                jm.records += batch as u64;
                jm.bytes += encoded as u64;
            }
        }
        next += batch as u64;
        round += 1;
    }
    journal.close()?;
    drop(journal);
    drop(raw);
    std::fs::remove_dir_all(&jdir)?;
    std::fs::remove_file(&raw_path)?;
    Ok((jm, rm))
}

fn bench_storage(quick: bool, dir: Option<PathBuf>, open_mib: Option<u64>) -> AnyResult<()> {
    let parent = dir.unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("jk-bench-")
        .tempdir_in(&parent)?;
    let budget = Duration::from_millis(if quick { 800 } else { 3000 });
    for payload in [100usize, 4096] {
        for batch in [1usize, 16, 256] {
            let (mut jr, mut raw) = bench_case(root.path(), payload, batch, budget)?;
            let line = json!({
                "bench": "storage.append_durable",
                "payload_bytes": payload,
                "batch": batch,
                "journal_records_per_s": jr.records_per_s().round(),
                "journal_mb_per_s": (jr.mb_per_s() * 100.0).round() / 100.0,
                "raw_records_per_s": raw.records_per_s().round(),
                "raw_mb_per_s": (raw.mb_per_s() * 100.0).round() / 100.0,
                "ratio": (jr.records_per_s() / raw.records_per_s() * 1000.0).round() / 1000.0,
                "batches": jr.records / batch as u64,
                "journal_p50_us": jr.p50_us().round(),
                "raw_p50_us": raw.p50_us().round(),
                "ratio_p50": (raw.p50_us() / jr.p50_us() * 1000.0).round() / 1000.0,
            });
            println!("{line}");
        }
    }
    bench_open(
        root.path(),
        open_mib.unwrap_or(if quick { 128 } else { 1024 }),
    )?;
    Ok(())
}

/// Builds a journal of `mib` MiB and times opening it after a clean close and after a crash
/// (process killed mid-write: the last record is torn).
fn bench_open(dir: &Path, mib: u64) -> AnyResult<()> {
    let jdir = dir.join("journal-open");
    let opts = JournalOptions::default();
    // Stop just short of `mib` MiB so that the last segment is nearly full: the worst case for
    // open, which scans the last segment (sealed ones are not read).
    let target = (mib * 1024 * 1024).saturating_sub(1024 * 1024).max(1);
    let payload = vec![0xa5u8; 4096];
    let build = Instant::now();
    {
        let journal = Journal::open(&jdir, opts.clone())?;
        let mut next = 1u64;
        let mut written = 0u64;
        while written < target {
            let recs: Vec<Record> = (0..256u64)
                .map(|i| Record {
                    term: 1,
                    index: next + i,
                    partition: (i % 8) as u16,
                    batch_size: 1,
                    timestamp_ms: 0,
                    payload: payload.clone(),
                })
                .collect();
            journal.append(&recs)?;
            next += 256;
            written += recs.iter().map(|r| r.encoded_len() as u64).sum::<u64>();
        }
        journal.close()?;
    }
    let build_ms = build.elapsed().as_millis();
    let start = Instant::now();
    let journal = Journal::open(&jdir, opts.clone())?;
    let clean = start.elapsed();
    let last_segment_mib =
        (journal_last_segment_len(&jdir)? as f64 / 1048576.0 * 10.0).round() / 10.0;
    let (last, segments, mem) = (
        journal.last_index(),
        journal.segment_count(),
        journal.index_memory_bytes(),
    );
    // Crash: append a record, then leave a torn half record at the end of the last segment.
    journal.append(&[Record {
        term: 1,
        index: last + 1,
        payload: payload.clone(),
        ..Record::default()
    }])?;
    drop(journal);
    let last_seg = std::fs::read_dir(&jdir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .ok_or("no segment")?;
    let mut torn = Vec::new();
    Record {
        term: 1,
        index: last + 2,
        payload: payload.clone(),
        ..Record::default()
    }
    .encode_into(&mut torn);
    torn.truncate(torn.len() / 2);
    OpenOptions::new()
        .append(true)
        .open(&last_seg)?
        .write_all(&torn)?;
    let start = Instant::now();
    let journal = Journal::open(&jdir, opts)?;
    let crash = start.elapsed();
    let recovered = journal.last_index();
    drop(journal);
    println!(
        "{}",
        json!({
            "bench": "storage.open",
            "journal_mib": mib,
            "records": last,
            "segments": segments,
            "build_ms": build_ms,
            "open_clean_ms": (clean.as_secs_f64() * 1e4).round() / 10.0,
            "open_after_crash_ms": (crash.as_secs_f64() * 1e4).round() / 10.0,
            "recovered_last_index": recovered,
            "sparse_index_bytes": mem,
            "last_segment_mib": last_segment_mib,
            "page_cache": "warm",
        })
    );
    std::fs::remove_dir_all(&jdir)?;
    Ok(())
}

fn journal_last_segment_len(dir: &Path) -> AnyResult<u64> {
    let last = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .ok_or("no segment")?;
    Ok(std::fs::metadata(last)?.len())
}
