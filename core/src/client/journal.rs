//! [`Journal`]: the journal store API (JK-PS) on top of the cluster layer.
//!
//! Owns: argument checks against the protocol bounds (`InvalidArgument`, no network traffic)
//! and the mapping of replies to return values. Never does: routing or retries.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::Target;
use super::protocol::{
    MAX_GET_ENTRIES, MAX_PARTITIONS, ReplyBody, RequestBody, check_append_batches,
};
use super::{Client, invalid, unexpected};
use crate::api::{Error, JournalEntry, QueryConsistency, ResponseConfig};

/// The journal store of the cluster. Reads other than [`get`](Self::get) use the handle's
/// consistency ([`QueryConsistency::Strict`] unless changed by
/// [`with_consistency`](Self::with_consistency)).
#[derive(Debug, Clone, Copy)]
pub struct Journal<'a> {
    client: &'a Client,
    consistency: QueryConsistency,
}

impl<'a> Journal<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Journal {
            client,
            consistency: QueryConsistency::Strict,
        }
    }

    /// The same handle with another read consistency.
    pub fn with_consistency(self, consistency: QueryConsistency) -> Self {
        Journal {
            consistency,
            ..self
        }
    }

    /// Appends `entries` as one batch to `partition`. Returns the partition index of the first
    /// entry for `Replication` / `All`, `None` for the other levels. A retry after a lost reply
    /// is applied once (same session id).
    ///
    /// `OneWay`: the caller gets no reply; this returns once the batch is accepted into the
    /// client's one-way queue (bounded by `one_way_queue_bytes`: when it is full this waits
    /// for room, up to `request_timeout`, then fails with `Timeout`; `Closed` after
    /// `shutdown` / `close`). A background sender then delivers it to the leader like any
    /// write (following `NotLeader` hints, retrying under one session, so it is applied once)
    /// and it counts as stored when the leader acknowledges it committed on a majority. On a
    /// cluster with a leader every accepted batch is stored, in acceptance order per
    /// partition; [`Client::flush`] waits for that and [`Client::shutdown`] flushes (at most
    /// `one_way_flush_timeout`) before closing. It is lost if this process dies (or the
    /// client is closed without a flush) before the leader committed it, or if no leader
    /// takes it within `request_timeout` (then it is logged and counted in
    /// [`Client::one_way_dropped`]). Argument errors are returned before it is queued.
    ///
    /// With [`ClientConfig::append_coalescing`](super::ClientConfig) (the default), appends
    /// made concurrently through this client to the same partition and level may travel in
    /// one request; each batch still reads back as its own batch, and a request goes out at
    /// once while fewer than `append_max_in_flight_per_partition` of its lane are in flight
    /// (`OneWay`: one request in flight per partition, carrying everything queued). A
    /// coalesced request is sent by a background task: dropping this future does not
    /// withdraw an append already sent (as with any cancelled request, it may happen).
    pub async fn append(
        &self,
        partition: u16,
        entries: Vec<Vec<u8>>,
        response: ResponseConfig,
    ) -> Result<Option<u64>, Error> {
        check_append(&entries)?;
        let cluster = &self.client.inner;
        if response == ResponseConfig::OneWay {
            self.client
                .one_way
                .append(cluster, partition, entries)
                .await?;
            return Ok(None);
        }
        if cluster.config.append_coalescing {
            return self
                .client
                .batcher
                .append(cluster, partition, entries, response)
                .await;
        }
        self.client.batcher.count_request();
        let session = cluster.begin_write();
        let body = RequestBody::Append {
            partition,
            entries,
            response,
            session: session.id,
        };
        match cluster.call(Target::Leader, body).await? {
            ReplyBody::Appended { first_index } => Ok(first_index),
            other => Err(unexpected("Append", &other)),
        }
    }

    /// Up to `max_entries` entries of `partition` from `index` on (possibly fewer: the server
    /// bounds a reply by its frame size). `IndexOverflow` when `index` is at or past the end,
    /// `IndexUnderflow` when it was compacted away.
    pub async fn get(
        &self,
        partition: u16,
        index: u64,
        max_entries: u32,
        consistency: QueryConsistency,
    ) -> Result<Vec<JournalEntry>, Error> {
        if max_entries == 0 || max_entries > MAX_GET_ENTRIES {
            return Err(invalid(format!(
                "max_entries {max_entries} is outside 1..={MAX_GET_ENTRIES}"
            )));
        }
        let (target, read) = self.client.inner.read_at(consistency);
        let body = RequestBody::Get {
            partition,
            index,
            max_entries,
            read,
        };
        match self.client.inner.call(target, body).await? {
            ReplyBody::Entries(entries) => Ok(entries),
            other => Err(unexpected("Get", &other)),
        }
    }

    /// Per partition, the smallest readable index.
    pub async fn min_indices(&self) -> Result<BTreeMap<u16, u64>, Error> {
        let (target, read) = self.client.inner.read_at(self.consistency);
        match self
            .client
            .inner
            .call(target, RequestBody::MinIndices { read })
            .await?
        {
            ReplyBody::Indices(map) => Ok(map),
            other => Err(unexpected("MinIndices", &other)),
        }
    }

    /// Per partition, the index the next appended entry will get.
    pub async fn max_indices(&self) -> Result<BTreeMap<u16, u64>, Error> {
        let (target, read) = self.client.inner.read_at(self.consistency);
        match self
            .client
            .inner
            .call(target, RequestBody::MaxIndices { read })
            .await?
        {
            ReplyBody::Indices(map) => Ok(map),
            other => Err(unexpected("MaxIndices", &other)),
        }
    }

    /// The current partition set.
    pub async fn list_partitions(&self) -> Result<BTreeSet<u16>, Error> {
        let (target, read) = self.client.inner.read_at(self.consistency);
        match self
            .client
            .inner
            .call(target, RequestBody::ListPartitions { read })
            .await?
        {
            ReplyBody::Partitions(set) => Ok(set),
            other => Err(unexpected("ListPartitions", &other)),
        }
    }

    /// The index matching `timestamp_ms` (the seed's rule): the last entry stored at or before
    /// `timestamp_ms`, and among entries sharing that store time the first of them. Before
    /// every entry: the first entry. At or after the last entry's time: the last entry (the
    /// first of those sharing its time), never the partition's end index. `None` only when
    /// the partition holds no entries.
    pub async fn query_index(
        &self,
        partition: u16,
        timestamp_ms: u64,
    ) -> Result<Option<u64>, Error> {
        let (target, read) = self.client.inner.read_at(self.consistency);
        let body = RequestBody::QueryIndex {
            partition,
            timestamp_ms,
            read,
        };
        match self.client.inner.call(target, body).await? {
            ReplyBody::Index(index) => Ok(index),
            other => Err(unexpected("QueryIndex", &other)),
        }
    }

    /// Replaces the partition set (committed before this returns).
    pub async fn scale_partitions(&self, partitions: &[u16]) -> Result<(), Error> {
        let set: BTreeSet<u16> = partitions.iter().copied().collect();
        if set.is_empty() || set.len() > MAX_PARTITIONS {
            return Err(invalid(format!(
                "partition count {} is outside 1..={MAX_PARTITIONS}",
                set.len()
            )));
        }
        let cluster = &self.client.inner;
        let session = cluster.begin_write();
        let body = RequestBody::ScalePartitions {
            partitions: set,
            session: session.id,
        };
        match cluster.call(Target::Leader, body).await? {
            ReplyBody::Done => Ok(()),
            other => Err(unexpected("ScalePartitions", &other)),
        }
    }
}

/// The protocol bounds of one append.
pub(crate) fn check_append(entries: &[Vec<u8>]) -> Result<(), Error> {
    check_append_batches(&[entries])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorKind;
    use crate::client::protocol::{MAX_APPEND_ENTRIES, MAX_ENTRY_BYTES};

    #[test]
    fn append_bounds_are_checked_and_named() {
        assert!(check_append(&[vec![0; 10]]).is_ok());
        let cases = [
            (vec![], "0 entries"),
            (vec![vec![]; MAX_APPEND_ENTRIES + 1], "entries is outside"),
            (vec![vec![0; MAX_ENTRY_BYTES + 1]], "entry 0 of"),
            (
                vec![vec![0; MAX_ENTRY_BYTES]; 3],
                "bytes exceeds the limit of",
            ),
        ];
        for (entries, says) in cases {
            let e = check_append(&entries).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains(says), "{e}");
        }
    }
}
