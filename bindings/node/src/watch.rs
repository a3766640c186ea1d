//! `Watch`: a KV watch delivering events to a JS callback through a weak (unref'd)
//! thread-safe function, so a watch never keeps the process alive. A task on the runtime owns
//! the core's `WatchStream`; `close()` (or the `Client` closing) ends it, which unwatches on the
//! server and releases the callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use journalkeeper::api::ErrorKind;
use journalkeeper::client::WatchStream;
use journalkeeper::state::watch::KvEvent as CoreEvent;
use napi::Status;
use napi::bindgen_prelude::Buffer;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::oneshot;

/// The `code` of an error passed to a watch callback (the core's `ErrorKind::code()`).
pub struct Code(String);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<ErrorKind> for Code {
    fn from(k: ErrorKind) -> Self {
        Code(k.code().to_string())
    }
}

impl From<Status> for Code {
    fn from(s: Status) -> Self {
        Code(s.as_ref().to_string())
    }
}

/// The JS callback of a watch: `(err, event)`, weak.
pub type WatchCallback = ThreadsafeFunction<KvEvent, (), KvEvent, Code, true, true>;

/// One change of a watched key.
#[napi(object)]
pub struct KvEvent {
    /// Log index of the entry that made the change.
    pub index: f64,
    pub key: String,
    /// null: the key did not exist before.
    pub old_value: Option<Buffer>,
    /// null: the change removed the key.
    pub new_value: Option<Buffer>,
}

fn event(e: CoreEvent) -> KvEvent {
    KvEvent {
        // Log indices stay far below 2^53; the core never produces larger ones in practice.
        index: e.index as f64,
        key: e.key,
        old_value: e.old_value.map(Buffer::from),
        new_value: e.new_value.map(Buffer::from),
    }
}

/// A running watch. `close()` stops it: no event received after it is delivered (events
/// already queued to the JS thread may still be).
#[napi]
pub struct Watch {
    stop: Option<oneshot::Sender<()>>,
    next_index: Arc<AtomicU64>,
}

impl Watch {
    pub(crate) fn spawn(mut stream: WatchStream, callback: WatchCallback) -> Watch {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let next_index = Arc::new(AtomicU64::new(stream.next_index()));
        let next = next_index.clone();
        tokio::spawn(async move {
            // A dropped (garbage-collected) handle does not stop the watch; only close() does.
            let mut handle_alive = true;
            loop {
                tokio::select! {
                    r = &mut stopped, if handle_alive => match r {
                        Ok(()) => return,
                        Err(_) => handle_alive = false,
                    },
                    r = stream.next() => {
                        next.store(stream.next_index(), Ordering::Relaxed);
                        match r {
                            Ok(e) => {
                                callback.call(Ok(event(e)), ThreadsafeFunctionCallMode::NonBlocking);
                            }
                            Err(e) => {
                                let retried = matches!(e.kind, ErrorKind::Timeout | ErrorKind::Unavailable);
                                let err = napi::Error::new(Code(e.kind.code().to_string()), e.message);
                                callback.call(Err(err), ThreadsafeFunctionCallMode::NonBlocking);
                                if !retried {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        });
        Watch {
            stop: Some(stop),
            next_index,
        }
    }
}

#[napi]
impl Watch {
    /// Stops the watch (unwatches on the server, releases the callback). Idempotent.
    #[napi]
    pub fn close(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The lowest log index not yet received (where a new watch would resume).
    #[napi(getter)]
    pub fn next_index(&self) -> f64 {
        self.next_index.load(Ordering::Relaxed) as f64
    }
}
