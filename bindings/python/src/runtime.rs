//! The one tokio runtime of the module, and the two ways Python waits on the core's futures.
//!
//! Owns: building the runtime lazily, rebuilding it in a forked child (the parent's worker
//! threads do not exist there, so its runtime is leaked, never dropped or used), blocking calls
//! that release the GIL and still notice Ctrl-C, and asyncio futures completed from tokio.
//! Never does: anything the core's API does not already do.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::to_py_err;

/// The runtime and the process it was built in.
struct Owned {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// How often a blocking call wakes up (with the GIL) to let Python deliver signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The runtime of this process, built on first use (and again after a fork).
pub fn runtime() -> PyResult<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some(owned) = slot.as_ref()
        && owned.pid == pid
    {
        return Ok(owned.runtime.clone());
    }
    forget_parent_runtime(&mut slot);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("journalkeeper")
        .build()
        .map_err(|e| {
            to_py_err(Error::new(
                ErrorKind::Io,
                format!("cannot start the tokio runtime: {e}"),
            ))
        })?;
    let runtime = Arc::new(runtime);
    *slot = Some(Owned {
        pid,
        runtime: runtime.clone(),
    });
    Ok(runtime)
}

/// Called in a forked child (`os.register_at_fork(after_in_child=…)`): the parent's runtime
/// is leaked (dropping it would wait for threads that were not forked); the next call builds
/// a new one.
pub fn after_fork_in_child() {
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_some_and(|o| o.pid != std::process::id()) {
        forget_parent_runtime(&mut slot);
    }
}

fn forget_parent_runtime(slot: &mut Option<Owned>) {
    if let Some(old) = slot.take() {
        std::mem::forget(old.runtime);
    }
}

/// Fails with `ClosedError` when an object made in process `pid` is used in another one (a
/// forked child): its connections and tasks belong to the parent's runtime.
pub fn check_process(pid: u32, what: &str) -> PyResult<()> {
    if pid == std::process::id() {
        Ok(())
    } else {
        Err(to_py_err(Error::new(
            ErrorKind::Closed,
            format!(
                "this {what} was created in process {pid} before a fork; \
                 create a new one in this process"
            ),
        )))
    }
}

/// Runs `fut` on the runtime while the GIL is released; wakes up every 100 ms to let Python
/// raise pending signals (Ctrl-C drops — cancels — the future).
pub fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    let mut fut = std::pin::pin!(fut);
    loop {
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut fut).await })
        });
        match step {
            Ok(output) => return Ok(output),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Runs a core call to completion, blocking, and converts its result.
pub fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: for<'py> IntoPyObject<'py> + Send,
{
    block_on(py, fut)?.map_err(to_py_err)?.into_py_any(py)
}

/// Either blocks (`aio == false`) or returns an `asyncio.Future` of the running loop that a
/// tokio task completes ([`spawn_awaitable`]).
pub fn call<T, F>(py: Python<'_>, aio: bool, fut: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    if aio {
        spawn_awaitable(py, fut).map(Bound::unbind)
    } else {
        wait(py, fut)
    }
}

/// An `asyncio.Future` on the running event loop, completed (through
/// `loop.call_soon_threadsafe`) by a tokio task running `fut`. Cancelling the asyncio future
/// aborts the task, which drops — cancels — `fut`.
pub fn spawn_awaitable<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_future = event_loop.call_method0("create_future")?;
    let runtime = runtime()?;
    let (loop_ref, future_ref) = (event_loop.unbind(), py_future.clone().unbind());
    let task = runtime.spawn(async move {
        let result = fut.await;
        // `None`: the interpreter is finalizing; nobody is waiting any more.
        let _ = Python::try_attach(|py| {
            let (error, value) = match result.map_err(to_py_err).and_then(|v| v.into_py_any(py)) {
                Ok(value) => (py.None(), value),
                Err(e) => (e.into_value(py).into_any(), py.None()),
            };
            let resolve = resolver(py)?;
            loop_ref
                .bind(py)
                .call_method1("call_soon_threadsafe", (resolve, future_ref, error, value))
                .map(drop)
                // The loop is closed: nobody is waiting any more.
                .or_else(|_| Ok::<(), PyErr>(()))
        });
    });
    let abort = AbortOnCancel {
        task: task.abort_handle(),
    };
    py_future.call_method1("add_done_callback", (abort,))?;
    Ok(py_future)
}

/// `resolve_future(fut, error, value)`, cached.
fn resolver(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    RESOLVE
        .get_or_try_init(py, || {
            wrap_pyfunction!(resolve_future, py).map(|f| f.into_any().unbind())
        })
        .map(|f| f.bind(py))
}

/// Completes `fut` with `error` or `value` unless it was cancelled meanwhile.
#[pyfunction]
fn resolve_future(
    fut: &Bound<'_, PyAny>,
    error: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    if error.is_none() {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (error,))?;
    }
    Ok(())
}

/// A done-callback of the asyncio future: aborts the tokio task when the future was cancelled.
#[pyclass(frozen)]
struct AbortOnCancel {
    task: AbortHandle,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}
