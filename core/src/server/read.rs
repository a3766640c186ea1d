//! Reads against the state machines (journal store and KV), run on a blocking thread under
//! the state-machine mutex once the read level allows it (see `driver/read_path.rs`). Pure lookups:
//! partition bounds and entries through the partition index and the journal.

use std::collections::BTreeSet;

use super::apply::{self, Machines};
use super::command::{JournalHeader, RESERVED_PARTITION_START};
use super::driver::storage_error;
use crate::api::{Error, ErrorKind, JournalEntry};
use crate::client::protocol::{self, ReplyBody, RequestBody};

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// The partitions clients see: the declared set.
fn client_partitions(m: &Machines) -> BTreeSet<u16> {
    m.journal_store.declared.clone()
}

/// `(min, max)` of every client partition, as `MinIndices` / `MaxIndices` report them.
pub(crate) fn journal_bounds(m: &Machines) -> std::collections::BTreeMap<u16, (u64, u64)> {
    client_partitions(m)
        .into_iter()
        .map(|p| (p, bounds(m, p)))
        .collect()
}

fn bounds(m: &Machines, partition: u16) -> (u64, u64) {
    m.pidx.bounds(partition).unwrap_or((0, 0))
}

/// Every declared partition's min and max index (the status detail).
pub(crate) fn partition_bounds(m: &Machines) -> Vec<protocol::PartitionBounds> {
    client_partitions(m)
        .into_iter()
        .map(|partition| {
            let (min_index, max_index) = bounds(m, partition);
            protocol::PartitionBounds {
                partition,
                min_index,
                max_index,
            }
        })
        .collect()
}

fn read_entry(m: &Machines, partition: u16, index: u64) -> Result<JournalEntry, Error> {
    let g = m.pidx.get(partition, index).map_err(storage_error)?;
    let rec = m
        .journal
        .read(g, 1, usize::MAX)
        .map_err(storage_error)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorKind::IndexUnderflow, format!("log index {g} is gone")))?;
    let (h, payload) = JournalHeader::decode(&rec.payload).ok_or_else(|| {
        Error::new(
            ErrorKind::Corruption,
            format!("log index {g} of partition {partition} is not a journal entry"),
        )
    })?;
    Ok(JournalEntry {
        partition,
        index,
        batch_size: h.batch_size,
        offset: h.offset,
        term: rec.term,
        timestamp_ms: h.timestamp_ms,
        payload: payload.to_vec(),
    })
}

pub(crate) fn read_machines(
    m: &Machines,
    body: &RequestBody,
    max_bytes: usize,
) -> Result<ReplyBody, Error> {
    let check_partition = |p: u16| {
        if p >= RESERVED_PARTITION_START {
            Err(invalid(format!("partition {p} is reserved")))
        } else if !m.journal_store.declared.contains(&p) {
            Err(invalid(format!("no such partition: {p}")))
        } else {
            Ok(())
        }
    };
    match body {
        RequestBody::Get {
            partition,
            index,
            max_entries,
            ..
        } => {
            check_partition(*partition)?;
            if *max_entries == 0 || *max_entries > protocol::MAX_GET_ENTRIES {
                return Err(invalid(format!(
                    "max_entries must be in 1..={}",
                    protocol::MAX_GET_ENTRIES
                )));
            }
            let (min, next) = bounds(m, *partition);
            if *index >= next {
                return Err(Error::new(
                    ErrorKind::IndexOverflow,
                    format!("index {index} >= max index {next} of partition {partition}"),
                ));
            }
            if *index < min {
                return Err(Error::new(
                    ErrorKind::IndexUnderflow,
                    format!("index {index} < min index {min} of partition {partition}"),
                ));
            }
            let end = next.min(index + u64::from(*max_entries));
            let mut out = Vec::new();
            let mut bytes = 0;
            for i in *index..end {
                let e = read_entry(m, *partition, i)?;
                bytes += e.payload.len() + 64;
                if !out.is_empty() && bytes > max_bytes {
                    break;
                }
                out.push(e);
            }
            Ok(ReplyBody::Entries(out))
        }
        RequestBody::MinIndices { .. } | RequestBody::MaxIndices { .. } => {
            let min = matches!(body, RequestBody::MinIndices { .. });
            Ok(ReplyBody::Indices(
                journal_bounds(m)
                    .into_iter()
                    .map(|(p, (lo, hi))| (p, if min { lo } else { hi }))
                    .collect(),
            ))
        }
        RequestBody::ListPartitions { .. } => Ok(ReplyBody::Partitions(client_partitions(m))),
        RequestBody::QueryIndex {
            partition,
            timestamp_ms,
            ..
        } => {
            check_partition(*partition)?;
            let (min, next) = bounds(m, *partition);
            let r = crate::state::journal_store::query_index(min, next, *timestamp_ms, |i| {
                read_entry(m, *partition, i).map(|e| e.timestamp_ms)
            })?;
            Ok(ReplyBody::Index(r))
        }
        RequestBody::KvRead { query, .. } => {
            m.kv.read(query)
                .map(ReplyBody::KvRead)
                .map_err(apply::state_error)
        }
        other => Err(Error::new(
            ErrorKind::Internal,
            format!("not a read: {other:?}"),
        )),
    }
}
