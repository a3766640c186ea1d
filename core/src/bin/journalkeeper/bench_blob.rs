//! `journalkeeper bench blob-host --config FILE`: one node of the `journalkeeper server` TOML
//! hosting the disk-resident "blob" machine below, until SIGTERM / SIGINT or its removal. The
//! snapshot-transfer bench (`bench snapshot-transfer`) runs these as `LocalCluster` children so
//! that each node's RSS is its own.
//!
//! The blob's state is one file, `<data_dir>-blob/state` (next to the node's data directory),
//! never held in memory: `grow BYTES SEED` appends BYTES pseudo-random bytes generated from
//! SEED (`snapshot_bench::fill_pseudo_random`: the bytes need not travel through the log), the
//! query answers `SIZE CRC32C`; `snapshot` streams the file in 1 MiB buffers and `restore`
//! streams its input into a new file (fsynced, then renamed over the state), checksumming it.
//! The file starts empty at each start: the host restores the node's snapshot and replays the
//! log, so the state is always the one of the applied index.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use journalkeeper::cli::snapshot_bench::{BLOB_MACHINE, MAX_GROW_BYTES, fill_pseudo_random};
use journalkeeper::server::{Server, ServerConfig};
use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use tokio::signal::unix::{SignalKind, signal};

use crate::AnyResult;

const BUF: usize = 1 << 20;

#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// The node's TOML configuration (as for `journalkeeper server`).
    #[arg(long)]
    config: PathBuf,
}

/// The state file, its size and its CRC32C.
struct Blob {
    dir: PathBuf,
    file: File,
    size: u64,
    crc: u32,
}

impl Blob {
    fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("state");
        File::create(&path)?;
        Ok(Blob {
            dir: dir.to_path_buf(),
            file: File::options().append(true).open(&path)?,
            size: 0,
            crc: 0,
        })
    }

    fn grow(&mut self, bytes: u64, seed: u64) -> io::Result<()> {
        let mut buf = vec![0u8; BUF];
        let (mut left, mut block) = (bytes, 0u64);
        while left > 0 {
            let n = left.min(BUF as u64) as usize;
            fill_pseudo_random(&mut buf[..n], seed, block);
            self.file.write_all(&buf[..n])?;
            self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
            left -= n as u64;
            block += 1;
        }
        self.size += bytes;
        Ok(())
    }

    fn restore_from(&mut self, input: &mut dyn Read) -> io::Result<()> {
        let staged = self.dir.join("state.restoring");
        let mut file = File::create(&staged)?;
        let mut buf = vec![0u8; BUF];
        let (mut size, mut crc) = (0u64, 0u32);
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(&buf[..n])?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            size += n as u64;
        }
        file.sync_all()?;
        drop(file);
        let path = self.dir.join("state");
        std::fs::rename(&staged, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = File::options().append(true).open(&path)?;
        (self.size, self.crc) = (size, crc);
        Ok(())
    }
}

fn parse_grow(command: &[u8]) -> Result<(u64, u64), StateError> {
    let text = std::str::from_utf8(command)
        .ok()
        .and_then(|t| t.strip_prefix("grow "))
        .ok_or_else(|| StateError::Rejected("unknown command (grow BYTES SEED)".into()))?;
    let mut words = text.split(' ').map(str::parse::<u64>);
    match (words.next(), words.next(), words.next()) {
        (Some(Ok(bytes)), Some(Ok(seed)), None) if bytes <= MAX_GROW_BYTES => Ok((bytes, seed)),
        (Some(Ok(bytes)), Some(Ok(_)), None) => Err(StateError::InvalidArgument(format!(
            "grow of {bytes} bytes exceeds {MAX_GROW_BYTES}"
        ))),
        _ => Err(StateError::Rejected(
            "grow BYTES SEED: two decimal numbers".into(),
        )),
    }
}

impl StateMachine for Blob {
    fn apply(&mut self, _ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let (bytes, seed) = parse_grow(command)?;
        // A failed write leaves the file and the log apart: stop this node (fail-stop).
        if let Err(e) = self.grow(bytes, seed) {
            panic!("blob: cannot append to {}: {e}", self.dir.display());
        }
        Ok(self.size.to_string().into_bytes())
    }

    fn query(&self, _query: &[u8]) -> Result<Vec<u8>, StateError> {
        Ok(format!("{} {}", self.size, self.crc).into_bytes())
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let err = |e: io::Error| io_error("blob snapshot", &e);
        let mut file = File::open(self.dir.join("state")).map_err(err)?;
        let mut buf = vec![0u8; BUF];
        let mut left = self.size;
        while left > 0 {
            let n = left.min(BUF as u64) as usize;
            file.read_exact(&mut buf[..n]).map_err(err)?;
            out.write_all(&buf[..n]).map_err(err)?;
            left -= n as u64;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        self.restore_from(input)
            .map_err(|e| io_error("blob restore", &e))?;
        tracing::warn!(bytes = self.size, "blob restored from a snapshot");
        Ok(())
    }
}

/// `<data_dir>-blob`: beside the data directory, so the node's own files stay its own.
fn blob_dir(data_dir: &Path) -> AnyResult<PathBuf> {
    let name = data_dir
        .file_name()
        .ok_or_else(|| format!("data_dir {} has no file name", data_dir.display()))?;
    let mut name = name.to_os_string();
    name.push("-blob");
    Ok(data_dir.with_file_name(name))
}

pub async fn host(args: HostArgs) -> AnyResult<()> {
    let config = ServerConfig::from_toml_file(&args.config)?;
    let blob = Blob::open(&blob_dir(&config.data_dir)?)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = Server::builder(config)
        .state_machine(BLOB_MACHINE, blob)
        .start()
        .await?;
    println!("ready");
    std::io::stdout().flush()?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        Ok(()) = server.removed() => {}
    }
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_snapshot_restore_keep_size_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Blob::open(&dir.path().join("a")).unwrap();
        let ctx = ApplyContext {
            index: 1,
            term: 1,
            timestamp_ms: 0,
        };
        a.apply(&ctx, b"grow 3000000 5").unwrap();
        a.apply(&ctx, b"grow 10 6").unwrap();
        assert!(a.apply(&ctx, b"grow x 6").is_err());
        assert!(a.apply(&ctx, b"grow 1 2 3").is_err());
        assert!(
            a.apply(&ctx, format!("grow {} 1", MAX_GROW_BYTES + 1).as_bytes())
                .is_err()
        );
        let mut snap = Vec::new();
        a.snapshot(&mut snap).unwrap();
        assert_eq!(snap.len(), 3_000_010);
        assert_eq!(crc32c::crc32c(&snap), a.crc);
        let mut b = Blob::open(&dir.path().join("b")).unwrap();
        b.restore(&mut &snap[..]).unwrap();
        assert_eq!(b.query(b"").unwrap(), a.query(b"").unwrap());
        b.apply(&ctx, b"grow 7 9").unwrap();
        a.apply(&ctx, b"grow 7 9").unwrap();
        assert_eq!(b.query(b"").unwrap(), a.query(b"").unwrap());
        assert_eq!(
            blob_dir(Path::new("/x/node1")).unwrap(),
            Path::new("/x/node1-blob")
        );
    }
}
