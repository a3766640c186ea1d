//! The built-in state inside a snapshot's `data` file (`SnapshotData`, postcard), the older
//! layouts it still reads, and opening a retained snapshot's built-in state (the rollback to a
//! snapshot and reads at an index start from it).
//!
//! Each older layout maps to the next one up (`V1 → V2 → … → current`), so a new field costs
//! one struct and one conversion.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::snapshot_file;
use crate::state::cluster_meta::ClusterMeta;
use crate::state::coord::Coordination;
use crate::state::journal_store::JournalStore;
use crate::state::kv::KvSnapshot;
use crate::state::txn::Transactions;
use crate::storage::SnapshotStore;

/// The serialized built-in state of a snapshot.
#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotData {
    /// The KV's one-blob form in formats 1–5; empty from format 6 on, where the KV follows
    /// the blob as a stream.
    pub kv: Vec<u8>,
    pub journal_store: JournalStore,
    /// `(partition, next index)` at the snapshot.
    pub partitions: Vec<(u16, u64)>,
    pub meta: ClusterMeta,
    pub coord: Coordination,
    pub txns: Transactions,
    /// The registered observers (`ClusterMeta::observers`), last so that older blobs decode.
    pub observers: BTreeMap<u64, SocketAddr>,
}

/// Before observers were registered.
#[derive(Serialize, Deserialize)]
struct V4 {
    kv: Vec<u8>,
    journal_store: JournalStore,
    partitions: Vec<(u16, u64)>,
    meta: ClusterMeta,
    coord: Coordination,
    txns: Transactions,
}

/// Before journal transactions existed.
#[derive(Serialize, Deserialize)]
struct V3 {
    kv: Vec<u8>,
    journal_store: JournalStore,
    partitions: Vec<(u16, u64)>,
    meta: ClusterMeta,
    coord: Coordination,
}

/// Before the coordination recipes existed.
#[derive(Serialize, Deserialize)]
struct V2 {
    kv: Vec<u8>,
    journal_store: JournalStore,
    partitions: Vec<(u16, u64)>,
    meta: ClusterMeta,
}

/// Before the cluster metadata existed.
#[derive(Serialize, Deserialize)]
struct V1 {
    kv: Vec<u8>,
    journal_store: JournalStore,
    partitions: Vec<(u16, u64)>,
}

impl From<V1> for V2 {
    fn from(v: V1) -> Self {
        V2 {
            kv: v.kv,
            journal_store: v.journal_store,
            partitions: v.partitions,
            meta: ClusterMeta::default(),
        }
    }
}

impl From<V2> for V3 {
    fn from(v: V2) -> Self {
        V3 {
            kv: v.kv,
            journal_store: v.journal_store,
            partitions: v.partitions,
            meta: v.meta,
            coord: Coordination::default(),
        }
    }
}

impl From<V3> for V4 {
    fn from(v: V3) -> Self {
        V4 {
            kv: v.kv,
            journal_store: v.journal_store,
            partitions: v.partitions,
            meta: v.meta,
            coord: v.coord,
            txns: Transactions::default(),
        }
    }
}

impl From<V4> for SnapshotData {
    fn from(v: V4) -> Self {
        SnapshotData {
            kv: v.kv,
            journal_store: v.journal_store,
            partitions: v.partitions,
            meta: v.meta,
            coord: v.coord,
            txns: v.txns,
            observers: BTreeMap::new(),
        }
    }
}

impl SnapshotData {
    /// Decodes the current layout, else the newest older one that fits.
    pub fn decode(data: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(data).or_else(|e| {
            let v4 = postcard::from_bytes::<V4>(data).or_else(|_| {
                postcard::from_bytes::<V3>(data)
                    .or_else(|_| {
                        postcard::from_bytes::<V2>(data)
                            .or_else(|_| postcard::from_bytes::<V1>(data).map(V2::from))
                            .map(V3::from)
                    })
                    .map(V4::from)
            });
            v4.map(SnapshotData::from).map_err(|_| e)
        })
    }

    /// Reads the built-in state and the KV of a data file of any format, leaving `input` at
    /// the user machines' section.
    pub fn read(input: &mut dyn Read, index: u64) -> Result<BuiltinState, String> {
        let (bytes, sections) = snapshot_file::read_builtin(input)?;
        let mut data =
            Self::decode(&bytes).map_err(|e| format!("undecodable snapshot {index}: {e}"))?;
        drop(bytes);
        let kv = if sections.kv_stream {
            KvSnapshot::read(input)
        } else {
            KvSnapshot::decode(&std::mem::take(&mut data.kv))
        }
        .map_err(|e| format!("snapshot {index}: {e}"))?;
        Ok(BuiltinState {
            data,
            kv,
            has_user: sections.user,
        })
    }

    /// The built-in state of this node's retained snapshot `index`, with the data file left
    /// open at the user machines' section.
    pub fn open(
        snapshots: &SnapshotStore,
        index: u64,
    ) -> Result<(BuiltinState, BufReader<std::fs::File>), String> {
        let path = snapshots
            .open_snapshot(index)
            .map_err(|e| format!("no snapshot {index}: {e}"))?
            .join("data");
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut input = BufReader::with_capacity(1 << 16, file);
        let state = Self::read(&mut input, index)?;
        Ok((state, input))
    }
}

/// What [`SnapshotData::read`] found.
pub(super) struct BuiltinState {
    pub data: SnapshotData,
    pub kv: KvSnapshot,
    /// Whether the user machines' section follows (formats 5 and 6).
    pub has_user: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ClusterMeta {
        ClusterMeta {
            addrs: [(4, "127.0.0.1:7004".parse().unwrap())].into(),
            preferred_leader: Some(4),
            observers: Default::default(),
        }
    }

    fn data(kv: Vec<u8>) -> SnapshotData {
        SnapshotData {
            kv,
            journal_store: JournalStore::new(Default::default()),
            partitions: vec![(0, 5)],
            meta: meta(),
            coord: Coordination::default(),
            txns: Transactions::default(),
            observers: BTreeMap::new(),
        }
    }

    #[test]
    fn the_kv_is_read_from_a_format_6_stream_and_from_a_format_5_blob() {
        use crate::state::ApplyContext;
        use crate::state::kv::{KvCommand, KvLimits, KvQuery, KvQueryResult, KvRequest, KvStore};
        use crate::state::session::SessionLimits;
        let mut kv = KvStore::new(KvLimits::default());
        let ctx = ApplyContext {
            index: 1,
            term: 1,
            timestamp_ms: 0,
        };
        let set = KvRequest {
            id: None,
            command: KvCommand::Set {
                key: "k".into(),
                value: b"v".to_vec(),
            },
        };
        kv.apply_request(&ctx, &set).unwrap();
        let user =
            super::super::user_machines::UserMachines::new(Vec::new(), SessionLimits::default());
        let v6 = {
            let mut out = Vec::new();
            let builtin = postcard::to_allocvec(&data(Vec::new())).unwrap();
            snapshot_file::write(&mut out, &builtin, &kv, &user).unwrap();
            out
        };
        let v5 = {
            // Format 5: the KV's one-blob form inside the built-in blob, then the user section.
            let mut blob = Vec::new();
            kv.write_snapshot(&mut blob).unwrap();
            let snap = KvSnapshot::read(&mut &blob[..]).unwrap();
            let builtin =
                postcard::to_allocvec(&data(postcard::to_allocvec(&snap).unwrap())).unwrap();
            let mut out = b"JKSNAP05".to_vec();
            out.extend_from_slice(&(builtin.len() as u64).to_le_bytes());
            out.extend_from_slice(&builtin);
            user.write_section(&mut out).unwrap();
            out
        };
        for file in [v6, v5] {
            let mut input = &file[..];
            let state = SnapshotData::read(&mut input, 1).unwrap();
            assert!(state.has_user);
            assert!(
                state.data.kv.is_empty(),
                "the blob is taken, not kept twice"
            );
            let mut back = KvStore::new(KvLimits::default());
            back.install(state.kv);
            let get = KvQuery::Get { key: "k".into() };
            assert_eq!(
                back.read(&get).unwrap(),
                KvQueryResult::Value(Some(b"v".to_vec()))
            );
            let mut fresh = super::super::user_machines::UserMachines::new(
                Vec::new(),
                SessionLimits::default(),
            );
            fresh.read_section(&mut input, false).unwrap();
            assert!(input.is_empty());
        }
    }

    #[test]
    fn the_current_layout_round_trips() {
        let data = SnapshotData {
            kv: vec![1, 2],
            journal_store: JournalStore::new(Default::default()),
            partitions: vec![(0, 5)],
            meta: meta(),
            coord: Coordination::default(),
            txns: Transactions::new(crate::state::txn::TxnLimits {
                max_open: 3,
                ..Default::default()
            }),
            observers: [(9, "127.0.0.1:7009".parse().unwrap())].into(),
        };
        let bytes = postcard::to_allocvec(&data).unwrap();
        let back = SnapshotData::decode(&bytes).unwrap();
        assert_eq!(
            (back.kv, back.partitions, back.meta.clone()),
            (vec![1, 2], vec![(0, 5)], meta())
        );
        assert_eq!(back.txns.limits().max_open, 3);
        assert_eq!(back.observers, data.observers);
    }

    #[test]
    fn every_older_layout_still_decodes() {
        let js = || JournalStore::new(Default::default());
        let v4 = postcard::to_allocvec(&V4 {
            kv: vec![3],
            journal_store: js(),
            partitions: vec![],
            meta: meta(),
            coord: Coordination::default(),
            txns: Transactions::default(),
        })
        .unwrap();
        let back = SnapshotData::decode(&v4).unwrap();
        assert_eq!((back.kv, back.meta.clone()), (vec![3], meta()));
        assert!(back.observers.is_empty());

        let v3 = postcard::to_allocvec(&V3 {
            kv: vec![5],
            journal_store: js(),
            partitions: vec![(1, 1)],
            meta: meta(),
            coord: Coordination::default(),
        })
        .unwrap();
        let back = SnapshotData::decode(&v3).unwrap();
        assert_eq!((back.kv, back.meta.clone()), (vec![5], meta()));
        assert_eq!(back.txns, Transactions::default());

        let v2 = postcard::to_allocvec(&V2 {
            kv: vec![4],
            journal_store: js(),
            partitions: vec![(2, 3)],
            meta: meta(),
        })
        .unwrap();
        let back = SnapshotData::decode(&v2).unwrap();
        assert_eq!((back.kv, back.meta), (vec![4], meta()));
        assert_eq!(back.coord, Coordination::default());

        let v1 = postcard::to_allocvec(&V1 {
            kv: vec![3],
            journal_store: js(),
            partitions: vec![(1, 9)],
        })
        .unwrap();
        let back = SnapshotData::decode(&v1).unwrap();
        assert_eq!(
            (back.kv, back.partitions, back.meta),
            (vec![3], vec![(1, 9)], ClusterMeta::default())
        );
        assert!(SnapshotData::decode(&[0xff; 3]).is_err());
    }
}
