//! A Python object as a `journalkeeper::state::StateMachine` hosted by an embedded `Server`.
//!
//! Owns: calling the object's `apply(ctx, command)`, `query(q)`, `snapshot(file)` and
//! `restore(file)` with the GIL taken only around the Python code, and mapping what it does
//! onto the core's failure rules — `journalkeeper.RejectedError(msg)` raised by `apply` or
//! `query` is `StateError::Rejected(msg)` (a deterministic refusal); any other exception in
//! `apply` or `restore`, or an `apply` that returns something other than bytes, is a crash:
//! `panic!` with the exception and its traceback, which the core's host turns into the node's
//! fail-stop (`status()["failed"]`). Another exception in `query` is an `InvalidArgument`
//! answer; in `snapshot` a `Codec` error (the snapshot is not taken).
//!
//! The snapshot and restore files (`SnapshotWriter`, `SnapshotReader`) stream: the Python
//! method runs on a scoped thread and hands chunks to (or asks for them from) the calling
//! thread, which owns the core's writer/reader, through bounded channels — at most a few
//! chunks are ever in memory. Never does: anything the core's host does (sessions, the applied
//! index, catching the panic).

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use pyo3::exceptions::PyIOError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes};

/// Chunks in flight between the Python thread and the core's writer/reader.
const CHANNEL_CHUNKS: usize = 4;
/// The largest chunk one `read(n)` asks the core's reader for (a larger `n` returns less).
const MAX_READ_CHUNK: usize = 1 << 20;

/// The `ctx` passed to `apply`: the committed entry's log index, term and the leader's
/// timestamp (milliseconds since the epoch).
#[pyclass(frozen, name = "ApplyContext", module = "journalkeeper._native")]
pub struct PyApplyContext {
    #[pyo3(get)]
    index: u64,
    #[pyo3(get)]
    term: u64,
    #[pyo3(get)]
    timestamp_ms: u64,
}

#[pymethods]
impl PyApplyContext {
    fn __repr__(&self) -> String {
        format!(
            "ApplyContext(index={}, term={}, timestamp_ms={})",
            self.index, self.term, self.timestamp_ms
        )
    }
}

/// The binary file `snapshot(file)` writes to: `write(b)` streams `b` to the snapshot.
#[pyclass(frozen, name = "SnapshotWriter", module = "journalkeeper._native")]
pub struct PySnapshotWriter {
    /// `None` once the snapshot call returned (a kept reference cannot write any more).
    chunks: Mutex<Option<SyncSender<Vec<u8>>>>,
}

#[pymethods]
impl PySnapshotWriter {
    /// Writes `data` (bytes, bytearray or memoryview); returns its length. `OSError` when the
    /// snapshot's file failed or the snapshot call is over.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let data = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if let Ok(b) = data.cast::<PyByteArray>() {
            b.to_vec()
        } else {
            data.call_method0("tobytes")?
                .cast::<PyBytes>()?
                .as_bytes()
                .to_vec()
        };
        let n = data.len();
        let sender = self
            .chunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| PyIOError::new_err("the snapshot is over"))?;
        py.detach(|| sender.send(data))
            .map_err(|_| PyIOError::new_err("the snapshot's file failed"))?;
        Ok(n)
    }

    fn writable(&self) -> bool {
        true
    }

    fn flush(&self) {}
}

/// The binary file `restore(file)` reads from: `read(n)` returns at most `n` bytes, `b""` at
/// the end.
#[pyclass(frozen, name = "SnapshotReader", module = "journalkeeper._native")]
pub struct PySnapshotReader {
    /// Requests (a size) out, chunks back; `None` once the restore call returned.
    channel: Mutex<Option<ReadChannel>>,
}

struct ReadChannel {
    requests: SyncSender<usize>,
    chunks: Arc<Mutex<Receiver<std::io::Result<Vec<u8>>>>>,
}

impl PySnapshotReader {
    fn read_chunk(&self, py: Python<'_>, n: usize) -> PyResult<Vec<u8>> {
        let (requests, chunks) = {
            let guard = self.channel.lock().unwrap_or_else(|e| e.into_inner());
            let ch = guard
                .as_ref()
                .ok_or_else(|| PyIOError::new_err("the restore is over"))?;
            (ch.requests.clone(), Arc::clone(&ch.chunks))
        };
        let got = py.detach(move || {
            requests.send(n).ok()?;
            let rx = chunks.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv().ok()
        });
        match got {
            Some(Ok(chunk)) => Ok(chunk),
            Some(Err(e)) => Err(PyIOError::new_err(format!("the snapshot's file: {e}"))),
            None => Err(PyIOError::new_err("the restore is over")),
        }
    }
}

#[pymethods]
impl PySnapshotReader {
    /// At most `n` bytes (`n < 0`: up to the end, which holds the rest in memory); `b""` at
    /// the end of the snapshot.
    #[pyo3(signature = (n=-1))]
    fn read<'py>(&self, py: Python<'py>, n: i64) -> PyResult<Bound<'py, PyBytes>> {
        if n >= 0 {
            let n = usize::try_from(n)
                .unwrap_or(MAX_READ_CHUNK)
                .min(MAX_READ_CHUNK);
            let chunk = if n == 0 {
                Vec::new()
            } else {
                self.read_chunk(py, n)?
            };
            return Ok(PyBytes::new(py, &chunk));
        }
        let mut all = Vec::new();
        loop {
            let chunk = self.read_chunk(py, MAX_READ_CHUNK)?;
            if chunk.is_empty() {
                return Ok(PyBytes::new(py, &all));
            }
            all.extend_from_slice(&chunk);
        }
    }

    fn readable(&self) -> bool {
        true
    }
}

/// A Python object hosted as a state machine under `name`.
pub struct PyStateMachine {
    name: String,
    object: Py<PyAny>,
}

impl PyStateMachine {
    pub fn new(name: String, object: Py<PyAny>) -> Self {
        PyStateMachine { name, object }
    }
}

/// What a Python call ended with, decided while holding the GIL.
enum Outcome {
    Bytes(Vec<u8>),
    Rejected(String),
    /// Any other exception (or a wrong return type): its text and traceback.
    Failed(String),
}

fn rejected_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static REJECTED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    REJECTED
        .import(py, "journalkeeper.errors", "RejectedError")
        .map(|c| c.as_any())
}

/// The exception with its traceback, as Python prints it.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}

fn outcome(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>, what: &str) -> Outcome {
    match result {
        Ok(value) => match value.cast::<PyBytes>() {
            Ok(b) => Outcome::Bytes(b.as_bytes().to_vec()),
            Err(_) => Outcome::Failed(format!(
                "{what} returned {} instead of bytes",
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            )),
        },
        Err(err) => {
            let is_rejected = rejected_class(py)
                .map(|cls| err.is_instance(py, cls))
                .unwrap_or(false);
            if is_rejected {
                let message = err
                    .value(py)
                    .getattr("message")
                    .and_then(|m| m.extract::<String>())
                    .unwrap_or_else(|_| err.value(py).to_string());
                Outcome::Rejected(message)
            } else {
                Outcome::Failed(describe(py, &err))
            }
        }
    }
}

/// Most commands applied under one hold of the GIL: other Python threads run between batches.
const MAX_BATCH: usize = 1024;

impl StateMachine for PyStateMachine {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let outcome = Python::attach(|py| {
            let ctx = PyApplyContext {
                index: ctx.index,
                term: ctx.term,
                timestamp_ms: ctx.timestamp_ms,
            };
            let result = self
                .object
                .bind(py)
                .call_method1("apply", (ctx, PyBytes::new(py, command)));
            outcome(py, result, "apply")
        });
        match outcome {
            Outcome::Bytes(b) => Ok(b),
            Outcome::Rejected(message) => Err(StateError::Rejected(message)),
            // The documented fail-stop path: the core's host catches this panic.
            Outcome::Failed(text) => panic!(
                "Python state machine {:?} failed applying index {}: {text}",
                self.name, ctx.index
            ),
        }
    }

    /// The GIL taken once per batch of up to [`MAX_BATCH`] commands, not once per command.
    fn apply_batch(&mut self, batch: &[(ApplyContext, &[u8])]) -> Vec<Result<Vec<u8>, StateError>> {
        let mut out = Vec::with_capacity(batch.len());
        for part in batch.chunks(MAX_BATCH) {
            let outcomes = Python::attach(|py| {
                let object = self.object.bind(py);
                let mut outcomes = Vec::with_capacity(part.len());
                for (ctx, command) in part {
                    let py_ctx = PyApplyContext {
                        index: ctx.index,
                        term: ctx.term,
                        timestamp_ms: ctx.timestamp_ms,
                    };
                    let result = object.call_method1("apply", (py_ctx, PyBytes::new(py, command)));
                    let o = outcome(py, result, "apply");
                    let failed = matches!(o, Outcome::Failed(_));
                    outcomes.push((ctx.index, o));
                    if failed {
                        break;
                    }
                }
                outcomes
            });
            for (index, o) in outcomes {
                out.push(match o {
                    Outcome::Bytes(b) => Ok(b),
                    Outcome::Rejected(message) => Err(StateError::Rejected(message)),
                    Outcome::Failed(text) => panic!(
                        "Python state machine {:?} failed applying index {index}: {text}",
                        self.name
                    ),
                });
            }
        }
        out
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let outcome = Python::attach(|py| {
            let result = self
                .object
                .bind(py)
                .call_method1("query", (PyBytes::new(py, query),));
            outcome(py, result, "query")
        });
        match outcome {
            Outcome::Bytes(b) => Ok(b),
            Outcome::Rejected(message) => Err(StateError::Rejected(message)),
            Outcome::Failed(text) => Err(StateError::InvalidArgument(format!(
                "Python state machine {:?} failed answering a query: {text}",
                self.name
            ))),
        }
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let (tx, rx) = sync_channel::<Vec<u8>>(CHANNEL_CHUNKS);
        let writer = PySnapshotWriter {
            chunks: Mutex::new(Some(tx)),
        };
        let object = &self.object;
        std::thread::scope(|scope| {
            let python = scope.spawn(move || {
                Python::attach(|py| -> Result<(), String> {
                    let file = Py::new(py, writer).map_err(|e| describe(py, &e))?;
                    let r = object
                        .bind(py)
                        .call_method1("snapshot", (file.clone_ref(py),));
                    // Ends the stream even when the machine kept a reference to the file.
                    file.get()
                        .chunks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    r.map(drop).map_err(|e| describe(py, &e))
                })
            });
            let mut failed = None;
            for chunk in rx.iter() {
                if let Err(e) = out.write_all(&chunk) {
                    failed = Some(io_error("the snapshot", &e));
                    break;
                }
            }
            drop(rx);
            let python = python
                .join()
                .unwrap_or_else(|_| Err("the snapshot thread panicked".into()));
            match (failed, python) {
                (Some(e), _) => Err(e),
                (None, Ok(())) => Ok(()),
                (None, Err(text)) => Err(StateError::Codec {
                    what: format!("the snapshot of Python state machine {:?}", self.name),
                    reason: text,
                }),
            }
        })
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let (requests_tx, requests) = sync_channel::<usize>(1);
        let (chunks, chunks_rx) = sync_channel::<std::io::Result<Vec<u8>>>(1);
        let reader = PySnapshotReader {
            channel: Mutex::new(Some(ReadChannel {
                requests: requests_tx,
                chunks: Arc::new(Mutex::new(chunks_rx)),
            })),
        };
        let object = &self.object;
        let outcome = std::thread::scope(|scope| {
            let python = scope.spawn(move || {
                Python::attach(|py| -> Result<(), String> {
                    let file = Py::new(py, reader).map_err(|e| describe(py, &e))?;
                    let r = object
                        .bind(py)
                        .call_method1("restore", (file.clone_ref(py),));
                    // Ends the request stream, so the loop below returns.
                    file.get()
                        .channel
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    r.map(drop).map_err(|e| describe(py, &e))
                })
            });
            for n in requests.iter() {
                let mut buf = vec![0u8; n];
                let chunk = loop {
                    match input.read(&mut buf) {
                        Ok(got) => {
                            buf.truncate(got);
                            break Ok(buf);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                if chunks.send(chunk).is_err() {
                    break;
                }
            }
            python
                .join()
                .unwrap_or_else(|_| Err("the restore thread panicked".into()))
        });
        match outcome {
            Ok(()) => Ok(()),
            // Fail-stop, as for apply: a half-restored machine must not serve.
            Err(text) => panic!(
                "Python state machine {:?} failed restoring a snapshot: {text}",
                self.name
            ),
        }
    }
}
