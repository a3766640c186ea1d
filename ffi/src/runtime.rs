//! The library's one tokio runtime: multi-threaded, two workers, built on first use and kept
//! for the life of the process (its threads show up as "still reachable" under valgrind).
//! Blocking exports run their future with [`block_on`]; callbacks never run on its workers
//! (see `watch` and `journal`), so a callback may itself make blocking calls.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::{Failure, jk_status};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime (`Io` when the OS refuses its threads).
pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("jk-runtime")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the library's tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| Failure::new(jk_status::Io, e.clone()))
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread.
/// Called from a thread that is already inside a runtime (a C program's own callback thread
/// never is; a Rust host's might be), it fails with `InvalidArgument` instead of panicking.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, Failure> {
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::invalid(
            "a blocking jk_ function was called from inside an async runtime thread",
        ));
    }
    Ok(rt.block_on(future))
}

type Job = Box<dyn FnOnce() + Send>;

static CALLBACKS: OnceLock<Result<std::sync::mpsc::Sender<Job>, String>> = OnceLock::new();

/// Runs `job` (which calls a C callback) on the library's callback thread, outside the
/// runtime, one job at a time in submission order.
pub(crate) fn run_callback(job: Job) -> Result<(), Failure> {
    let sender = CALLBACKS
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("jk-callbacks".into())
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // A panic in our own conversion code must not end the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map(|_| tx)
                .map_err(|e| format!("cannot start the library's callback thread: {e}"))
        })
        .as_ref()
        .map_err(|e| Failure::new(jk_status::Io, e.clone()))?;
    sender
        .send(job)
        .map_err(|_| Failure::new(jk_status::Internal, "the callback thread has stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_refuses_to_nest_inside_the_runtime() {
        let rt = runtime().unwrap();
        let nested = rt.block_on(async { block_on(async { 1 }).map_err(|f| f.status) });
        assert_eq!(nested, Err(jk_status::InvalidArgument));
        assert_eq!(block_on(async { 2 }).unwrap(), 2);
    }

    #[test]
    fn callbacks_run_outside_the_runtime_and_may_block_on_it() {
        let (tx, rx) = std::sync::mpsc::channel();
        run_callback(Box::new(move || {
            tx.send(block_on(async { 3 }).map_err(|f| f.status))
                .unwrap();
        }))
        .unwrap();
        assert_eq!(rx.recv().unwrap(), Ok(3));
    }
}
