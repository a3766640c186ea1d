//! The thread behind every callback subscription (`jk_watch`, `jk_events`): one library thread
//! per subscription waits for the next item on the runtime and calls the C callback *outside*
//! it (so the callback may make blocking calls); the item's end calls the callback once more
//! with `event` NULL and the error, then the thread stops. [`Subscription::close`] stops the
//! thread and joins it — unless called on that thread (from the callback), which then stops
//! after the callback returns — so no callback runs after it returns.
//!
//! Owns: the thread, the stop signal, the callback contract. Never does: convert items to C
//! (each module passes its own `deliver`).

use std::ffi::c_void;
use std::future::Future;
use std::thread::{JoinHandle, ThreadId};

use tokio::sync::oneshot;

use crate::error::{Failure, jk_error, jk_error_free, jk_status};
use crate::runtime::runtime;

/// What a subscription waits for: the next item, or the failure that ends it.
pub(crate) trait Source: Send + 'static {
    type Item;
    fn next_item(&mut self) -> impl Future<Output = Result<Self::Item, Failure>>;
}

/// The C callback of a subscription whose events are `E`, with the caller's `user_data`.
pub(crate) struct Callback<E> {
    callback: unsafe extern "C" fn(*mut c_void, *const E, *const jk_error),
    user_data: *mut c_void,
}

// SAFETY: the library only hands `user_data` back to the caller's callback; the header states
// that both must be usable from the subscription's library thread.
unsafe impl<E> Send for Callback<E> {}

impl<E> Callback<E> {
    /// The callback argument (`NullArgument` naming `callback` for NULL).
    pub fn new(
        callback: Option<unsafe extern "C" fn(*mut c_void, *const E, *const jk_error)>,
        user_data: *mut c_void,
    ) -> Result<Self, Failure> {
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        Ok(Callback {
            callback,
            user_data,
        })
    }

    /// Calls the callback with one event (`error` NULL).
    pub fn event(&self, event: &E) {
        // SAFETY: the caller's callback with its own `user_data`; `event` and what it points
        // to live until the call returns.
        unsafe { (self.callback)(self.user_data, event, std::ptr::null()) };
    }

    /// The last call: `event` NULL and the error (borrowed for the call, freed after it).
    fn end(&self, failure: Failure) {
        let error = failure.into_error();
        // SAFETY: as in `event`; `error` is a live `jk_error` until freed below.
        unsafe { (self.callback)(self.user_data, std::ptr::null(), error) };
        jk_error_free(error);
    }
}

/// A running subscription: its thread and the signal that stops it.
pub(crate) struct Subscription {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

enum Step<T> {
    Stop,
    Item(T),
    End(Failure),
}

impl Subscription {
    /// Starts thread `name`, which hands every item of `source` to `deliver` (which calls
    /// `callback.event`) until the source fails (then `callback.end`) or the subscription is
    /// closed.
    pub fn start<S: Source, E: 'static>(
        name: &str,
        source: S,
        callback: Callback<E>,
        deliver: fn(&Callback<E>, &S::Item),
    ) -> Result<Self, Failure> {
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(source, stop_rx, callback, deliver))
            .map_err(|e| {
                Failure::new(jk_status::Io, format!("cannot start a {name} thread: {e}"))
            })?;
        Ok(Subscription {
            stop: Some(stop_tx),
            thread_id: thread.thread().id(),
            thread: Some(thread),
        })
    }

    /// Stops the thread; waits for it unless called on it (from the callback).
    pub fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if std::thread::current().id() != self.thread_id
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

fn run<S: Source, E>(
    mut source: S,
    mut stop: oneshot::Receiver<()>,
    callback: Callback<E>,
    deliver: fn(&Callback<E>, &S::Item),
) {
    let Ok(rt) = runtime() else { return };
    loop {
        // Wait inside the runtime, deliver outside it.
        let step = rt.block_on(async {
            tokio::select! {
                biased;
                _ = &mut stop => Step::Stop,
                r = source.next_item() => match r {
                    Ok(item) => Step::Item(item),
                    Err(failure) => Step::End(failure),
                },
            }
        });
        match step {
            Step::Stop => break,
            Step::Item(item) => deliver(&callback, &item),
            Step::End(failure) => {
                callback.end(failure);
                break;
            }
        }
    }
    // The source may hold runtime resources (connections, timers) that must drop inside it.
    let _guard = rt.enter();
    drop(source);
}
