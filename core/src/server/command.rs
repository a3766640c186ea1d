//! What the server puts in the raft log, and how a log entry maps to a storage record.
//!
//! A record's payload starts with a one-byte tag:
//! - `0` Noop (raft's term-start entry), payload `[0]`;
//! - `1` Config, payload `[1] ++ postcard(Membership)`;
//! - `2` journal entry, `3` KV write, `4` partition scaling, `5` cluster metadata (member
//!   addresses, preferred leader: [`MetaCommand`]), `6` snapshot commands
//!   ([`SnapshotCommand`]: every node snapshots at this entry, or rolls its state back), `7`
//!   coordination writes ([`CoordRequest`]: leases, locks, elections, IDs, liveness), `8`
//!   journal transaction writes ([`TxnRequest`]), `9` a committed transaction's publish record
//!   (`server::txn_record`; it places its entries in their partitions), `10` a user state
//!   machine update ([`UserCommand`]): raft `EntryKind::Normal(data)`
//!   with the record payload = `data` verbatim (the server only proposes data it encoded, so a
//!   Normal entry never starts with `0` or `1`).
//!
//! A journal entry's data starts with a fixed header the storage adapter reads without a full
//! decode, so the record lands in its journal partition (served by `PartitionIndex`):
//! ```text
//! off size field
//!   0    1  tag = 2
//!   1    2  partition      u16 LE (< RESERVED_PARTITION_START)
//!   3    2  batch_size     u16 LE (entries of the client append)
//!   5    2  offset         u16 LE (0-based position in the batch)
//!   7    8  timestamp_ms   u64 LE (leader-assigned, never decreasing)
//!  15    8  client_id      u64 LE  \
//!  23    8  seq            u64 LE   } the append's session (RequestId); all zero = none
//!  31    8  first_unacked  u64 LE  /
//!  39    n  payload
//! ```
//! Every other record is stored in [`SYSTEM_PARTITION`] with batch size 1 and timestamp 0.
//! Partitions `RESERVED_PARTITION_START..` are reserved (as in the original: ≥ 30000), so a
//! client can never read or write system records as journal entries.

use std::collections::BTreeSet;

use crate::raft::{Entry, EntryKind, Membership};
use crate::state::cluster_meta::MetaCommand;
use crate::state::coord::CoordRequest;
use crate::state::kv::KvRequest;
use crate::state::session::RequestId;
use crate::state::txn::TxnRequest;
use crate::storage::Record;

use super::user_machines::UserCommand;

/// First partition number reserved for the system; clients use `0..RESERVED_PARTITION_START`.
pub const RESERVED_PARTITION_START: u16 = 30_000;
/// The partition of every record that is not a journal entry.
pub const SYSTEM_PARTITION: u16 = u16::MAX;

pub const TAG_NOOP: u8 = 0;
pub const TAG_CONFIG: u8 = 1;
pub const TAG_JOURNAL: u8 = 2;
pub const TAG_KV: u8 = 3;
pub const TAG_SCALE: u8 = 4;
pub const TAG_META: u8 = 5;
pub const TAG_SNAPSHOT: u8 = 6;
pub const TAG_COORD: u8 = 7;
pub const TAG_TXN: u8 = 8;
pub const TAG_TXN_PUBLISH: u8 = 9;
pub const TAG_USER: u8 = 10;

/// Length of the journal entry header.
pub const JOURNAL_HEADER_LEN: usize = 39;

/// The fixed header of a journal entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    pub partition: u16,
    pub batch_size: u16,
    pub offset: u16,
    pub timestamp_ms: u64,
    pub session: Option<RequestId>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)?.try_into().ok().map(u16::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes)
}

impl JournalHeader {
    /// Encodes the header followed by `payload`.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(JOURNAL_HEADER_LEN + payload.len());
        out.push(TAG_JOURNAL);
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.batch_size.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        let s = self.session.unwrap_or(RequestId {
            client_id: 0,
            seq: 0,
            first_unacked: 0,
        });
        out.extend_from_slice(&s.client_id.to_le_bytes());
        out.extend_from_slice(&s.seq.to_le_bytes());
        out.extend_from_slice(&s.first_unacked.to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Decodes the header of journal entry data; `None` if `data` is not one.
    pub fn decode(data: &[u8]) -> Option<(JournalHeader, &[u8])> {
        if data.first() != Some(&TAG_JOURNAL) || data.len() < JOURNAL_HEADER_LEN {
            return None;
        }
        let client_id = u64_at(data, 15)?;
        let seq = u64_at(data, 23)?;
        let first_unacked = u64_at(data, 31)?;
        let session = (seq != 0).then_some(RequestId {
            client_id,
            seq,
            first_unacked,
        });
        Some((
            JournalHeader {
                partition: u16_at(data, 1)?,
                batch_size: u16_at(data, 3)?,
                offset: u16_at(data, 5)?,
                timestamp_ms: u64_at(data, 7)?,
                session,
            },
            &data[JOURNAL_HEADER_LEN..],
        ))
    }
}

/// The log entries of one append request: `batches` (one for `Append`, several for
/// `AppendBatches`) appended contiguously to `partition`, each keeping its own batch identity
/// (`batch_size` = its length, `offset` = the position in it). Only the very first entry
/// carries `session`: the apply thread answers the request (and records its session) at that
/// entry. The caller has checked the bounds (each batch at most `u16::MAX` entries).
pub fn journal_datas(
    partition: u16,
    batches: &[&[Vec<u8>]],
    session: RequestId,
    timestamp_ms: u64,
) -> Vec<Vec<u8>> {
    let mut datas = Vec::with_capacity(batches.iter().map(|b| b.len()).sum());
    for batch in batches {
        let batch_size = u16::try_from(batch.len()).unwrap_or(u16::MAX);
        for (offset, payload) in batch.iter().enumerate() {
            let header = JournalHeader {
                partition,
                batch_size,
                offset: u16::try_from(offset).unwrap_or(u16::MAX),
                timestamp_ms,
                session: datas.is_empty().then_some(session),
            };
            datas.push(header.encode(payload));
        }
    }
    datas
}

/// A decoded Normal entry.
#[derive(Debug)]
pub enum Command<'a> {
    Journal(JournalHeader, &'a [u8]),
    Kv(KvRequest),
    Scale {
        partitions: BTreeSet<u16>,
        session: RequestId,
    },
    Meta(MetaCommand),
    Snapshot(SnapshotCommand),
    Coord(CoordRequest),
    Txn(TxnRequest),
    /// The publish record of transaction `tx` (its entries are placed by the record itself).
    TxnPublish {
        tx: u64,
    },
    /// An update of a user state machine.
    User(UserCommand),
}

/// What a snapshot entry asks of every node when it applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SnapshotCommand {
    /// Take a snapshot of the state at this entry (the seed's CREATE_SNAPSHOT).
    Take,
    /// Roll the state machines back to the retained snapshot at `index` (the seed's
    /// `recoverSnapshot`).
    Recover { index: u64 },
}

pub fn encode_snapshot_command(cmd: SnapshotCommand) -> Vec<u8> {
    let mut out = vec![TAG_SNAPSHOT];
    out.extend(postcard::to_allocvec(&cmd).unwrap_or_default());
    out
}

/// Whether `entry` is a `SnapshotCommand::Take` (checked without a full decode elsewhere).
pub fn is_take_snapshot(entry: &Entry) -> bool {
    matches!(&entry.kind, EntryKind::Normal(d)
        if d.first() == Some(&TAG_SNAPSHOT)
            && matches!(decode(d), Ok(Command::Snapshot(SnapshotCommand::Take))))
}

pub fn encode_meta(cmd: &MetaCommand) -> Vec<u8> {
    let mut out = vec![TAG_META];
    out.extend(postcard::to_allocvec(cmd).unwrap_or_default());
    out
}

/// Encodes a KV write.
pub fn encode_kv(request: &KvRequest) -> Vec<u8> {
    let mut out = vec![TAG_KV];
    // A KvRequest is plain data; postcard cannot fail on it.
    out.extend(postcard::to_allocvec(request).unwrap_or_default());
    out
}

/// Encodes a coordination write (leases, locks, elections, IDs, liveness).
pub fn encode_coord(request: &CoordRequest) -> Vec<u8> {
    let mut out = vec![TAG_COORD];
    out.extend(postcard::to_allocvec(request).unwrap_or_default());
    out
}

/// Encodes a partition scaling.
/// Encodes a journal transaction write.
pub fn encode_txn(request: &TxnRequest) -> Vec<u8> {
    let mut out = vec![TAG_TXN];
    out.extend(postcard::to_allocvec(request).unwrap_or_default());
    out
}

/// Encodes a user state machine update.
pub fn encode_user(command: &UserCommand) -> Vec<u8> {
    let mut out = vec![TAG_USER];
    out.extend(postcard::to_allocvec(command).unwrap_or_default());
    out
}

pub fn encode_scale(partitions: &BTreeSet<u16>, session: RequestId) -> Vec<u8> {
    let mut out = vec![TAG_SCALE];
    out.extend(postcard::to_allocvec(&(partitions, session)).unwrap_or_default());
    out
}

/// Decodes Normal entry data; `Err` names what is wrong (never panics).
pub fn decode(data: &[u8]) -> Result<Command<'_>, String> {
    match data.first() {
        Some(&TAG_JOURNAL) => JournalHeader::decode(data)
            .map(|(h, p)| Command::Journal(h, p))
            .ok_or_else(|| "journal entry shorter than its header".to_string()),
        Some(&TAG_KV) => postcard::from_bytes(&data[1..])
            .map(Command::Kv)
            .map_err(|e| format!("undecodable kv write: {e}")),
        Some(&TAG_SCALE) => postcard::from_bytes::<(BTreeSet<u16>, RequestId)>(&data[1..])
            .map(|(partitions, session)| Command::Scale {
                partitions,
                session,
            })
            .map_err(|e| format!("undecodable partition scaling: {e}")),
        Some(&TAG_META) => postcard::from_bytes(&data[1..])
            .map(Command::Meta)
            .map_err(|e| format!("undecodable cluster metadata: {e}")),
        Some(&TAG_SNAPSHOT) => postcard::from_bytes(&data[1..])
            .map(Command::Snapshot)
            .map_err(|e| format!("undecodable snapshot command: {e}")),
        Some(&TAG_COORD) => postcard::from_bytes(&data[1..])
            .map(Command::Coord)
            .map_err(|e| format!("undecodable coordination write: {e}")),
        Some(&TAG_TXN) => postcard::from_bytes(&data[1..])
            .map(Command::Txn)
            .map_err(|e| format!("undecodable transaction write: {e}")),
        Some(&TAG_USER) => postcard::from_bytes(&data[1..])
            .map(Command::User)
            .map_err(|e| format!("undecodable state machine update: {e}")),
        Some(&TAG_TXN_PUBLISH) => super::txn_record::publish_tx(data)
            .map(|tx| Command::TxnPublish { tx })
            .ok_or_else(|| "transaction publish record shorter than its header".to_string()),
        Some(t) => Err(format!("unknown command tag {t}")),
        None => Err("empty command".to_string()),
    }
}

/// The storage record of a raft entry.
pub fn entry_to_record(e: &Entry) -> Record {
    let (partition, batch_size, timestamp_ms, payload) = match &e.kind {
        EntryKind::Noop => (SYSTEM_PARTITION, 1, 0, vec![TAG_NOOP]),
        EntryKind::Config(m) => {
            let mut p = vec![TAG_CONFIG];
            p.extend(postcard::to_allocvec(m).unwrap_or_default());
            (SYSTEM_PARTITION, 1, 0, p)
        }
        EntryKind::Normal(data) => match JournalHeader::decode(data) {
            Some((h, _)) => (h.partition, h.batch_size, h.timestamp_ms, data.clone()),
            None => (SYSTEM_PARTITION, 1, 0, data.clone()),
        },
    };
    Record {
        term: e.term,
        index: e.index,
        partition,
        batch_size,
        timestamp_ms,
        payload,
    }
}

/// The raft entry of a storage record; `Err` for a record no server wrote.
pub fn record_to_entry(r: Record) -> Result<Entry, String> {
    let kind = match r.payload.first() {
        Some(&TAG_NOOP) => EntryKind::Noop,
        Some(&TAG_CONFIG) => EntryKind::Config(
            postcard::from_bytes::<Membership>(&r.payload[1..])
                .map_err(|e| format!("record {}: undecodable configuration: {e}", r.index))?,
        ),
        Some(_) => EntryKind::Normal(r.payload),
        None => return Err(format!("record {} has an empty payload", r.index)),
    };
    Ok(Entry {
        term: r.term,
        index: r.index,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entries_land_in_their_partition_and_roundtrip() {
        let h = JournalHeader {
            partition: 7,
            batch_size: 3,
            offset: 1,
            timestamp_ms: 99,
            session: Some(RequestId {
                client_id: 5,
                seq: 2,
                first_unacked: 1,
            }),
        };
        let e = Entry {
            term: 4,
            index: 10,
            kind: EntryKind::Normal(h.encode(b"abc")),
        };
        let r = entry_to_record(&e);
        assert_eq!((r.partition, r.batch_size, r.timestamp_ms), (7, 3, 99));
        assert_eq!(record_to_entry(r).unwrap(), e);
        let EntryKind::Normal(data) = &e.kind else {
            unreachable!()
        };
        match decode(data).unwrap() {
            Command::Journal(h2, p) => assert_eq!((h2, p), (h, &b"abc"[..])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_batch_keeps_its_identity_and_only_the_first_entry_carries_the_session() {
        let session = RequestId {
            client_id: 5,
            seq: 9,
            first_unacked: 3,
        };
        let a = vec![b"a0".to_vec()];
        let b = vec![b"b0".to_vec(), b"b1".to_vec(), b"b2".to_vec()];
        let datas = journal_datas(4, &[&a, &b], session, 77);
        let got: Vec<_> = datas
            .iter()
            .map(|d| {
                let (h, p) = JournalHeader::decode(d).unwrap();
                assert_eq!((h.partition, h.timestamp_ms), (4, 77));
                (h.batch_size, h.offset, h.session, p.to_vec())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, Some(session), b"a0".to_vec()),
                (3, 0, None, b"b0".to_vec()),
                (3, 1, None, b"b1".to_vec()),
                (3, 2, None, b"b2".to_vec()),
            ]
        );
        // One batch is exactly what `Append` always encoded.
        let one = journal_datas(4, &[&b], session, 77);
        let (h, _) = JournalHeader::decode(&one[0]).unwrap();
        assert_eq!((h.batch_size, h.offset, h.session), (3, 0, Some(session)));
    }

    #[test]
    fn system_entries_use_the_reserved_partition() {
        for kind in [
            EntryKind::Noop,
            EntryKind::Config(Membership::new([1, 2, 3])),
            EntryKind::Normal(encode_kv(&KvRequest {
                id: None,
                command: crate::state::kv::KvCommand::Remove { key: "k".into() },
            })),
        ] {
            let e = Entry {
                term: 1,
                index: 1,
                kind,
            };
            let r = entry_to_record(&e);
            assert_eq!(r.partition, SYSTEM_PARTITION);
            assert_eq!(record_to_entry(r).unwrap(), e);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let _ = decode(&data);
            let _ = JournalHeader::decode(&data);
            let r = Record { payload: data.clone(), ..Record::default() };
            if let Ok(e) = record_to_entry(r) {
                let _ = entry_to_record(&e);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for data in [&[][..], &[2, 1], &[3, 0xff, 0xff], &[9], &[4]] {
            let _ = decode(data);
        }
        let r = Record::default();
        assert!(record_to_entry(r).is_err());
    }
}
