//! Raft's hard state on disk: current term, vote and cluster configuration (opaque bytes, the
//! raft module defines the type). One small checksummed file, replaced atomically (temp file,
//! fsync, rename, fsync directory); a damaged file is an error, never silently reset.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use super::fsutil;

const FILE_NAME: &str = "metadata";
const MAGIC: &[u8; 4] = b"JKMD";

/// The persisted hard state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Current term.
    pub term: u64,
    /// Node voted for in `term`, if any.
    pub voted_for: Option<u64>,
    /// Cluster configuration, encoded by the raft layer.
    pub config: Vec<u8>,
}

/// The metadata file in a directory.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
}

impl MetadataStore {
    /// Opens the store in `dir` (created if needed) and returns the saved metadata, if any.
    pub fn open(dir: impl AsRef<Path>) -> Result<(MetadataStore, Option<Metadata>)> {
        let dir = dir.as_ref();
        fsutil::ensure_dir(dir)?;
        let store = MetadataStore {
            path: dir.join(FILE_NAME),
        };
        let loaded = store.load()?;
        Ok((store, loaded))
    }

    /// Path of the metadata file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved metadata; `None` when never saved.
    pub fn load(&self) -> Result<Option<Metadata>> {
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            return Ok(None);
        };
        let body = fsutil::unframe(&self.path, MAGIC, &bytes)?;
        postcard::from_bytes(body).map(Some).map_err(|e| {
            StorageError::corrupt_file(&self.path, format!("undecodable metadata: {e}"))
        })
    }

    /// Atomically replaces the saved metadata; durable on return.
    pub fn save(&self, meta: &Metadata) -> Result<()> {
        let body = postcard::to_allocvec(meta)
            .map_err(|e| StorageError::InvalidArgument(format!("metadata not encodable: {e}")))?;
        fsutil::atomic_write(&self.path, &fsutil::frame(MAGIC, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_reopen_returns_the_last_saved_value() {
        let dir = tempfile::tempdir().unwrap();
        let (store, none) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(none, None);
        let m1 = Metadata {
            term: 3,
            voted_for: Some(2),
            config: vec![1, 2, 3],
        };
        store.save(&m1).unwrap();
        let m2 = Metadata {
            term: 4,
            voted_for: None,
            config: vec![],
        };
        store.save(&m2).unwrap();
        let (_, loaded) = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(loaded, Some(m2));
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = MetadataStore::open(dir.path()).unwrap();
        store
            .save(&Metadata {
                term: 9,
                voted_for: Some(1),
                config: vec![7; 10],
            })
            .unwrap();
        let mut bytes = std::fs::read(store.path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(store.path(), bytes).unwrap();
        let err = MetadataStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::CorruptFile { .. }));
        assert!(err.to_string().contains("metadata"), "{err}");
    }
}
