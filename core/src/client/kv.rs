//! [`Kv`]: the coordination KV API (JK-CS) on top of the cluster layer.
//!
//! Owns: key / value bound checks (`InvalidArgument`, no network traffic), list paging, and
//! the mapping of [`KvOutcome`] / [`KvQueryResult`] to return values. Never does: routing or
//! retries. Writes are acknowledged at `Replication` (their results are needed) and carry a
//! session id so a retry is applied once.

use super::cluster::Target;
use super::protocol::{MAX_KEY_BYTES, MAX_LIST_ENTRIES, MAX_VALUE_BYTES, ReplyBody, RequestBody};
use super::watch::WatchStream;
use super::{Client, invalid, unexpected};
use crate::api::{Error, ErrorKind, QueryConsistency, ResponseConfig};
use crate::state::kv::{KvCommand, KvOutcome, KvQuery, KvQueryResult, KvRequest};
use crate::state::watch::WatchFilter;

/// The result of [`Kv::compare_and_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasResult {
    /// Whether the value was replaced.
    pub swapped: bool,
    /// The key's value after the operation (`None`: absent).
    pub current: Option<Vec<u8>>,
}

/// The coordination KV of the cluster. Reads use the handle's consistency
/// ([`QueryConsistency::Strict`] unless changed by [`with_consistency`](Self::with_consistency)).
#[derive(Debug, Clone, Copy)]
pub struct Kv<'a> {
    client: &'a Client,
    consistency: QueryConsistency,
}

impl<'a> Kv<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Kv {
            client,
            consistency: QueryConsistency::Strict,
        }
    }

    /// The same handle with another read consistency.
    pub fn with_consistency(self, consistency: QueryConsistency) -> Self {
        Kv {
            consistency,
            ..self
        }
    }

    /// Sets `key` to `value`; returns the previous value.
    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        check_value(&value)?;
        let command = KvCommand::Set {
            key: key.to_string(),
            value,
        };
        match self.write(command).await? {
            KvOutcome::Set { previous } => Ok(previous),
            other => Err(unexpected_outcome("Set", &other)),
        }
    }

    /// Removes `key`; returns the value it had.
    pub async fn remove(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        match self
            .write(KvCommand::Remove {
                key: key.to_string(),
            })
            .await?
        {
            KvOutcome::Removed { previous } => Ok(previous),
            other => Err(unexpected_outcome("Remove", &other)),
        }
    }

    /// Sets `key` to `new` (removes it for `None`) only if its value equals `expect`
    /// (`None`: the key must be absent).
    pub async fn compare_and_set(
        &self,
        key: &str,
        expect: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<CasResult, Error> {
        check_key(key)?;
        if let Some(v) = &new {
            check_value(v)?;
        }
        let command = KvCommand::CompareAndSet {
            key: key.to_string(),
            expect,
            new,
        };
        match self.write(command).await? {
            KvOutcome::CompareAndSet { swapped, current } => Ok(CasResult { swapped, current }),
            other => Err(unexpected_outcome("CompareAndSet", &other)),
        }
    }

    /// The value of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        match self
            .read(KvQuery::Get {
                key: key.to_string(),
            })
            .await?
        {
            KvQueryResult::Value(v) => Ok(v),
            other => Err(unexpected_result("Get", &other)),
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        match self
            .read(KvQuery::Exists {
                key: key.to_string(),
            })
            .await?
        {
            KvQueryResult::Exists(b) => Ok(b),
            other => Err(unexpected_result("Exists", &other)),
        }
    }

    /// Every key starting with `prefix` with its value, in key order. Large results are read
    /// in pages of [`MAX_LIST_ENTRIES`]; pages are separate reads (each at least as fresh as
    /// the one before), not one snapshot.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        check_prefix(prefix)?;
        list_pages(prefix, |query| self.read(query)).await
    }

    /// The value `key` had at log index `index` (the seed's read at an index; the second step of
    /// a two-step read after [`Client::applied_index`](super::Client::applied_index)). Any node
    /// that has applied `index` answers; one that has not passes the read to the leader.
    /// Errors: `IndexOverflow` when the leader has not applied `index` either, `IndexUnderflow`
    /// when `index` is before the oldest state the node can rebuild (its oldest retained
    /// snapshot, see `retain_history` in the server configuration).
    pub async fn get_at(&self, key: &str, index: u64) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        let query = KvQuery::Get {
            key: key.to_string(),
        };
        match self.read_at_index(query, index).await? {
            KvQueryResult::Value(v) => Ok(v),
            other => Err(unexpected_result("Get", &other)),
        }
    }

    /// Every key starting with `prefix` with its value, as they were at log index `index`, in
    /// key order: one consistent state however many pages it takes. Errors as
    /// [`get_at`](Self::get_at).
    pub async fn list_at(&self, prefix: &str, index: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
        check_prefix(prefix)?;
        list_pages(prefix, |query| self.read_at_index(query, index)).await
    }

    /// Watches keys matching `filter` from log index `from_index` on (`0`: from the next
    /// change). See [`WatchStream`].
    pub async fn watch(&self, filter: WatchFilter, from_index: u64) -> Result<WatchStream, Error> {
        if let WatchFilter::Key(k) | WatchFilter::Prefix(k) = &filter
            && k.len() > MAX_KEY_BYTES
        {
            return Err(invalid(format!(
                "watched key of {} bytes exceeds the limit of {MAX_KEY_BYTES} bytes",
                k.len()
            )));
        }
        WatchStream::open(self.client.inner.clone(), filter, from_index).await
    }

    async fn write(&self, command: KvCommand) -> Result<KvOutcome, Error> {
        let cluster = &self.client.inner;
        let session = cluster.begin_write();
        let body = RequestBody::KvWrite {
            request: KvRequest {
                id: Some(session.id),
                command,
            },
            response: ResponseConfig::Replication,
        };
        match cluster.call(Target::Leader, body).await? {
            ReplyBody::KvWritten(Some(outcome)) => Ok(outcome),
            other => Err(unexpected("KvWrite", &other)),
        }
    }

    async fn read(&self, query: KvQuery) -> Result<KvQueryResult, Error> {
        let (target, read) = self.client.inner.read_at(self.consistency);
        match self
            .client
            .inner
            .call(target, RequestBody::KvRead { query, read })
            .await?
        {
            ReplyBody::KvRead(result) => Ok(result),
            other => Err(unexpected("KvRead", &other)),
        }
    }
}

impl Kv<'_> {
    /// A read at `index` from any node; a node behind `index`, or without the history for it,
    /// hands it on to the leader, whose answer is final.
    async fn read_at_index(&self, query: KvQuery, index: u64) -> Result<KvQueryResult, Error> {
        let cluster = &self.client.inner;
        let body = RequestBody::KvReadAt { query, index };
        let reply = match cluster.call(Target::Any, body.clone()).await {
            Err(e) if matches!(e.kind, ErrorKind::IndexOverflow | ErrorKind::IndexUnderflow) => {
                // Any node serves a read at an index, so find the leader first (its applied
                // index is a leader-only read that follows NOT_LEADER hints): a client that
                // knows only an observer would otherwise ask the observer again.
                let leader_applied = self.client.leader_applied_index().await?;
                if e.kind == ErrorKind::IndexOverflow && index > leader_applied {
                    return Err(Error::new(
                        ErrorKind::IndexOverflow,
                        format!(
                            "index {index} is not applied yet (the leader applied {leader_applied})"
                        ),
                    ));
                }
                cluster.call(Target::Leader, body).await?
            }
            r => r?,
        };
        match reply {
            ReplyBody::KvRead(result) => Ok(result),
            other => Err(unexpected("KvReadAt", &other)),
        }
    }
}

/// Every entry under `prefix`, read page by page with `read`.
async fn list_pages<F, Fut>(prefix: &str, mut read: F) -> Result<Vec<(String, Vec<u8>)>, Error>
where
    F: FnMut(KvQuery) -> Fut,
    Fut: std::future::Future<Output = Result<KvQueryResult, Error>>,
{
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let query = KvQuery::List {
            prefix: prefix.to_string(),
            start_after: all.last().map(|(k, _)| k.clone()),
            limit: MAX_LIST_ENTRIES,
        };
        match read(query).await? {
            KvQueryResult::Entries(page) => {
                let done = page.len() < MAX_LIST_ENTRIES;
                all.extend(page);
                if done {
                    return Ok(all);
                }
            }
            other => return Err(unexpected_result("List", &other)),
        }
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "key of {} bytes is outside 1..={MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "prefix of {} bytes exceeds the key limit of {MAX_KEY_BYTES} bytes",
            prefix.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(invalid(format!(
            "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn unexpected_outcome(what: &str, outcome: &KvOutcome) -> Error {
    unexpected(what, &ReplyBody::KvWritten(Some(outcome.clone())))
}

fn unexpected_result(what: &str, result: &KvQueryResult) -> Error {
    unexpected(what, &ReplyBody::KvRead(result.clone()))
}
