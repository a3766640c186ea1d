//! The KV's snapshot as a stream, so that neither taking nor restoring it holds a second copy
//! of the data: taking one writes each key straight from the map, restoring inserts each key as
//! it is read.
//!
//! Layout: a `u64` LE length and the postcard [`Header`] (applied index, client sessions, the
//! number of keys), then one record per key in key order: `u32` LE key length, the key (UTF-8),
//! `u32` LE value length, the value. A stream that ends early, repeats or reorders a key, or
//! crosses a bound is an error, never a partial state. Snapshots of data-file formats 1–5 hold
//! the KV as one postcard blob instead ([`KvSnapshot::decode`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::KvStore;
use crate::state::session::ClientSessions;
use crate::state::watch::EventLog;
use crate::state::{StateError, decode, encode, io_error};

/// Largest header accepted (it holds the bounded session table).
const MAX_HEADER_BYTES: u64 = 1 << 32;
/// Largest key and value accepted in a snapshot: far above any configurable KV bound, so a
/// node with larger limits than this one still restores, while a corrupt length is refused.
const MAX_KEY_BYTES: u32 = 1 << 20;
const MAX_VALUE_BYTES: u32 = 1 << 30;
const WHAT: &str = "kv snapshot";

/// A KV state read from a snapshot, not yet installed.
#[derive(Serialize, Deserialize)]
pub struct KvSnapshot {
    pub(super) applied_index: u64,
    pub(super) data: BTreeMap<String, Vec<u8>>,
    pub(super) sessions: ClientSessions,
}

#[derive(Serialize, Deserialize)]
struct Header {
    applied_index: u64,
    sessions: ClientSessions,
    entries: u64,
}

#[derive(Serialize)]
struct HeaderRef<'a> {
    applied_index: u64,
    sessions: &'a ClientSessions,
    entries: u64,
}

fn codec(reason: String) -> StateError {
    StateError::Codec {
        what: WHAT.to_string(),
        reason,
    }
}

/// Reads exactly `len` bytes (allocating as they arrive, so a corrupt length cannot reserve
/// more memory than the stream holds).
fn read_exact_vec(input: &mut dyn Read, len: u64, part: &str) -> Result<Vec<u8>, StateError> {
    let mut bytes = Vec::with_capacity(len.min(1 << 16) as usize);
    input
        .take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(WHAT, &e))?;
    if bytes.len() as u64 != len {
        return Err(codec(format!("the stream ends inside {part}")));
    }
    Ok(bytes)
}

fn read_u32(input: &mut dyn Read, part: &str, max: u32) -> Result<u32, StateError> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| codec(format!("the stream ends before {part}: {e}")))?;
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(codec(format!("{part} of {len} bytes exceeds {max}")));
    }
    Ok(len)
}

fn write_part(out: &mut dyn Write, bytes: &[u8]) -> Result<(), StateError> {
    // Keys and values are bounded far below u32::MAX by the KV's limits.
    let len = u32::try_from(bytes.len())
        .map_err(|_| codec(format!("a part of {} bytes is too large", bytes.len())))?;
    out.write_all(&len.to_le_bytes())
        .and_then(|()| out.write_all(bytes))
        .map_err(|e| io_error(WHAT, &e))
}

impl KvSnapshot {
    /// The one-blob form of data-file formats 1–5.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        decode(WHAT, bytes)
    }

    /// Reads the streamed form written by [`KvStore::write_snapshot`], leaving `input` just
    /// after it.
    pub fn read(input: &mut dyn Read) -> Result<Self, StateError> {
        let mut len = [0u8; 8];
        input
            .read_exact(&mut len)
            .map_err(|e| codec(format!("the stream ends before the header: {e}")))?;
        let len = u64::from_le_bytes(len);
        if len > MAX_HEADER_BYTES {
            return Err(codec(format!(
                "header of {len} bytes exceeds {MAX_HEADER_BYTES}"
            )));
        }
        let header: Header = decode(WHAT, &read_exact_vec(input, len, "the header")?)?;
        let mut data = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..header.entries {
            let key_len = read_u32(input, "a key", MAX_KEY_BYTES)?;
            let key = String::from_utf8(read_exact_vec(input, key_len.into(), "a key")?)
                .map_err(|_| codec("a key is not UTF-8".into()))?;
            if last.as_ref().is_some_and(|l| *l >= key) {
                return Err(codec(format!("key {key:?} is out of order")));
            }
            let value_len = read_u32(input, "a value", MAX_VALUE_BYTES)?;
            let value = read_exact_vec(input, value_len.into(), "a value")?;
            last = Some(key.clone());
            data.insert(key, value);
        }
        Ok(KvSnapshot {
            applied_index: header.applied_index,
            data,
            sessions: header.sessions,
        })
    }
}

impl KvStore {
    /// Writes the whole state (data, sessions, applied index) to `out` as a stream, key by key.
    pub fn write_snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let header = encode(
            WHAT,
            &HeaderRef {
                applied_index: self.applied_index,
                sessions: &self.sessions,
                entries: self.data.len() as u64,
            },
        )?;
        out.write_all(&(header.len() as u64).to_le_bytes())
            .and_then(|()| out.write_all(&header))
            .map_err(|e| io_error(WHAT, &e))?;
        for (key, value) in &self.data {
            write_part(out, key.as_bytes())?;
            write_part(out, value)?;
        }
        Ok(())
    }

    /// Replaces the state with `snapshot`.
    pub fn install(&mut self, snapshot: KvSnapshot) {
        self.applied_index = snapshot.applied_index;
        self.data = snapshot.data;
        self.sessions = snapshot.sessions;
        self.events = EventLog::new(
            self.limits.event_history,
            self.limits.event_history_bytes,
            snapshot.applied_index + 1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ApplyContext;
    use crate::state::kv::{KvCommand, KvLimits, KvRequest};

    fn store(keys: &[(&str, &[u8])]) -> KvStore {
        let mut kv = KvStore::new(KvLimits::default());
        for (i, (k, v)) in keys.iter().enumerate() {
            let ctx = ApplyContext {
                index: i as u64 + 1,
                term: 1,
                timestamp_ms: 0,
            };
            let set = KvRequest {
                id: None,
                command: KvCommand::Set {
                    key: (*k).into(),
                    value: v.to_vec(),
                },
            };
            kv.apply_request(&ctx, &set).unwrap();
        }
        kv
    }

    fn written(kv: &KvStore) -> Vec<u8> {
        let mut out = Vec::new();
        kv.write_snapshot(&mut out).unwrap();
        out
    }

    #[test]
    fn the_stream_round_trips_and_stops_at_its_end() {
        let kv = store(&[("b", b"2"), ("a", b""), ("c", &[7; 300])]);
        let mut bytes = written(&kv);
        bytes.extend_from_slice(b"next section");
        let mut input = &bytes[..];
        let snap = KvSnapshot::read(&mut input).unwrap();
        assert_eq!(input, b"next section");
        let mut back = KvStore::new(KvLimits::default());
        back.install(snap);
        assert_eq!(back.data, kv.data);
        assert_eq!(back.sessions, kv.sessions);
        assert_eq!(back.applied_index(), 3);
        assert_eq!(back.watch_complete_from(), 4);
    }

    #[test]
    fn a_cut_reordered_or_oversized_stream_is_an_error() {
        let bytes = written(&store(&[("a", b"1"), ("b", b"2")]));
        for cut in 0..bytes.len() {
            assert!(
                KvSnapshot::read(&mut &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // Swap the two one-byte keys: "b" then "a".
        let mut swapped = bytes.clone();
        let a = swapped.iter().rposition(|&b| b == b'a').unwrap();
        let b = swapped.iter().rposition(|&b| b == b'b').unwrap();
        swapped.swap(a, b);
        assert!(KvSnapshot::read(&mut &swapped[..]).is_err());
        let mut huge = written(&store(&[("a", b"1")]));
        let key_len_at = huge.len() - 10;
        huge[key_len_at..key_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(KvSnapshot::read(&mut &huge[..]).is_err());
        assert!(KvSnapshot::read(&mut &[0xff; 8][..]).is_err());
    }
}
