//! Snapshot directories, one per log index: `<dir>/<index:020>/`. Creation is atomic: the
//! contents are built in `<dir>/tmp-<index:020>/`, every file and the directory are fsynced, then
//! the directory is renamed into place and the parent fsynced. Leftover temp dirs from a crash
//! are removed on open. What goes inside a snapshot is the caller's business.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{IoContext, Result, StorageError};
use super::fsutil;

const TMP_PREFIX: &str = "tmp-";
const STAGING_PREFIX: &str = "staging-";

/// The snapshot directories under one parent directory.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

fn parse_index(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

impl SnapshotStore {
    /// Opens (creating) the store and removes temp dirs left by an interrupted `create` and
    /// staging files of snapshots that were never saved.
    pub fn open(dir: impl AsRef<Path>) -> Result<SnapshotStore> {
        let dir = dir.as_ref().to_path_buf();
        fsutil::ensure_dir(&dir)?;
        let mut removed = false;
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            let p = entry.path();
            if name.starts_with(TMP_PREFIX) {
                tracing::warn!(dir = %p.display(), "removing incomplete snapshot");
                fs::remove_dir_all(&p).at(&p)?;
                removed = true;
            } else if name.starts_with(STAGING_PREFIX) {
                tracing::info!(file = %p.display(), "removing a snapshot file never saved");
                fs::remove_file(&p).at(&p)?;
                removed = true;
            }
        }
        if removed {
            fsutil::sync_dir(&dir)?;
        }
        Ok(SnapshotStore { dir })
    }

    /// Where a snapshot of `index` is written before [`SnapshotStore::create`] takes it in
    /// (same file system, so taking it in is a rename); removed on open if never taken.
    pub fn staging_file(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{STAGING_PREFIX}{index:020}.data"))
    }

    /// Where an incoming snapshot of `index` is assembled from its chunks before
    /// [`SnapshotStore::create`] takes it in; removed on open if never taken.
    pub fn receiving_file(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{STAGING_PREFIX}{index:020}.recv"))
    }

    fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{index:020}"))
    }

    /// Creates the snapshot for `index`: `fill` writes its files into the given (temporary)
    /// directory; the snapshot becomes visible, complete and durable, only once `fill` succeeds.
    pub fn create<F>(&self, index: u64, fill: F) -> Result<PathBuf>
    where
        F: FnOnce(&Path) -> std::io::Result<()>,
    {
        let fin = self.path_of(index);
        if fin.exists() {
            return Err(StorageError::InvalidArgument(format!(
                "snapshot {index} already exists at {}",
                fin.display()
            )));
        }
        let tmp = self.dir.join(format!("{TMP_PREFIX}{index:020}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        fs::create_dir(&tmp).at(&tmp)?;
        if let Err(e) = fill(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(StorageError::io(&tmp, e));
        }
        sync_tree(&tmp)?;
        fs::rename(&tmp, &fin).at(&fin)?;
        fsutil::sync_dir(&self.dir)?;
        Ok(fin)
    }

    /// Indices of the complete snapshots, ascending.
    pub fn list(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let entry = entry.at(&self.dir)?;
            if let Some(ix) = entry.file_name().to_str().and_then(parse_index) {
                out.push(ix);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The newest snapshot index, if any.
    pub fn latest(&self) -> Result<Option<u64>> {
        Ok(self.list()?.last().copied())
    }

    /// The directory of snapshot `index`.
    pub fn open_snapshot(&self, index: u64) -> Result<PathBuf> {
        let p = self.path_of(index);
        if p.is_dir() {
            Ok(p)
        } else {
            Err(StorageError::NotFound(format!(
                "snapshot {index} in {}",
                self.dir.display()
            )))
        }
    }

    /// Deletes snapshot `index`; durable on return.
    pub fn delete(&self, index: u64) -> Result<()> {
        let p = self.open_snapshot(index)?;
        // Rename first so a crash never leaves a half-deleted directory that looks complete.
        let doomed = self.dir.join(format!("{TMP_PREFIX}{index:020}-deleting"));
        fs::rename(&p, &doomed).at(&p)?;
        fsutil::sync_dir(&self.dir)?;
        fs::remove_dir_all(&doomed).at(&doomed)?;
        fsutil::sync_dir(&self.dir)
    }
}

/// Fsyncs every file and directory under `dir` (the directory last).
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let p = entry.path();
        let ft = entry.file_type().at(&p)?;
        if ft.is_dir() {
            sync_tree(&p)?;
        } else if ft.is_file() {
            fs::File::open(&p).and_then(|f| f.sync_all()).at(&p)?;
        }
    }
    fsutil::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_open_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(store.list().unwrap(), Vec::<u64>::new());
        store
            .create(10, |d| fs::write(d.join("state"), b"ten"))
            .unwrap();
        store
            .create(20, |d| fs::write(d.join("state"), b"twenty"))
            .unwrap();
        assert!(store.create(20, |_| Ok(())).is_err());
        let failed = store.create(30, |_| Err(std::io::Error::other("boom")));
        assert!(failed.is_err());
        assert_eq!(store.list().unwrap(), vec![10, 20]);
        assert_eq!(store.latest().unwrap(), Some(20));
        assert_eq!(
            fs::read(store.open_snapshot(10).unwrap().join("state")).unwrap(),
            b"ten"
        );
        store.delete(10).unwrap();
        assert!(matches!(
            store.open_snapshot(10),
            Err(StorageError::NotFound(_))
        ));
        assert_eq!(store.list().unwrap(), vec![20]);
    }

    #[test]
    fn leftover_temp_dirs_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("tmp-00000000000000000005")).unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(store.list().unwrap(), Vec::<u64>::new());
        assert!(!dir.path().join("tmp-00000000000000000005").exists());
    }
}
