//! Journal transactions as blocking calls (`Client::transactions()`): create one with a
//! context, append batches to any partitions, commit (returns once every entry is visible) or
//! abort, and list the transactions not yet ended (`jk_txn_opening`, a view freed with
//! `jk_txn_infos_free`).
//!
//! Thin: every call is one `Transactions` call; the core checks the bounds and the phase
//! rules. Only the argument shapes C needs are checked here (pointers, UTF-8, a key given
//! twice).

use std::collections::{BTreeMap, btree_map::Entry};
use std::ffi::{CString, c_char};
use std::time::Duration;

use journalkeeper::client::DEFAULT_TRANSACTION_TIMEOUT;
use journalkeeper::client::protocol::TxnInfo;
use journalkeeper::state::txn::TxnPhase;

use crate::args::{consistency_arg, opt_out_arg, out_arg, slice_arg, str_arg};
use crate::buffer::jk_bytes;
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_status, lossy_cstring};
use crate::journal::copy_entries;
use crate::runtime::block_on;

/// The idle timeout of a transaction created with `timeout_ms` = 0 (60 s): one that sees no
/// append for that long is ended (aborted) by the leader.
pub const JK_DEFAULT_TXN_TIMEOUT_MS: u64 = 60000;

/// Where a transaction not yet ended stands (`jk_txn_info.phase`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_txn_phase {
    /// Taking appends.
    Open = 0,
    /// Its commit is decided and its entries are being published: it takes no more appends
    /// and cannot be aborted.
    Committing = 1,
}

impl From<TxnPhase> for jk_txn_phase {
    fn from(p: TxnPhase) -> Self {
        match p {
            TxnPhase::Open => jk_txn_phase::Open,
            TxnPhase::Committing => jk_txn_phase::Committing,
        }
    }
}

/// One context pair of a transaction (NUL-terminated strings; an interior NUL, which C cannot
/// see, reads as `?`).
#[repr(C)]
#[derive(Debug)]
pub struct jk_txn_context_pair {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// A transaction not yet ended (an element of `jk_txn_infos`).
#[repr(C)]
#[derive(Debug)]
pub struct jk_txn_info {
    /// Its id (the log index of its creation: ids increase).
    pub tx: u64,
    pub phase: jk_txn_phase,
    /// Entries and payload bytes it holds.
    pub entries: u64,
    pub bytes: u64,
    /// The partitions it appended to, ascending.
    pub partitions: *const u16,
    pub partitions_len: usize,
    /// Its context, by key.
    pub context: *const jk_txn_context_pair,
    pub context_len: usize,
}

/// The transactions not yet ended (`jk_txn_opening`), oldest first. Owned by the caller; free
/// with `jk_txn_infos_free`. Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_txn_infos {
    pub items: *const jk_txn_info,
    pub len: usize,
}

/// What one `jk_txn_info` points into: its partitions, its context strings and the pairs
/// pointing to them.
type InfoStorage = (Vec<u16>, Vec<(CString, CString)>, Vec<jk_txn_context_pair>);

type InfosStorage = (Vec<InfoStorage>, Vec<jk_txn_info>);

fn txn_infos(list: Vec<TxnInfo>) -> *mut jk_txn_infos {
    let mut heads = Vec::with_capacity(list.len());
    let mut storage: Vec<InfoStorage> = Vec::with_capacity(list.len());
    for t in list {
        let strings: Vec<(CString, CString)> = t
            .context
            .into_iter()
            .map(|(k, v)| (lossy_cstring(k), lossy_cstring(v)))
            .collect();
        let pairs = strings
            .iter()
            .map(|(k, v)| jk_txn_context_pair {
                key: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        heads.push((t.tx, t.phase, t.entries, t.bytes));
        storage.push((t.partitions.into_iter().collect(), strings, pairs));
    }
    // The views point into the heap data of each `InfoStorage`, which does not move when the
    // vector of them moves into the owned view.
    let views: Vec<jk_txn_info> = heads
        .into_iter()
        .zip(&storage)
        .map(
            |((tx, phase, entries, bytes), (partitions, _, pairs))| jk_txn_info {
                tx,
                phase: phase.into(),
                entries,
                bytes,
                partitions: partitions.as_ptr(),
                partitions_len: partitions.len(),
                context: pairs.as_ptr(),
                context_len: pairs.len(),
            },
        )
        .collect();
    to_owned_view::<jk_txn_infos, InfosStorage>((storage, views), |(_, v)| jk_txn_infos {
        items: v.as_ptr(),
        len: v.len(),
    })
}

/// The context of `jk_txn_create`: `len` keys and values, pairwise.
fn context_arg(
    keys: *const *const c_char,
    values: *const *const c_char,
    len: usize,
) -> Result<BTreeMap<String, String>, Failure> {
    let keys = slice_arg(keys, len, "context_keys")?;
    let values = slice_arg(values, len, "context_values")?;
    let mut context = BTreeMap::new();
    for (i, (k, v)) in keys.iter().zip(values).enumerate() {
        let key = str_arg(*k, &format!("context_keys[{i}]"))?;
        let value = str_arg(*v, &format!("context_values[{i}]"))?;
        match context.entry(key.to_string()) {
            Entry::Vacant(e) => {
                e.insert(value.to_string());
            }
            Entry::Occupied(_) => {
                return Err(Failure::invalid(format!(
                    "context_keys[{i}]: key {key:?} is given twice"
                )));
            }
        }
    }
    Ok(context)
}

/// Opens a transaction carrying the context `context_keys[i]` = `context_values[i]` for `i` <
/// `context_len` (NUL-terminated UTF-8 strings, each key once; both arrays may be NULL when
/// `context_len` is 0; at most 64 pairs of 16 KiB together), which `jk_txn_opening` reports.
/// `*tx_out` receives its id (ids increase). It is aborted by the leader when it sees no
/// append for `timeout_ms` (100 ..= 86 400 000; 0: `JK_DEFAULT_TXN_TIMEOUT_MS`). At most 128
/// are open at once (`JK_STATUS_INVALID_ARGUMENT` beyond). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_create(
    client: *const jk_client,
    context_keys: *const *const c_char,
    context_values: *const *const c_char,
    context_len: usize,
    timeout_ms: u64,
    tx_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(tx_out, "tx_out")?;
        let client = client_arg(client)?;
        let context = context_arg(context_keys, context_values, context_len)?;
        let timeout = if timeout_ms == 0 {
            DEFAULT_TRANSACTION_TIMEOUT
        } else {
            Duration::from_millis(timeout_ms)
        };
        out.set(block_on(client.transactions().create_with_timeout(context, timeout))??);
        Ok(())
    }
}

/// Adds the `n` entries as one batch for `partition` to transaction `tx` (copied before the
/// call returns; the bounds of `jk_journal_append`, and at most 3 MiB and 65 536 entries per
/// transaction). Nothing of it is readable until the transaction commits; it then keeps its
/// batch size and its place in the order of the transaction's appends. `entries_out` may be
/// NULL; else it receives the number of entries the transaction holds now.
/// `JK_STATUS_INVALID_ARGUMENT` when `tx` is not open (ended, or its commit decided) or
/// `partition` does not exist. A retry after a lost reply is applied once. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_append(
    client: *const jk_client,
    tx: u64,
    partition: u16,
    entries: *const jk_bytes,
    n: usize,
    entries_out: *mut u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(entries_out);
        let client = client_arg(client)?;
        let entries = copy_entries(entries, n)?;
        let held = block_on(client.transactions().append(tx, partition, entries))??;
        if let Some(out) = out {
            out.set(held);
        }
        Ok(())
    }
}

/// Commits transaction `tx`: returns once every entry is visible to readers at every level —
/// in each partition in the order appended, all at once (no reader sees part of it). A retry
/// after a lost reply or a leader change applies once and waits for the same publication.
/// `JK_STATUS_INVALID_ARGUMENT` ("not open") when `tx` has already ended (committed, aborted,
/// expired). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_commit(
    client: *const jk_client,
    tx: u64,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let client = client_arg(client)?;
        Ok(block_on(client.transactions().commit(tx))??)
    }
}

/// Aborts transaction `tx`: nothing of it will ever be visible. `existed_out` may be NULL;
/// else it receives false when `tx` had already ended (aborted or expired). A transaction
/// whose commit is decided cannot be aborted (`JK_STATUS_INVALID_ARGUMENT`). Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_abort(
    client: *const jk_client,
    tx: u64,
    existed_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(existed_out);
        let client = client_arg(client)?;
        let existed = block_on(client.transactions().abort(tx))??;
        if let Some(out) = out {
            out.set(existed);
        }
        Ok(())
    }
}

/// Every transaction not yet ended (open, or committing), oldest first, read at
/// `consistency` (a `jk_query_consistency`). On success `*out` is a new `jk_txn_infos` for
/// `jk_txn_infos_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_opening(
    client: *const jk_client,
    consistency: u32,
    out: *mut *mut jk_txn_infos,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let consistency = consistency_arg(consistency)?;
        out.set(txn_infos(block_on(client.transactions().opening(consistency))??));
        Ok(())
    }
}

/// Frees a list returned by `jk_txn_opening`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_txn_infos_free(infos: *mut jk_txn_infos) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_txn_infos, InfosStorage>(infos);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn the_default_timeout_is_the_cores() {
        assert_eq!(
            Duration::from_millis(JK_DEFAULT_TXN_TIMEOUT_MS),
            DEFAULT_TRANSACTION_TIMEOUT
        );
    }

    #[test]
    fn a_context_is_pairs_of_strings_each_key_once() {
        let (a, b, x, y) = (c"a", c"b", c"x", c"y");
        let keys = [a.as_ptr(), b.as_ptr()];
        let values = [x.as_ptr(), y.as_ptr()];
        let got = context_arg(keys.as_ptr(), values.as_ptr(), 2).unwrap();
        assert_eq!(
            got,
            BTreeMap::from([("a".into(), "x".into()), ("b".into(), "y".into())])
        );
        assert!(
            context_arg(std::ptr::null(), std::ptr::null(), 0)
                .unwrap()
                .is_empty()
        );
        let twice = [a.as_ptr(), a.as_ptr()];
        let e = context_arg(twice.as_ptr(), values.as_ptr(), 2).unwrap_err();
        assert!(e.message.contains("given twice"), "{}", e.message);
        let e = context_arg(keys.as_ptr(), std::ptr::null(), 2).unwrap_err();
        assert!(e.message.contains("context_values"), "{}", e.message);
        let null_key = [a.as_ptr(), std::ptr::null()];
        let e = context_arg(null_key.as_ptr(), values.as_ptr(), 2).unwrap_err();
        assert!(e.message.contains("context_keys[1]"), "{}", e.message);
    }

    #[test]
    fn a_list_owns_its_partitions_and_context() {
        let infos = txn_infos(vec![
            TxnInfo {
                tx: 7,
                context: BTreeMap::from([("order".into(), "42".into())]),
                phase: TxnPhase::Committing,
                entries: 3,
                bytes: 12,
                partitions: [1, 2].into(),
            },
            TxnInfo {
                tx: 9,
                context: BTreeMap::new(),
                phase: TxnPhase::Open,
                entries: 0,
                bytes: 0,
                partitions: Default::default(),
            },
        ]);
        // SAFETY: a live list made above; each pointer covers its `_len` elements.
        unsafe {
            let list = &*infos;
            assert_eq!(list.len, 2);
            let items = std::slice::from_raw_parts(list.items, list.len);
            let first = &items[0];
            assert_eq!((first.tx, first.phase), (7, jk_txn_phase::Committing));
            assert_eq!((first.entries, first.bytes), (3, 12));
            let partitions = std::slice::from_raw_parts(first.partitions, first.partitions_len);
            assert_eq!(partitions, [1, 2]);
            let pairs = std::slice::from_raw_parts(first.context, first.context_len);
            assert_eq!(CStr::from_ptr(pairs[0].key).to_str().unwrap(), "order");
            assert_eq!(CStr::from_ptr(pairs[0].value).to_str().unwrap(), "42");
            assert_eq!((items[1].tx, items[1].phase), (9, jk_txn_phase::Open));
            assert_eq!((items[1].partitions_len, items[1].context_len), (0, 0));
        }
        jk_txn_infos_free(infos);
        jk_txn_infos_free(std::ptr::null_mut());
    }
}
