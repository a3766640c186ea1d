//! Reads against the state machines (journal store and KV), run on a blocking thread under
//! the state-machine mutex once the read level allows it (see `driver/read_path.rs`). Pure lookups:
//! partition bounds and entries through the partition index and the journal.

use std::collections::BTreeSet;

use super::apply::{self, Machines};
use super::command::{JournalHeader, RESERVED_PARTITION_START};
use super::driver::storage_error;
use super::txn_record::decode_publish;
use crate::api::{Error, ErrorKind, JournalEntry};
use crate::client::protocol::{self, ReplyBody, RequestBody};
use crate::storage::Record;

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

/// The publish record a journal read is inside, so a read of consecutive entries decodes it
/// once: entry `index` of the partition is its `j`-th entry there.
struct InPublish {
    index: u64,
    global: u64,
    j: usize,
    record: Record,
}

fn read_entry(
    m: &Machines,
    partition: u16,
    index: u64,
    cursor: &mut Option<InPublish>,
) -> Result<JournalEntry, Error> {
    let g = m.pidx.get(partition, index).map_err(storage_error)?;
    let continues = cursor
        .as_ref()
        .is_some_and(|c| c.global == g && c.index + 1 == index);
    if !continues {
        let rec = m
            .journal
            .read(g, 1, usize::MAX)
            .map_err(storage_error)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::new(ErrorKind::IndexUnderflow, format!("log index {g} is gone"))
            })?;
        if let Some((h, payload)) = JournalHeader::decode(&rec.payload) {
            *cursor = None;
            return Ok(JournalEntry {
                partition,
                index,
                batch_size: h.batch_size,
                offset: h.offset,
                term: rec.term,
                timestamp_ms: h.timestamp_ms,
                payload: payload.to_vec(),
            });
        }
        // Inside a publish record: count the partition's earlier entries it placed.
        let (min, _) = bounds(m, partition);
        let mut j = 0;
        while index > min + j as u64 && m.pidx.get(partition, index - 1 - j as u64).ok() == Some(g)
        {
            j += 1;
        }
        *cursor = Some(InPublish {
            index,
            global: g,
            j,
            record: rec,
        });
    } else if let Some(c) = cursor.as_mut() {
        c.index = index;
        c.j += 1;
    }
    let not_entry = || {
        Error::new(
            ErrorKind::Corruption,
            format!("log index {g} of partition {partition} is not a journal entry"),
        )
    };
    let c = cursor.as_ref().ok_or_else(not_entry)?;
    let publish = decode_publish(&c.record.payload).ok_or_else(not_entry)?;
    let e = publish.entry(partition, c.j).ok_or_else(not_entry)?;
    Ok(JournalEntry {
        partition,
        index,
        batch_size: e.batch_size,
        offset: e.offset,
        term: c.record.term,
        timestamp_ms: publish.timestamp_ms,
        payload: e.payload.to_vec(),
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
            let mut cursor = None;
            for i in *index..end {
                let e = read_entry(m, *partition, i, &mut cursor)?;
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
                read_entry(m, *partition, i, &mut None).map(|e| e.timestamp_ms)
            })?;
            Ok(ReplyBody::Index(r))
        }
        RequestBody::OpenTransactions { .. } => Ok(ReplyBody::Transactions(
            m.txns
                .iter()
                .map(|(tx, t)| protocol::TxnInfo {
                    tx,
                    context: t.context.clone(),
                    phase: t.phase,
                    entries: t.entries,
                    bytes: t.bytes,
                    partitions: t.batches.iter().map(|b| b.partition).collect(),
                })
                .collect(),
        )),
        RequestBody::KvRead { query, .. } => {
            m.kv.read(query)
                .map(ReplyBody::KvRead)
                .map_err(apply::state_error)
        }
        RequestBody::SmQuery { machine, query, .. } => {
            if query.len() > super::user_machines::MAX_QUERY_BYTES {
                return Err(invalid(format!(
                    "a query of {} bytes exceeds the limit of {} bytes",
                    query.len(),
                    super::user_machines::MAX_QUERY_BYTES
                )));
            }
            m.user.query(machine, query).map(ReplyBody::SmAnswer)
        }
        other => Err(Error::new(
            ErrorKind::Internal,
            format!("not a read: {other:?}"),
        )),
    }
}
