//! The snapshots this node retains, as `ListSnapshots` reports them, and the check a
//! `RecoverSnapshot` must pass on the leader.

use super::Driver;
use super::errors::invalid;
use crate::api::Error;
use crate::client::protocol::SnapshotInfo;
use crate::raft::SnapshotMeta;

impl Driver {
    /// Every retained snapshot, oldest first (one that cannot be read is left out, logged).
    pub(super) fn snapshot_infos(&self) -> Vec<SnapshotInfo> {
        let store = &self.snapshot_store;
        let Ok(list) = store.list() else {
            return Vec::new();
        };
        list.into_iter()
            .filter_map(|index| {
                let dir = store.open_snapshot(index).ok()?;
                let meta: SnapshotMeta = postcard::from_bytes(&std::fs::read(dir.join("meta")).ok()?)
                    .map_err(|e| {
                        tracing::warn!(node = self.cfg.node_id, index, reason = %e, "unreadable snapshot meta");
                    })
                    .ok()?;
                let size_bytes = std::fs::read_dir(&dir)
                    .ok()?
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                let time_ms = std::fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64);
                Some(SnapshotInfo {
                    index,
                    term: meta.term,
                    time_ms,
                    size_bytes,
                })
            })
            .collect()
    }

    pub(super) fn check_recoverable(&self, index: u64) -> Result<(), Error> {
        let retained: Vec<u64> = self.snapshot_infos().iter().map(|s| s.index).collect();
        if retained.contains(&index) {
            Ok(())
        } else {
            Err(invalid(format!(
                "snapshot {index} is not retained on the leader (node {}); it retains {retained:?}",
                self.cfg.node_id
            )))
        }
    }
}
