//! The journal store: append (blocking and with a callback), get, min / max indices,
//! partitions, query by time, scale. Results are views the caller frees with the matching
//! `*_free`.

use std::ffi::c_void;

use journalkeeper::api::JournalEntry;

use crate::args::{bytes_arg, consistency_arg, opt_out_arg, out_arg, response_arg, slice_arg};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_error_free, jk_status};
use crate::runtime::{block_on, run_callback, runtime};

pub use crate::buffer::jk_bytes;

/// "No index": returned for the first index of a write whose response level does not return it
/// (`ONE_WAY`, `RECEIVE`, `PERSISTENCE`) and by `jk_journal_query_index` for an empty partition.
pub const JK_NO_INDEX: u64 = u64::MAX;

/// One journal entry. Part of a `jk_entries`; valid until `jk_entries_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_entry {
    pub partition: u16,
    /// Entries appended together share a batch; `batch_size` is its length.
    pub batch_size: u16,
    /// Position of this entry within its batch (0-based).
    pub offset: u16,
    /// Dense index within the partition.
    pub index: u64,
    /// The Raft term the entry was written in.
    pub term: u64,
    /// Store time chosen by the leader (milliseconds since the Unix epoch; never decreasing).
    pub timestamp_ms: u64,
    /// Never NULL (points to no bytes when `payload_len` is 0).
    pub payload: *const u8,
    pub payload_len: usize,
}

/// Entries returned by `jk_journal_get`, in index order. Owned by the caller; free with
/// `jk_entries_free`. Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_entries {
    pub entries: *const jk_entry,
    pub len: usize,
}

/// One partition and an index (an element of `jk_indices`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_partition_index {
    pub partition: u16,
    pub index: u64,
}

/// Per partition, an index (`jk_journal_min_indices` / `jk_journal_max_indices`), in partition
/// order. Owned by the caller; free with `jk_indices_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_indices {
    pub items: *const jk_partition_index,
    pub len: usize,
}

/// The partition set (`jk_journal_list_partitions`), ascending. Owned by the caller; free with
/// `jk_partitions_free`.
#[repr(C)]
#[derive(Debug)]
pub struct jk_partitions {
    pub partitions: *const u16,
    pub len: usize,
}

/// Called once when a `jk_journal_append_async` completes, on the library's callback thread:
/// `status` is `JK_STATUS_OK` with `first_index` (or `JK_NO_INDEX`, as `jk_journal_append`),
/// or an error with `error` (borrowed: valid during the call only; do not free) and
/// `first_index` = `JK_NO_INDEX`.
pub type jk_append_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: jk_status,
        first_index: u64,
        error: *const jk_error,
    ),
>;

/// The entries of an append (`jk_journal_append`, `jk_txn_append`), copied.
pub(crate) fn copy_entries(entries: *const jk_bytes, n: usize) -> Result<Vec<Vec<u8>>, Failure> {
    slice_arg(entries, n, "entries")?
        .iter()
        .enumerate()
        .map(|(i, b)| bytes_arg(b, &format!("entries[{i}].data")).map(<[u8]>::to_vec))
        .collect()
}

/// Appends `n` entries to `partition` as one batch, acknowledged at `response` (a
/// `jk_response_config`). Blocks until acknowledged. `first_index_out` may be NULL; else it
/// receives the index of the first entry (`REPLICATION` / `ALL`) or `JK_NO_INDEX` (other
/// levels). The entries are copied before the call returns. Bounds: 1..=`JK_MAX_APPEND_ENTRIES`
/// entries, each at most `JK_MAX_ENTRY_BYTES`, together at most `JK_MAX_APPEND_BYTES`; beyond
/// them `JK_STATUS_INVALID_ARGUMENT`. A retry after a lost reply is applied once.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_append(
    client: *const jk_client,
    partition: u16,
    entries: *const jk_bytes,
    n: usize,
    response: u32,
    first_index_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(first_index_out);
        let client = client_arg(client)?;
        let response = response_arg(response)?;
        let entries = copy_entries(entries, n)?;
        let first = block_on(client.journal().append(partition, entries, response))??;
        if let Some(out) = out {
            out.set(first.unwrap_or(JK_NO_INDEX));
        }
        Ok(())
    }
}

/// `user_data` crosses to the callback thread; the header tells the caller it must allow that.
struct UserData(*mut c_void);

// SAFETY: the library only hands the pointer back to the caller's callback; the header states
// that `user_data` must be usable from the library's callback thread.
unsafe impl Send for UserData {}

impl UserData {
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Like `jk_journal_append`, without blocking: returns once the arguments are checked and the
/// entries copied; `callback` then runs exactly once, on the library's callback thread, with
/// the outcome and `user_data`. When this returns an error, `callback` is never called. The
/// callback must not block for long (callbacks of async calls run one at a time); it may call
/// any `jk_` function, including blocking ones and `jk_client_free` of this client.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_append_async(
    client: *const jk_client,
    partition: u16,
    entries: *const jk_bytes,
    n: usize,
    response: u32,
    callback: jk_append_callback,
    user_data: *mut c_void,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?.clone();
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        let response = response_arg(response)?;
        let entries = copy_entries(entries, n)?;
        let user_data = UserData(user_data);
        runtime()?.spawn(async move {
            let result = client.journal().append(partition, entries, response).await;
            let delivered = run_callback(Box::new(move || match result {
                // SAFETY: `callback` is the caller's function, called with its own
                // `user_data`, as documented.
                Ok(first) => unsafe {
                    callback(
                        user_data.get(),
                        jk_status::Ok,
                        first.unwrap_or(JK_NO_INDEX),
                        std::ptr::null(),
                    )
                },
                Err(e) => {
                    let failure = Failure::from(e);
                    let status = failure.status;
                    let error = failure.into_error();
                    // SAFETY: as above; `error` is borrowed for the call and freed after it.
                    unsafe { callback(user_data.get(), status, JK_NO_INDEX, error) };
                    jk_error_free(error);
                }
            }));
            if let Err(f) = delivered {
                eprintln!("libjournalkeeper: an append callback could not run: {}", f.message);
            }
        });
        Ok(())
    }
}

/// Reads up to `max_entries` (1..=`JK_MAX_GET_ENTRIES`) entries of `partition` from `index` on
/// (possibly fewer: replies are bounded in size) at `consistency` (a `jk_query_consistency`). `JK_STATUS_INDEX_OVERFLOW`
/// when `index` is at or past the end, `JK_STATUS_INDEX_UNDERFLOW` when compacted away. On
/// success `*out` is a new `jk_entries` for `jk_entries_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_get(
    client: *const jk_client,
    partition: u16,
    index: u64,
    max_entries: u32,
    consistency: u32,
    out: *mut *mut jk_entries,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let consistency = consistency_arg(consistency)?;
        let entries =
            block_on(client.journal().get(partition, index, max_entries, consistency))??;
        out.set(to_entries(entries));
        Ok(())
    }
}

type EntriesStorage = (Vec<JournalEntry>, Vec<jk_entry>);

fn to_entries(entries: Vec<JournalEntry>) -> *mut jk_entries {
    let views: Vec<jk_entry> = entries
        .iter()
        .map(|e| jk_entry {
            partition: e.partition,
            batch_size: e.batch_size,
            offset: e.offset,
            index: e.index,
            term: e.term,
            timestamp_ms: e.timestamp_ms,
            payload: e.payload.as_ptr(),
            payload_len: e.payload.len(),
        })
        .collect();
    to_owned_view::<jk_entries, EntriesStorage>((entries, views), |(_, v)| jk_entries {
        entries: v.as_ptr(),
        len: v.len(),
    })
}

/// Frees entries returned by `jk_journal_get`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_entries_free(entries: *mut jk_entries) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_entries, EntriesStorage>(entries);
    }
}

fn indices_call(
    client: *const jk_client,
    consistency: u32,
    out: *mut *mut jk_indices,
    min: bool,
) -> Result<(), Failure> {
    let out = out_arg(out, "out")?;
    let client = client_arg(client)?;
    let journal = client
        .journal()
        .with_consistency(consistency_arg(consistency)?);
    let map = if min {
        block_on(journal.min_indices())??
    } else {
        block_on(journal.max_indices())??
    };
    let items: Vec<jk_partition_index> = map
        .into_iter()
        .map(|(partition, index)| jk_partition_index { partition, index })
        .collect();
    out.set(to_owned_view(items, |v| jk_indices {
        items: v.as_ptr(),
        len: v.len(),
    }));
    Ok(())
}

/// Per partition, the smallest readable index, read at `consistency`. On success `*out` is a
/// new `jk_indices` for `jk_indices_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_min_indices(
    client: *const jk_client,
    consistency: u32,
    out: *mut *mut jk_indices,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        indices_call(client, consistency, out, true)
    }
}

/// Per partition, the index the next appended entry will get, read at `consistency`. On
/// success `*out` is a new `jk_indices` for `jk_indices_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_max_indices(
    client: *const jk_client,
    consistency: u32,
    out: *mut *mut jk_indices,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        indices_call(client, consistency, out, false)
    }
}

/// Frees indices returned by `jk_journal_min_indices` / `jk_journal_max_indices`. NULL is
/// allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_indices_free(indices: *mut jk_indices) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_indices, Vec<jk_partition_index>>(indices);
    }
}

/// The current partition set, read at `consistency`. On success `*out` is a new
/// `jk_partitions` for `jk_partitions_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_list_partitions(
    client: *const jk_client,
    consistency: u32,
    out: *mut *mut jk_partitions,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let journal = client.journal().with_consistency(consistency_arg(consistency)?);
        let set: Vec<u16> = block_on(journal.list_partitions())??.into_iter().collect();
        out.set(to_owned_view(set, |v| jk_partitions {
            partitions: v.as_ptr(),
            len: v.len(),
        }));
        Ok(())
    }
}

/// Frees a partition set returned by `jk_journal_list_partitions`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_partitions_free(partitions: *mut jk_partitions) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_partitions, Vec<u16>>(partitions);
    }
}

/// The index of `partition` matching `timestamp_ms`, read at `consistency`: the last entry
/// stored at or before `timestamp_ms`, and among entries sharing that store time the first of
/// them. Before every entry: the first entry. At or after the last entry's time: the last
/// entry (the first of those sharing its time), never the partition's end index.
/// `JK_NO_INDEX` only when the partition is empty. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_query_index(
    client: *const jk_client,
    partition: u16,
    timestamp_ms: u64,
    consistency: u32,
    index_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(index_out, "index_out")?;
        let client = client_arg(client)?;
        let journal = client.journal().with_consistency(consistency_arg(consistency)?);
        let index = block_on(journal.query_index(partition, timestamp_ms))??;
        out.set(index.unwrap_or(JK_NO_INDEX));
        Ok(())
    }
}

/// Replaces the partition set with the `n` (1..=`JK_MAX_PARTITIONS`) partitions in
/// `partitions` (committed before this returns). A removed partition that holds entries
/// cannot be added back (its old entries would reappear): such a set gives
/// `JK_STATUS_INVALID_ARGUMENT` naming it and changes nothing; use new ids. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_journal_scale_partitions(
    client: *const jk_client,
    partitions: *const u16,
    n: usize,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        let partitions = slice_arg(partitions, n, "partitions")?;
        block_on(client.journal().scale_partitions(partitions))??;
        Ok(())
    }
}
