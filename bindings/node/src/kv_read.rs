//! The options of `kv.get` and `kv.list`: a read at a consistency level, or at a log index
//! (`{ atIndex }`, the second step of a two-step read after `client.sync()`).

use journalkeeper::api;
use journalkeeper::client::Kv;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;

use crate::QueryConsistency;
use crate::args::{self, R};

/// Options of a KV read.
#[napi(object)]
pub struct KvReadOptions {
    /// How fresh the read must be (default `STRICT`); not with `atIndex`.
    pub consistency: Option<QueryConsistency>,
    /// Read the state as it was at this log index instead (from `client.sync()`): any node
    /// that applied it answers. `INDEX_OVERFLOW`: not applied yet, not even by the leader;
    /// `INDEX_UNDERFLOW`: older than the history a node keeps (`retain_history`).
    pub at_index: Option<f64>,
}

/// What a KV read reads.
pub(crate) enum KvRead {
    Level(api::QueryConsistency),
    At(u64),
}

/// The read of an optional `options` argument (`KvReadOptions`).
pub(crate) fn kv_read(options: Unknown) -> R<KvRead> {
    let Some(o) = args::options::<KvReadOptions>("options", options)? else {
        return Ok(KvRead::Level(api::QueryConsistency::default()));
    };
    match (o.at_index, o.consistency) {
        (Some(_), Some(_)) => Err(api::Error::new(
            api::ErrorKind::InvalidArgument,
            "options: give consistency or atIndex, not both",
        )),
        (Some(i), None) => Ok(KvRead::At(crate::to_u64("options.atIndex", i)?)),
        (None, level) => Ok(KvRead::Level(level.map(Into::into).unwrap_or_default())),
    }
}

impl KvRead {
    pub(crate) async fn get(self, kv: Kv<'_>, key: &str) -> R<Option<Vec<u8>>> {
        match self {
            KvRead::Level(level) => kv.with_consistency(level).get(key).await,
            KvRead::At(index) => kv.get_at(key, index).await,
        }
    }

    pub(crate) async fn list(self, kv: Kv<'_>, prefix: &str) -> R<Vec<(String, Vec<u8>)>> {
        match self {
            KvRead::Level(level) => kv.with_consistency(level).list(prefix).await,
            KvRead::At(index) => kv.list_at(prefix, index).await,
        }
    }
}
