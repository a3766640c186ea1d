//! KV watches with a callback: `jk_kv_watch` starts a library thread that waits for events on
//! the runtime and calls the callback *outside* it (so the callback may make blocking calls);
//! `jk_watch_close` stops the thread and waits for it, so no callback runs after it returns.

use std::ffi::{c_char, c_void};
use std::thread::{JoinHandle, ThreadId};

use journalkeeper::client::WatchStream;
use journalkeeper::state::watch::{KvEvent, WatchFilter};
use tokio::sync::oneshot;

use crate::args::{out_arg, str_arg};
use crate::buffer::{buffer_view, jk_buffer, key_bytes};
use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_error_free, jk_status};
use crate::runtime::{block_on, runtime};

/// A running watch. Opaque. Made by `jk_kv_watch`, released by `jk_watch_close`.
pub struct jk_watch {
    _private: [u8; 0],
}

pub(crate) struct WatchHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

impl Castable for jk_watch {
    type Ownership = OwnershipBox;
    type RustType = WatchHandle;
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

/// `user_data` and the callback cross to the watch thread.
struct Delivery {
    callback: unsafe extern "C" fn(*mut c_void, *const jk_kv_event, *const jk_error),
    user_data: *mut c_void,
}

// SAFETY: the library only hands `user_data` back to the caller's callback; the header states
// that both must be usable from the watch's library thread.
unsafe impl Send for Delivery {}

impl Delivery {
    fn event(&self, e: &KvEvent) {
        let key = key_bytes(&e.key);
        let old = e.old_value.as_deref().map(buffer_view);
        let new = e.new_value.as_deref().map(buffer_view);
        let event = jk_kv_event {
            index: e.index,
            key: key.as_ptr().cast::<c_char>(),
            key_len: key.len() - 1,
            old_value: old
                .as_ref()
                .map_or(std::ptr::null(), |b| b as *const jk_buffer),
            new_value: new
                .as_ref()
                .map_or(std::ptr::null(), |b| b as *const jk_buffer),
        };
        // SAFETY: the caller's callback with its own `user_data`; `event` and what it points
        // to live until the call returns.
        unsafe { (self.callback)(self.user_data, &event, std::ptr::null()) };
    }

    fn end(&self, failure: Failure) {
        let error = failure.into_error();
        // SAFETY: as above; `error` is borrowed for the call and freed after it.
        unsafe { (self.callback)(self.user_data, std::ptr::null(), error) };
        jk_error_free(error);
    }
}

enum Step {
    Stop,
    Event(KvEvent),
    End(Failure),
}

fn run(mut stream: WatchStream, mut stop: oneshot::Receiver<()>, delivery: Delivery) {
    let Ok(rt) = runtime() else { return };
    loop {
        // Wait inside the runtime, deliver outside it.
        let step = rt.block_on(async {
            tokio::select! {
                biased;
                _ = &mut stop => Step::Stop,
                r = stream.next() => match r {
                    Ok(event) => Step::Event(event),
                    Err(e) => Step::End(e.into()),
                },
            }
        });
        match step {
            Step::Stop => break,
            Step::Event(event) => delivery.event(&event),
            Step::End(failure) => {
                delivery.end(failure);
                break;
            }
        }
    }
    let _guard = rt.enter();
    drop(stream);
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
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        let filter = if is_prefix { WatchFilter::Prefix(key) } else { WatchFilter::Key(key) };
        let stream = block_on(client.kv().watch(filter, from_index))??;
        let (stop_tx, stop_rx) = oneshot::channel();
        let delivery = Delivery { callback, user_data };
        let thread = std::thread::Builder::new()
            .name("jk-watch".into())
            .spawn(move || run(stream, stop_rx, delivery))
            .map_err(|e| Failure::new(jk_status::Io, format!("cannot start a watch thread: {e}")))?;
        out.set(to_boxed_mut_ptr::<jk_watch>(WatchHandle {
            stop: Some(stop_tx),
            thread_id: thread.thread().id(),
            thread: Some(thread),
        }));
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
        if let Some(mut handle) = free_box::<jk_watch>(watch) {
            if let Some(stop) = handle.stop.take() {
                let _ = stop.send(());
            }
            if std::thread::current().id() != handle.thread_id
                && let Some(thread) = handle.thread.take()
            {
                let _ = thread.join();
            }
        }
        Ok(())
    }
}
