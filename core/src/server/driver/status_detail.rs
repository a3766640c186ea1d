//! The detailed status (`StatusDetail`, the HTTP `/status` and the scrape's gauges): the raft
//! and driver part is taken in the pass that asked, the state-machine and disk part on a
//! blocking thread (it takes the state-machine lock and calls statvfs), which then answers.

use std::path::Path;

use tokio::sync::oneshot;

use super::{Conn, Driver, reply};
use crate::client::protocol::{DiskUsage, FollowerStatus, NodeDetail, NodeStatus, ReplyBody};
use crate::server::read::partition_bounds;

/// A local ask for the detailed status (the HTTP endpoint's).
pub(crate) type StatusQuery = oneshot::Sender<NodeStatus>;

/// Who gets a detailed status.
pub(super) enum StatusTo {
    /// A client's `StatusDetail` request.
    Client {
        conn: Conn,
        req: u64,
    },
    Local(StatusQuery),
}

impl Driver {
    fn detail_now(&self) -> NodeDetail {
        let s = self.raft.status();
        let now = self.now();
        let ago = |t: u64| now.saturating_sub(t);
        NodeDetail {
            first_index: s.first_index,
            durable_index: self.durable,
            preferred_leader: self.raft.preferred_leader(),
            partitions: Vec::new(),
            disk: None,
            leader_last_heard_ms: self.raft.leader_heard_at().map(ago),
            followers: self
                .raft
                .follower_progress()
                .into_iter()
                .map(|p| FollowerStatus {
                    node_id: p.id,
                    next_index: p.next,
                    match_index: p.matched,
                    lag: s.last_index.saturating_sub(p.matched),
                    last_heard_ms: ago(p.last_heard),
                })
                .collect(),
        }
    }

    /// Builds the detailed status and hands it to `to` once the blocking part is done.
    pub(super) fn detailed_status(&self, to: StatusTo) {
        let mut status = self.node_status();
        let resources = self.resources();
        status.resources = Some(resources);
        let mut detail = self.detail_now();
        let machines = self.machines.clone();
        let dir = self.cfg.data_dir.clone();
        let applied = self.applied();
        tokio::task::spawn_blocking(move || {
            detail.partitions = {
                let m = machines.lock().unwrap_or_else(|p| p.into_inner());
                partition_bounds(&m)
            };
            detail.disk = disk_usage(&dir);
            match to {
                StatusTo::Client { conn, req } => {
                    let body = ReplyBody::StatusDetail {
                        status: Box::new(status),
                        resources,
                        detail: Box::new(detail),
                    };
                    reply(&conn, req, Ok(body), applied);
                }
                StatusTo::Local(tx) => {
                    status.detail = Some(Box::new(detail));
                    // The asker may have given up (timeout): nothing to do then.
                    let _ = tx.send(status);
                }
            }
        });
    }
}

/// The filesystem holding `dir`: total, used and available bytes (statvfs); `None` when it
/// cannot be asked (logged at debug).
pub(crate) fn disk_usage(dir: &Path) -> Option<DiskUsage> {
    match rustix::fs::statvfs(dir) {
        Ok(v) => {
            let block = v.f_frsize.max(1);
            let total = v.f_blocks.saturating_mul(block);
            let free = v.f_bfree.saturating_mul(block);
            Some(DiskUsage {
                path: dir.display().to_string(),
                total_bytes: total,
                used_bytes: total.saturating_sub(free),
                free_bytes: v.f_bavail.saturating_mul(block),
            })
        }
        Err(e) => {
            tracing::debug!(dir = %dir.display(), reason = %e, "statvfs failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_measures_the_filesystem_of_an_existing_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        let u = disk_usage(dir.path()).expect("statvfs of a temp dir");
        assert_eq!(u.path, dir.path().display().to_string());
        assert!(u.total_bytes > 0);
        assert!(u.used_bytes <= u.total_bytes && u.free_bytes <= u.total_bytes);
        assert_eq!(disk_usage(&dir.path().join("missing")), None);
    }
}
