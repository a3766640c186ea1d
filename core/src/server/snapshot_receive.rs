//! The file an incoming snapshot is assembled in, on the storage writer: each chunk the raft
//! core accepted is appended to a staging file of the snapshot store (so a node's memory never
//! grows with the snapshot), and the install fsyncs it and hands it to `save_snapshot` to be
//! renamed into the snapshot's directory. A crash mid-transfer leaves only a staging file,
//! which `SnapshotStore::open` removes: it is never taken for a snapshot.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use crate::raft::{SnapshotChunk, SnapshotMeta};
use crate::storage::{SnapshotStore, StorageError};

/// The snapshot being received.
pub(crate) struct Receiving {
    meta: SnapshotMeta,
    path: PathBuf,
    file: File,
    len: u64,
}

/// The incoming snapshot of one node, if any.
#[derive(Default)]
pub(crate) struct Incoming(Option<Receiving>);

impl Incoming {
    /// Appends `chunk`; offset 0 starts a new file (removing any other one being received).
    /// `max_bytes` bounds the size of a received snapshot.
    pub fn write(
        &mut self,
        store: &SnapshotStore,
        chunk: &SnapshotChunk,
        max_bytes: u64,
    ) -> Result<(), StorageError> {
        if chunk.offset == 0 {
            self.discard();
            let path = store.receiving_file(chunk.meta.index);
            let file = File::create(&path).map_err(|e| StorageError::io(&path, e))?;
            self.0 = Some(Receiving {
                meta: chunk.meta.clone(),
                path,
                file,
                len: 0,
            });
        }
        let Some(r) = self.0.as_mut().filter(|r| r.meta == chunk.meta) else {
            return Err(StorageError::InvalidArgument(format!(
                "snapshot chunk of {} at offset {} without its start",
                chunk.meta.index, chunk.offset
            )));
        };
        if r.len != chunk.offset {
            return Err(StorageError::InvalidArgument(format!(
                "snapshot chunk of {} at offset {}, file {} holds {} bytes",
                chunk.meta.index,
                chunk.offset,
                r.path.display(),
                r.len
            )));
        }
        let len = r.len.saturating_add(chunk.data.len() as u64);
        if len > max_bytes {
            let index = r.meta.index;
            self.discard();
            return Err(StorageError::InvalidArgument(format!(
                "incoming snapshot {index} exceeds snapshot_max_bytes ({max_bytes})"
            )));
        }
        r.file
            .write_all(&chunk.data)
            .map_err(|e| StorageError::io(&r.path, e))?;
        r.len = len;
        Ok(())
    }

    /// Ends the transfer of `meta`: the file, fsynced, for `save_snapshot` to take in.
    pub fn finish(&mut self, meta: &SnapshotMeta) -> Result<PathBuf, StorageError> {
        match self.0.take() {
            Some(r) if r.meta == *meta => {
                r.file
                    .sync_all()
                    .map_err(|e| StorageError::io(&r.path, e))?;
                Ok(r.path)
            }
            other => {
                self.0 = other;
                self.discard();
                Err(StorageError::InvalidArgument(format!(
                    "install of snapshot {} that was not received",
                    meta.index
                )))
            }
        }
    }

    /// Drops the file being received, if any.
    pub fn discard(&mut self) {
        if let Some(r) = self.0.take() {
            drop(r.file);
            let _ = std::fs::remove_file(&r.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u64, offset: u64, data: &[u8]) -> SnapshotChunk {
        SnapshotChunk {
            meta: SnapshotMeta {
                index,
                term: 1,
                ..SnapshotMeta::default()
            },
            offset,
            data: data.to_vec(),
        }
    }

    #[test]
    fn chunks_are_appended_in_order_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let mut inc = Incoming::default();
        inc.write(&store, &chunk(5, 0, b"abc"), 100).unwrap();
        inc.write(&store, &chunk(5, 3, b"de"), 100).unwrap();
        assert!(inc.write(&store, &chunk(5, 9, b"x"), 100).is_err());
        assert!(inc.write(&store, &chunk(6, 5, b"x"), 100).is_err());
        let path = inc.finish(&chunk(5, 0, b"").meta).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        // Restarted at 0, then too big: the file is gone.
        inc.write(&store, &chunk(7, 0, b"abc"), 4).unwrap();
        assert!(inc.write(&store, &chunk(7, 3, b"de"), 4).is_err());
        assert!(!store.receiving_file(7).exists());
        assert!(inc.finish(&chunk(7, 0, b"").meta).is_err());
        // A restart removes a half-received file.
        inc.write(&store, &chunk(8, 0, b"abc"), 100).unwrap();
        drop(store);
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert!(!store.receiving_file(8).exists());
        assert_eq!(store.list().unwrap(), Vec::<u64>::new());
    }
}
