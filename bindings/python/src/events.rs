//! `_native.Events`: the cluster events of a client (`journalkeeper::client::EventStream`) or
//! of an embedded server (`journalkeeper::server::events::LocalEvents`), and the event values
//! (`ClusterEvent` → the classes of `journalkeeper/types.py`).
//!
//! Owns: waiting for the next event (bounded, cancellable by `close()`), and marking the
//! stream closed once its source ended (client closed, server stopped), so iteration ends.
//! Never does: resubscribing — the core's `EventStream` does.

use std::sync::Arc;

use journalkeeper::api::{Error, ErrorKind};
use journalkeeper::client::{ClusterEvent, EventStream};
use journalkeeper::server::events::LocalEvents;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::client::seconds;
use crate::convert::{ConfigurationDict, MemberDict};
use crate::process_bound::ProcessBound;
use crate::runtime::call;

/// One event as an instance of `journalkeeper.types.LeaderChanged` / `VotersChanged` /
/// `RoleChanged` / `JournalChanged` / `StateChanged`.
pub struct Event(ClusterEvent);

fn types_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    TYPES
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("journalkeeper.types")?.unbind())
        })
        .map(|m| m.bind(py))
}

impl<'py> IntoPyObject<'py> for Event {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let types = types_module(py)?;
        match self.0 {
            ClusterEvent::LeaderChanged { leader, term } => types
                .getattr("LeaderChanged")?
                .call1((leader.map(MemberDict::from), term)),
            ClusterEvent::VotersChanged { configuration } => types
                .getattr("VotersChanged")?
                .call1((ConfigurationDict::from(configuration),)),
            ClusterEvent::RoleChanged { node_id, role } => {
                types.getattr("RoleChanged")?.call1((node_id, role.name()))
            }
            ClusterEvent::JournalChanged {
                partition,
                min_index,
                max_index,
            } => types
                .getattr("JournalChanged")?
                .call1((partition, min_index, max_index)),
            ClusterEvent::StateChanged {
                machine,
                applied_index,
            } => types
                .getattr("StateChanged")?
                .call1((machine, applied_index)),
        }
    }
}

/// Where the events come from.
pub enum Source {
    Client(EventStream),
    Server { node_id: u64, events: LocalEvents },
}

impl Source {
    /// The next event; `Closed` once the source ended (the client closed, the server stopped).
    async fn next(&mut self) -> Result<ClusterEvent, Error> {
        match self {
            Source::Client(s) => s.next().await,
            Source::Server { node_id, events } => events
                .next()
                .await
                .ok_or_else(|| Error::new(ErrorKind::Closed, format!("server {node_id} stopped"))),
        }
    }
}

/// A stream of cluster events. `next` may be called from several threads / tasks; they take
/// events in turn. `close` ends it (pending `next`s fail with `ClosedError`) and, for a
/// client's events, ends the subscription on the server.
#[pyclass(frozen, name = "Events", module = "journalkeeper._native")]
pub struct PyEvents {
    /// Its subscription lives in the runtime of the process that made it.
    inner: ProcessBound<EventsInner>,
}

struct EventsInner {
    stream: Arc<tokio::sync::Mutex<Option<Source>>>,
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl PyEvents {
    pub fn new(source: Source) -> Self {
        PyEvents {
            inner: ProcessBound::new(EventsInner {
                stream: Arc::new(tokio::sync::Mutex::new(Some(source))),
                closed: Arc::new(tokio::sync::watch::channel(false).0),
            }),
        }
    }
}

fn events_closed() -> Error {
    Error::new(ErrorKind::Closed, "the event stream is closed")
}

#[pymethods]
impl PyEvents {
    /// The next event; with `timeout` (seconds) fails with `TimeoutError` when none arrives
    /// in time (the stream stays usable). `ClosedError` after `close()` or once the source
    /// ended (the stream is then closed).
    #[pyo3(signature = (timeout=None, aio=false))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        let inner = self.inner.get("Events")?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let stream = inner.stream.clone();
        let closed_tx = inner.closed.clone();
        let mut closed = inner.closed.subscribe();
        call(py, aio, async move {
            let next = async {
                let mut guard = stream.lock().await;
                let Some(source) = guard.as_mut() else {
                    return Err(events_closed());
                };
                let r = source.next().await;
                if matches!(&r, Err(e) if e.kind == ErrorKind::Closed) {
                    // The source ended: so does this stream.
                    guard.take();
                    closed_tx.send_replace(true);
                }
                r.map(Event)
            };
            let next = async {
                match timeout {
                    None => next.await,
                    Some(d) => tokio::time::timeout(d, next).await.unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!("no cluster event within {d:?}"),
                        ))
                    }),
                }
            };
            let closed = async {
                let _ = closed.wait_for(|c| *c).await;
            };
            let outcome = tokio::select! {
                r = next => Some(r),
                () = closed => None,
            };
            match outcome {
                Some(r) => r,
                None => {
                    // Unsubscribe now rather than when Python frees the object.
                    stream.lock().await.take();
                    Err(events_closed())
                }
            }
        })
    }

    /// Ends the stream. Idempotent; a no-op in a forked child (the stream is the parent's).
    fn close(&self) {
        let Some(inner) = self.inner.local() else {
            return;
        };
        inner.closed.send_replace(true);
        if let Ok(mut guard) = inner.stream.try_lock() {
            guard.take();
        }
    }

    /// Closed by `close()`, or its source ended; also true in a forked child.
    #[getter]
    fn is_closed(&self) -> bool {
        self.inner.local().is_none_or(|i| *i.closed.borrow())
    }
}
