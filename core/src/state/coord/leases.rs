//! The lease table: which leases exist, their TTL, and what each holds (attached KV keys, places
//! in lock / election queues, group memberships), so ending a lease releases all of it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::QueueKind;

/// One lease and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub ttl_ms: u64,
    /// KV keys removed when the lease ends.
    pub keys: BTreeSet<String>,
    /// Locks and elections it holds or waits for.
    pub places: BTreeSet<(QueueKind, String)>,
    /// `(group, member)` registrations.
    pub memberships: BTreeSet<(String, String)>,
}

impl LeaseInfo {
    pub fn holdings(&self) -> usize {
        self.keys.len() + self.places.len() + self.memberships.len()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Leases {
    leases: BTreeMap<u64, LeaseInfo>,
    /// Attached key → its lease.
    key_lease: BTreeMap<String, u64>,
    version: u64,
}

impl Leases {
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &LeaseInfo)> {
        self.leases.iter().map(|(id, info)| (*id, info))
    }

    pub fn get(&self, lease: u64) -> Option<&LeaseInfo> {
        self.leases.get(&lease)
    }

    pub fn grant(&mut self, lease: u64, ttl_ms: u64) {
        self.leases.insert(
            lease,
            LeaseInfo {
                ttl_ms,
                ..LeaseInfo::default()
            },
        );
        self.version += 1;
    }

    /// Removes the lease (its keys are detached); the caller releases what it held.
    pub fn remove(&mut self, lease: u64) -> Option<LeaseInfo> {
        let info = self.leases.remove(&lease)?;
        for key in &info.keys {
            self.key_lease.remove(key);
        }
        self.version += 1;
        Some(info)
    }

    /// Attaches `key` to `lease` (which exists); returns the lease it was attached to before.
    pub fn attach_key(&mut self, key: &str, lease: u64) -> Option<u64> {
        let old = self.key_lease.insert(key.to_string(), lease);
        if let Some(old) = old.filter(|old| *old != lease)
            && let Some(info) = self.leases.get_mut(&old)
        {
            info.keys.remove(key);
        }
        if let Some(info) = self.leases.get_mut(&lease) {
            info.keys.insert(key.to_string());
        }
        old.filter(|old| *old != lease)
    }

    pub fn detach_key(&mut self, key: &str) {
        if let Some(lease) = self.key_lease.remove(key)
            && let Some(info) = self.leases.get_mut(&lease)
        {
            info.keys.remove(key);
        }
    }

    pub fn hold_place(&mut self, lease: u64, kind: QueueKind, name: &str) {
        if let Some(info) = self.leases.get_mut(&lease) {
            info.places.insert((kind, name.to_string()));
        }
    }

    pub fn drop_place(&mut self, lease: u64, kind: QueueKind, name: &str) {
        if let Some(info) = self.leases.get_mut(&lease) {
            info.places.remove(&(kind, name.to_string()));
        }
    }

    pub fn hold_membership(&mut self, lease: u64, id: (String, String)) {
        if let Some(info) = self.leases.get_mut(&lease) {
            info.memberships.insert(id);
        }
    }

    pub fn drop_membership(&mut self, lease: u64, id: &(String, String)) {
        if let Some(info) = self.leases.get_mut(&lease) {
            info.memberships.remove(id);
        }
    }
}
