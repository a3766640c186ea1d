//! Small filesystem helpers shared by the storage modules: directory fsync, atomic file replacement
//! and checksummed small-file framing. No knowledge of journal formats here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::{IoContext, Result, StorageError};

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Creates `dir` (and parents) if needed and fsyncs its parent.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).at(dir)?;
        if let Some(parent) = dir.parent()
            && !parent.as_os_str().is_empty()
        {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Atomically replaces `path` with `bytes`: write `<path>.tmp`, fsync it, rename over `path`,
/// fsync the directory. A crash leaves either the old or the new content, never a mix.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Frames a small file: `magic (4) | body length (u32 LE) | CRC32C of body (u32 LE) | body`.
pub(crate) fn frame(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks a framed small file and returns its body; any mismatch is [`StorageError::CorruptFile`].
pub(crate) fn unframe<'a>(path: &Path, magic: &[u8; 4], bytes: &'a [u8]) -> Result<&'a [u8]> {
    let bad = |why: &str| StorageError::corrupt_file(path, why);
    let head = bytes
        .get(..12)
        .ok_or_else(|| bad("shorter than its 12-byte header"))?;
    if &head[..4] != magic {
        return Err(bad("wrong magic number"));
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let body = bytes.get(12..).ok_or_else(|| bad("truncated"))?;
    if body.len() != len {
        return Err(bad(&format!(
            "body is {} bytes, header says {len}",
            body.len()
        )));
    }
    if crc32c::crc32c(body) != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok(body)
}

/// Reads a whole file, mapping "not found" to `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_detects_damage() {
        let p = Path::new("x");
        let f = frame(b"TEST", b"hello");
        assert_eq!(unframe(p, b"TEST", &f).unwrap(), b"hello");
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(unframe(p, b"TEST", &g).is_err(), "flip at {i} undetected");
        }
        assert!(unframe(p, b"TEST", &f[..f.len() - 1]).is_err());
    }
}
