//! The coordination KV: set, get, exists, remove, list, compare-and-set. Keys are
//! NUL-terminated UTF-8 strings; values are bytes. Writes are acknowledged once committed.

use std::ffi::c_char;

use crate::args::{bytes_arg, consistency_arg, opt_out_arg, opt_ref_arg, out_arg, str_arg};
use crate::buffer::{buffer_view, jk_buffer, jk_bytes, key_bytes, to_opt_buffer};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{jk_error, jk_status};
use crate::runtime::block_on;

/// One key and its value (an element of `jk_kv_entries`).
#[repr(C)]
#[derive(Debug)]
pub struct jk_kv_entry {
    /// NUL-terminated; `key_len` bytes before the NUL.
    pub key: *const c_char,
    pub key_len: usize,
    pub value: jk_buffer,
}

/// Keys and values returned by `jk_kv_list`, in key order. Owned by the caller; free with
/// `jk_kv_entries_free`. Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_kv_entries {
    pub entries: *const jk_kv_entry,
    pub len: usize,
}

/// Sets `key` (non-empty, at most `JK_MAX_KEY_BYTES`) to `value` (copied; at most
/// `JK_MAX_VALUE_BYTES`). `previous_out` may be NULL; else it receives the previous value as a
/// new `jk_buffer` for `jk_buffer_free`, or NULL when the key was absent. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_set(
    client: *const jk_client,
    key: *const c_char,
    value: jk_bytes,
    previous_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(previous_out);
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let value = bytes_arg(&value, "value.data")?.to_vec();
        let previous = block_on(client.kv().set(key, value))??;
        if let Some(out) = out {
            out.set(to_opt_buffer(previous));
        }
        Ok(())
    }
}

/// The value of `key`, read at `consistency` (a `jk_query_consistency`). On success
/// `*value_out` is a new `jk_buffer` for `jk_buffer_free`, or NULL when the key is absent.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_get(
    client: *const jk_client,
    key: *const c_char,
    consistency: u32,
    value_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(value_out, "value_out")?;
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let kv = client.kv().with_consistency(consistency_arg(consistency)?);
        let value = block_on(kv.get(key))??;
        out.set(to_opt_buffer(value));
        Ok(())
    }
}

/// Whether `key` exists, read at `consistency`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_exists(
    client: *const jk_client,
    key: *const c_char,
    consistency: u32,
    exists_out: *mut bool,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(exists_out, "exists_out")?;
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let kv = client.kv().with_consistency(consistency_arg(consistency)?);
        out.set(block_on(kv.exists(key))??);
        Ok(())
    }
}

/// Removes `key`. `previous_out` may be NULL; else it receives the removed value as a new
/// `jk_buffer` for `jk_buffer_free`, or NULL when the key was absent. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_remove(
    client: *const jk_client,
    key: *const c_char,
    previous_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = opt_out_arg(previous_out);
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let previous = block_on(client.kv().remove(key))??;
        if let Some(out) = out {
            out.set(to_opt_buffer(previous));
        }
        Ok(())
    }
}

type KvStorage = (Vec<(Vec<u8>, Vec<u8>)>, Vec<jk_kv_entry>);

/// Every key starting with `prefix` ("" for all) with its value, in key order, read at
/// `consistency` (large results are read in pages, each at least as fresh as the one before;
/// there is no bound on the number of keys returned).
/// On success `*out` is a new `jk_kv_entries` for `jk_kv_entries_free`. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_list(
    client: *const jk_client,
    prefix: *const c_char,
    consistency: u32,
    out: *mut *mut jk_kv_entries,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let prefix = str_arg(prefix, "prefix")?;
        let kv = client.kv().with_consistency(consistency_arg(consistency)?);
        out.set(entries_view(block_on(kv.list(prefix))??));
        Ok(())
    }
}

/// The value `key` had at log index `index` (a read at an index: the second step of a
/// two-step read, after `jk_client_sync` returned the leader's applied index). Any node that
/// has applied `index` answers; one behind it passes the read to the leader. On success
/// `*value_out` is a new `jk_buffer` for `jk_buffer_free`, or NULL when the key was absent
/// then. `JK_STATUS_INDEX_OVERFLOW`: not applied yet; `JK_STATUS_INDEX_UNDERFLOW`: before the
/// oldest state the node can rebuild (see `retain_history`). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_get_at(
    client: *const jk_client,
    key: *const c_char,
    index: u64,
    value_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(value_out, "value_out")?;
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let value = block_on(client.kv().get_at(key, index))??;
        out.set(to_opt_buffer(value));
        Ok(())
    }
}

/// Every key starting with `prefix` ("" for all) with its value as they were at log index
/// `index`, in key order: one consistent state however many pages it takes. Errors as
/// `jk_kv_get_at`. On success `*out` is a new `jk_kv_entries` for `jk_kv_entries_free`.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_list_at(
    client: *const jk_client,
    prefix: *const c_char,
    index: u64,
    out: *mut *mut jk_kv_entries,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let prefix = str_arg(prefix, "prefix")?;
        out.set(entries_view(block_on(client.kv().list_at(prefix, index))??));
        Ok(())
    }
}

/// The caller-owned `jk_kv_entries` of a listing.
fn entries_view(list: Vec<(String, Vec<u8>)>) -> *mut jk_kv_entries {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> =
        list.into_iter().map(|(k, v)| (key_bytes(&k), v)).collect();
    let views: Vec<jk_kv_entry> = pairs
        .iter()
        .map(|(k, v)| jk_kv_entry {
            key: k.as_ptr().cast::<c_char>(),
            key_len: k.len() - 1,
            value: buffer_view(v),
        })
        .collect();
    to_owned_view::<jk_kv_entries, KvStorage>((pairs, views), |(_, v)| jk_kv_entries {
        entries: v.as_ptr(),
        len: v.len(),
    })
}

/// Frees entries returned by `jk_kv_list`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_entries_free(entries: *mut jk_kv_entries) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_kv_entries, KvStorage>(entries);
    }
}

/// Compare-and-set (key and value bounds as `jk_kv_set`): sets `key` to `*new_value` (removes
/// it when `new_value` is NULL) only if
/// its value equals `*expect` (`expect` NULL: only if the key is absent). `*swapped_out` says
/// whether it happened. `current_out` may be NULL; else it receives the key's value after the
/// operation as a new `jk_buffer` for `jk_buffer_free`, or NULL when absent. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_cas(
    client: *const jk_client,
    key: *const c_char,
    expect: *const jk_bytes,
    new_value: *const jk_bytes,
    swapped_out: *mut bool,
    current_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let swapped = out_arg(swapped_out, "swapped_out")?;
        let current = opt_out_arg(current_out);
        let client = client_arg(client)?;
        let key = str_arg(key, "key")?;
        let expect = opt_ref_arg(expect)
            .map(|b| bytes_arg(b, "expect->data").map(<[u8]>::to_vec))
            .transpose()?;
        let new = opt_ref_arg(new_value)
            .map(|b| bytes_arg(b, "new_value->data").map(<[u8]>::to_vec))
            .transpose()?;
        let result = block_on(client.kv().compare_and_set(key, expect, new))??;
        swapped.set(result.swapped);
        if let Some(out) = current {
            out.set(to_opt_buffer(result.current));
        }
        Ok(())
    }
}
