//! The publish record of a committed transaction: one log record holding every batch of the
//! transaction, which places all its entries in their partitions at one index.
//!
//! Owns: the record's byte layout, its decoding (total on any input), where each entry lands
//! ([`placements`], the partition index's placer) and finding a partition's `j`-th entry in it.
//! Never does: decide that a transaction is published (the leader proposes the record once the
//! commit is decided, see `driver/txns.rs`).
//!
//! ```text
//! off size field
//!   0    1  tag = 9
//!   1    8  tx             u64 LE (the transaction id)
//!   9    8  timestamp_ms   u64 LE (leader-assigned store time of every entry)
//!  17    4  batches        u32 LE
//!  then per batch: partition u16 LE, entries u32 LE, then per entry: length u32 LE, bytes
//! ```
//! A record that does not decode places nothing outside the system partition, on every node
//! alike (the placement is a function of the bytes alone).

use super::command::{SYSTEM_PARTITION, TAG_TXN_PUBLISH};
use crate::state::txn::TxnBatch;
use crate::storage::Record;

/// Bytes of the fixed header.
const HEADER_LEN: usize = 21;

/// Bytes a publish record of `batches` takes.
pub fn publish_len(batches: &[TxnBatch]) -> usize {
    HEADER_LEN
        + batches
            .iter()
            .map(|b| 6 + b.entries.iter().map(|e| 4 + e.len()).sum::<usize>())
            .sum::<usize>()
}

/// Encodes the publish record of transaction `tx`.
pub fn encode_publish(tx: u64, timestamp_ms: u64, batches: &[TxnBatch]) -> Vec<u8> {
    let mut out = Vec::with_capacity(publish_len(batches));
    out.push(TAG_TXN_PUBLISH);
    out.extend_from_slice(&tx.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(&(batches.len() as u32).to_le_bytes());
    for b in batches {
        out.extend_from_slice(&b.partition.to_le_bytes());
        out.extend_from_slice(&(b.entries.len() as u32).to_le_bytes());
        for e in &b.entries {
            out.extend_from_slice(&(e.len() as u32).to_le_bytes());
            out.extend_from_slice(e);
        }
    }
    out
}

/// A decoded publish record (borrowing the record's bytes).
#[derive(Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub tx: u64,
    pub timestamp_ms: u64,
    pub batches: Vec<(u16, Vec<&'a [u8]>)>,
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.data.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
}

/// Just the transaction id of publish record data (`None`: not one).
pub fn publish_tx(data: &[u8]) -> Option<u64> {
    if data.first() != Some(&TAG_TXN_PUBLISH) {
        return None;
    }
    data.get(1..9)?.try_into().ok().map(u64::from_le_bytes)
}

/// Decodes publish record data; `None` if it is not one or is malformed.
pub fn decode_publish(data: &[u8]) -> Option<Publish<'_>> {
    if data.first() != Some(&TAG_TXN_PUBLISH) {
        return None;
    }
    let mut r = Reader { data, at: 1 };
    let tx = r.u64()?;
    let timestamp_ms = r.u64()?;
    let n = r.u32()? as usize;
    // Each batch takes at least 6 bytes: a count beyond what is left is malformed.
    if n > data.len() / 6 {
        return None;
    }
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        let partition = r.u16()?;
        let count = r.u32()? as usize;
        if count > data.len() / 4 {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u32()? as usize;
            entries.push(r.take(len)?);
        }
        batches.push((partition, entries));
    }
    (r.at == data.len()).then_some(Publish {
        tx,
        timestamp_ms,
        batches,
    })
}

/// The partition index's placer: the partitions of a record's entries, in order. A publish
/// record places each of its entries in its partition; any other record is one entry of its
/// own partition.
pub fn placements(record: &Record, out: &mut Vec<u16>) {
    if record.partition == SYSTEM_PARTITION
        && let Some(p) = decode_publish(&record.payload)
    {
        for (partition, entries) in &p.batches {
            out.extend(std::iter::repeat_n(*partition, entries.len()));
        }
        return;
    }
    out.push(record.partition);
}

/// One entry of a publish record as a journal reader sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct PublishedEntry<'a> {
    pub batch_size: u16,
    pub offset: u16,
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    /// The `j`-th entry (0-based) this record placed in `partition`.
    pub fn entry(&self, partition: u16, mut j: usize) -> Option<PublishedEntry<'a>> {
        for (p, entries) in &self.batches {
            if *p != partition {
                continue;
            }
            if j < entries.len() {
                return Some(PublishedEntry {
                    batch_size: u16::try_from(entries.len()).unwrap_or(u16::MAX),
                    offset: u16::try_from(j).unwrap_or(u16::MAX),
                    payload: entries[j],
                });
            }
            j -= entries.len();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_bytes::ByteBuf;

    fn batches() -> Vec<TxnBatch> {
        let b = |partition, xs: &[&str]| TxnBatch {
            partition,
            entries: xs.iter().map(|x| ByteBuf::from(x.as_bytes())).collect(),
        };
        vec![b(2, &["a", "b"]), b(1, &["c"]), b(2, &["", "d", "e"])]
    }

    #[test]
    fn a_publish_record_places_every_entry_in_order() {
        let data = encode_publish(9, 77, &batches());
        assert_eq!(data.len(), publish_len(&batches()));
        assert_eq!(publish_tx(&data), Some(9));
        let record = Record {
            term: 1,
            index: 40,
            partition: SYSTEM_PARTITION,
            batch_size: 1,
            timestamp_ms: 0,
            payload: data.clone(),
        };
        let mut out = Vec::new();
        placements(&record, &mut out);
        assert_eq!(out, [2, 2, 1, 2, 2, 2]);
        let p = decode_publish(&data).unwrap();
        assert_eq!((p.tx, p.timestamp_ms), (9, 77));
        let e = |part, j| {
            p.entry(part, j)
                .map(|e| (e.batch_size, e.offset, e.payload))
        };
        assert_eq!(e(2, 0), Some((2, 0, &b"a"[..])));
        assert_eq!(e(2, 1), Some((2, 1, &b"b"[..])));
        assert_eq!(e(2, 2), Some((3, 0, &b""[..])));
        assert_eq!(e(2, 4), Some((3, 2, &b"e"[..])));
        assert_eq!(e(1, 0), Some((1, 0, &b"c"[..])));
        assert_eq!(e(2, 5), None);
        assert_eq!(e(3, 0), None);
    }

    #[test]
    fn other_records_are_one_entry_of_their_partition() {
        let mut out = Vec::new();
        let mut record = Record {
            term: 1,
            index: 3,
            partition: 4,
            batch_size: 1,
            timestamp_ms: 0,
            payload: encode_publish(1, 1, &batches()),
        };
        // A publish payload outside the system partition is no publish.
        placements(&record, &mut out);
        assert_eq!(out, [4]);
        out.clear();
        record.partition = SYSTEM_PARTITION;
        record.payload.pop();
        placements(&record, &mut out);
        assert_eq!(out, [SYSTEM_PARTITION]);
    }

    #[test]
    fn the_largest_transaction_the_limits_allow_fits_in_one_record() {
        // Worst case: every entry its own batch, the payload bound spent on the entries.
        let l = crate::state::txn::TxnLimits::default();
        let worst = HEADER_LEN + l.max_entries_per_txn * (6 + 4) + l.max_bytes_per_txn;
        assert!(worst <= crate::server::config::MAX_RECORD_BYTES, "{worst}");
    }

    proptest! {
        #[test]
        fn decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut d = data.clone();
            if !d.is_empty() { d[0] = TAG_TXN_PUBLISH; }
            let _ = decode_publish(&d);
            let _ = publish_tx(&d);
        }
    }
}
