//! KV watches with a callback: `jk_kv_watch` starts a library thread that waits for events on
//! the runtime and calls the callback *outside* it (so the callback may make blocking calls);
//! `jk_watch_close` stops the thread and waits for it, so no callback runs after it returns
//! (the thread itself: `subscription`).

use std::ffi::{c_char, c_void};

use journalkeeper::client::WatchStream;
use journalkeeper::state::watch::{KvEvent, WatchFilter};

use crate::args::{out_arg, str_arg};
use crate::buffer::{buffer_view, jk_buffer, key_bytes};
use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_status};
use crate::runtime::block_on;
use crate::subscription::{Callback, Source, Subscription};

/// A running watch. Opaque. Made by `jk_kv_watch`, released by `jk_watch_close`.
pub struct jk_watch {
    _private: [u8; 0],
}

impl Castable for jk_watch {
    type Ownership = OwnershipBox;
    type RustType = Subscription;
}

/// One KV change, passed to a `jk_watch_callback`. Borrowed: valid during the callback only.
#[repr(C)]
#[derive(Debug)]
pub struct jk_kv_event {
    /// Log index of the entry that made the change (events arrive in index order).
    pub index: u64,
    /// NUL-terminated; `key_len` bytes before the NUL.
    pub key: *const c_char,
    pub key_len: usize,
    /// The value before the change; NULL when the key did not exist.
    pub old_value: *const jk_buffer,
    /// The value after the change; NULL when the change removed the key.
    pub new_value: *const jk_buffer,
}

/// Called on the watch's own library thread, once per event (`event` non-NULL, `error` NULL)
/// in log order. When the watch ends (client closed: `JK_STATUS_CLOSED`; events no longer held
/// by the servers: `JK_STATUS_INDEX_UNDERFLOW`; no node reachable in time) it is called once
/// more with `event` NULL and `error` set, and never again. Both pointers are borrowed for the
/// call only. The callback must not block for long (events queue up meanwhile); it may call any
/// `jk_` function, including blocking ones and `jk_watch_close` of its own watch.
pub type jk_watch_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, event: *const jk_kv_event, error: *const jk_error),
>;

impl Source for WatchStream {
    type Item = KvEvent;

    async fn next_item(&mut self) -> Result<KvEvent, Failure> {
        Ok(self.next().await?)
    }
}

/// Calls the callback with the C view of `e`.
fn deliver(callback: &Callback<jk_kv_event>, e: &KvEvent) {
    let key = key_bytes(&e.key);
    let old = e.old_value.as_deref().map(buffer_view);
    let new = e.new_value.as_deref().map(buffer_view);
    callback.event(&jk_kv_event {
        index: e.index,
        key: key.as_ptr().cast::<c_char>(),
        key_len: key.len() - 1,
        old_value: old
            .as_ref()
            .map_or(std::ptr::null(), |b| b as *const jk_buffer),
        new_value: new
            .as_ref()
            .map_or(std::ptr::null(), |b| b as *const jk_buffer),
    });
}

/// Watches one key (`is_prefix` false) or every key starting with `key_or_prefix` (`is_prefix`
/// true; "" for all keys) from log index `from_index` on (0: from the next change; an older
/// index replays the changes since, as long as the servers hold them). Blocks until the watch
/// is registered, then calls `callback` with `user_data` on a library thread for every change
/// (see `jk_watch_callback`). On success `*out` is a new handle for `jk_watch_close`; when this
/// returns an error the callback is never called. The watch survives reconnects and leader
/// changes without missing or repeating an event. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_kv_watch(
    client: *const jk_client,
    key_or_prefix: *const c_char,
    is_prefix: bool,
    from_index: u64,
    callback: jk_watch_callback,
    user_data: *mut c_void,
    out: *mut *mut jk_watch,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(out, "out")?;
        let client = client_arg(client)?;
        let key = str_arg(key_or_prefix, "key_or_prefix")?.to_string();
        let callback = Callback::new(callback, user_data)?;
        let filter = if is_prefix { WatchFilter::Prefix(key) } else { WatchFilter::Key(key) };
        let stream = block_on(client.kv().watch(filter, from_index))??;
        let watch = Subscription::start("jk-watch", stream, callback, deliver)?;
        out.set(to_boxed_mut_ptr::<jk_watch>(watch));
        Ok(())
    }
}

/// Stops the watch and frees the handle. After it returns, the callback is never called again
/// (it waits for a callback in progress to return — unless called from that callback itself,
/// which is allowed: the watch then ends when the callback returns). NULL is allowed (nothing
/// happens). Must be the last call on `watch`. Returns `JK_STATUS_OK`, or `JK_STATUS_PANIC`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_watch_close(watch: *mut jk_watch) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        if let Some(watch) = free_box::<jk_watch>(watch) {
            watch.close();
        }
        Ok(())
    }
}
