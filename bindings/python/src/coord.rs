//! `_native.Coord` (the coordination recipes of a client, `Client::coord()`), the handles that
//! live on (`KeepAlive`, `Registration`) and the two change streams (`ElectionObserver`,
//! `MembersWatch`), with the records they return as dicts (`journalkeeper/types.py` has their
//! `TypedDict`s).
//!
//! Every call takes `aio` as in `client.rs`. Never does: checks or waits the core makes itself.

use std::future::Future;
use std::sync::{Arc, Mutex};

use journalkeeper::api::{Error, ErrorKind};
use journalkeeper::client::protocol::LeaseStatus;
use journalkeeper::client::{
    Client, ElectionLeader, ElectionObserver, GroupMember, KeepAlive, KeepAliveState, MemberEvent,
    MembersWatch, Registration,
};
use pyo3::prelude::*;

use crate::client::{Bytes, seconds};
use crate::convert::bytes_arg;
use crate::errors::to_py_err;
use crate::process_bound::ProcessBound;
use crate::runtime::{call, runtime};

/// `coord.time_to_live()` / `keep_alive()`.
#[derive(IntoPyObject)]
struct LeaseStatusDict {
    lease: u64,
    ttl_ms: u64,
    remaining_ms: u64,
    keys: Vec<String>,
}

impl From<LeaseStatus> for LeaseStatusDict {
    fn from(s: LeaseStatus) -> Self {
        LeaseStatusDict {
            lease: s.lease,
            ttl_ms: s.ttl_ms,
            remaining_ms: s.remaining_ms,
            keys: s.keys,
        }
    }
}

/// `coord.leader()`, and what an observer yields.
#[derive(IntoPyObject)]
struct LeaderDict {
    value: Bytes,
    lease: u64,
    token: u64,
}

fn leader_dict(l: Option<ElectionLeader>) -> Option<LeaderDict> {
    l.map(|l| LeaderDict {
        value: Bytes(l.value),
        lease: l.lease,
        token: l.token,
    })
}

/// One element of `coord.members()`.
#[derive(IntoPyObject)]
struct GroupMemberDict {
    member: String,
    info: Bytes,
    lease: u64,
}

impl From<GroupMember> for GroupMemberDict {
    fn from(m: GroupMember) -> Self {
        GroupMemberDict {
            member: m.member,
            info: Bytes(m.info),
            lease: m.lease,
        }
    }
}

/// What a members watch yields: a join (`info`, `lease`) or a leave (`b""`, 0).
#[derive(IntoPyObject)]
struct MemberEventDict {
    joined: bool,
    member: String,
    info: Bytes,
    lease: u64,
}

impl From<MemberEvent> for MemberEventDict {
    fn from(e: MemberEvent) -> Self {
        match e {
            MemberEvent::Joined(m) => MemberEventDict {
                joined: true,
                member: m.member,
                info: Bytes(m.info),
                lease: m.lease,
            },
            MemberEvent::Left { member } => MemberEventDict {
                joined: false,
                member,
                info: Bytes(Vec::new()),
                lease: 0,
            },
        }
    }
}

/// The coordination recipes of one client (`journalkeeper::client::Coord`).
#[pyclass(frozen, name = "Coord", module = "journalkeeper._native")]
pub struct PyCoord {
    client: ProcessBound<Client>,
}

impl PyCoord {
    pub fn new(client: Client) -> Self {
        PyCoord {
            client: ProcessBound::new(client),
        }
    }

    fn core(&self) -> PyResult<Client> {
        Ok(self.client.get("Client")?.clone())
    }
}

#[pymethods]
impl PyCoord {
    #[pyo3(signature = (ttl, aio=false))]
    fn grant(&self, py: Python<'_>, ttl: f64, aio: bool) -> PyResult<Py<PyAny>> {
        let ttl = seconds("ttl", ttl)?;
        let c = self.core()?;
        call(py, aio, async move { c.coord().grant(ttl).await })
    }

    #[pyo3(signature = (lease, aio=false))]
    fn revoke(&self, py: Python<'_>, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.coord().revoke(lease).await })
    }

    #[pyo3(signature = (lease, aio=false))]
    fn keep_alive(&self, py: Python<'_>, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.coord().keep_alive(lease).await.map(LeaseStatusDict::from)
        })
    }

    #[pyo3(signature = (lease, aio=false))]
    fn time_to_live(&self, py: Python<'_>, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.coord()
                .time_to_live(lease)
                .await
                .map(LeaseStatusDict::from)
        })
    }

    #[pyo3(signature = (lease, aio=false))]
    fn keep_alive_forever(&self, py: Python<'_>, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let keep_alive = c.coord().keep_alive_forever(lease).await?;
            Ok(PyKeepAlive {
                lease,
                inner: ProcessBound::new(Mutex::new(Some(keep_alive))),
            })
        })
    }

    #[pyo3(signature = (key, value, lease, aio=false))]
    fn put(
        &self,
        py: Python<'_>,
        key: String,
        value: &Bound<'_, PyAny>,
        lease: u64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let value = bytes_arg("value", value)?;
        let c = self.core()?;
        call(
            py,
            aio,
            async move { c.coord().put(&key, value, lease).await },
        )
    }

    #[pyo3(signature = (name, lease, aio=false))]
    fn lock(&self, py: Python<'_>, name: String, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.coord().lock(&name, lease).await })
    }

    #[pyo3(signature = (name, lease, wait, aio=false))]
    fn try_lock(
        &self,
        py: Python<'_>,
        name: String,
        lease: u64,
        wait: f64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let wait = seconds("wait", wait)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.coord().try_lock(&name, lease, wait).await
        })
    }

    #[pyo3(signature = (name, lease, aio=false))]
    fn unlock(&self, py: Python<'_>, name: String, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.coord().unlock(&name, lease).await })
    }

    #[pyo3(signature = (name, value, lease, aio=false))]
    fn campaign(
        &self,
        py: Python<'_>,
        name: String,
        value: &Bound<'_, PyAny>,
        lease: u64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let value = bytes_arg("value", value)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.coord().campaign(&name, value, lease).await
        })
    }

    #[pyo3(signature = (name, lease, aio=false))]
    fn resign(&self, py: Python<'_>, name: String, lease: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.coord().resign(&name, lease).await })
    }

    #[pyo3(signature = (name, aio=false))]
    fn leader(&self, py: Python<'_>, name: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.coord().leader(&name).await.map(leader_dict)
        })
    }

    #[pyo3(signature = (name, aio=false))]
    fn observe(&self, py: Python<'_>, name: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let observer = c.coord().observe(&name).await?;
            Ok(PyElectionObserver(Changes::new(observer)))
        })
    }

    #[pyo3(signature = (name, aio=false))]
    fn next_id(&self, py: Python<'_>, name: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move { c.coord().next_id(&name).await })
    }

    /// Returns `(start, end)`: the range `start..end`.
    #[pyo3(signature = (name, count, aio=false))]
    fn next_ids(&self, py: Python<'_>, name: String, count: u64, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.coord()
                .next_ids(&name, count)
                .await
                .map(|r| (r.start, r.end))
        })
    }

    #[pyo3(signature = (group, member, info, ttl, aio=false))]
    fn register(
        &self,
        py: Python<'_>,
        group: String,
        member: String,
        info: &Bound<'_, PyAny>,
        ttl: f64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let info = bytes_arg("info", info)?;
        let ttl = seconds("ttl", ttl)?;
        let c = self.core()?;
        call(py, aio, async move {
            let registration = c.coord().register(&group, &member, info, ttl).await?;
            Ok(PyRegistration {
                lease: registration.lease,
                inner: ProcessBound::new(Mutex::new(Some(registration))),
            })
        })
    }

    #[pyo3(signature = (group, member, lease, aio=false))]
    fn unregister(
        &self,
        py: Python<'_>,
        group: String,
        member: String,
        lease: u64,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            c.coord().unregister(&group, &member, lease).await
        })
    }

    #[pyo3(signature = (group, aio=false))]
    fn members(&self, py: Python<'_>, group: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let members = c.coord().members(&group).await?;
            Ok(members
                .into_iter()
                .map(GroupMemberDict::from)
                .collect::<Vec<_>>())
        })
    }

    #[pyo3(signature = (group, aio=false))]
    fn watch_members(&self, py: Python<'_>, group: String, aio: bool) -> PyResult<Py<PyAny>> {
        let c = self.core()?;
        call(py, aio, async move {
            let watch = c.coord().watch_members(&group).await?;
            Ok(PyMembersWatch(Changes::new(watch)))
        })
    }
}

/// Takes a handle's core value out of its slot (`None`: already ended).
fn take<T>(slot: &ProcessBound<Mutex<Option<T>>>, what: &str) -> PyResult<Option<T>> {
    Ok(slot
        .get(what)?
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take())
}

/// Drops a core value inside the runtime (its task handles and connections belong to it).
fn drop_in_runtime<T>(value: T) -> PyResult<()> {
    let rt = runtime()?;
    let _guard = rt.enter();
    drop(value);
    Ok(())
}

/// A lease kept alive in the background (`journalkeeper::client::KeepAlive`).
#[pyclass(frozen, name = "KeepAlive", module = "journalkeeper._native")]
pub struct PyKeepAlive {
    lease: u64,
    inner: ProcessBound<Mutex<Option<KeepAlive>>>,
}

#[pymethods]
impl PyKeepAlive {
    #[getter]
    fn lease(&self) -> u64 {
        self.lease
    }

    /// The time the leader gave the lease at the last renewal; raises why it was lost
    /// (`LeaseExpiredError`, `ClosedError`), or `ClosedError` after `revoke` / `close`.
    fn state(&self) -> PyResult<u64> {
        let guard = self.inner.get("KeepAlive")?;
        let guard = guard.lock().unwrap_or_else(|e| e.into_inner());
        let Some(keep_alive) = guard.as_ref() else {
            return Err(to_py_err(Error::new(
                ErrorKind::Closed,
                "the keep-alive was stopped",
            )));
        };
        match keep_alive.state() {
            KeepAliveState::Alive { remaining_ms } => Ok(remaining_ms),
            KeepAliveState::Lost(e) => Err(to_py_err(e)),
        }
    }

    /// Stops the renewals and ends the lease now. Idempotent.
    #[pyo3(signature = (aio=false))]
    fn revoke(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let keep_alive = take(&self.inner, "KeepAlive")?;
        call(py, aio, async move {
            match keep_alive {
                Some(k) => k.revoke().await,
                None => Ok(()),
            }
        })
    }

    /// Stops the renewals (the lease runs out after its TTL). Idempotent.
    fn close(&self) -> PyResult<()> {
        match self.inner.local() {
            Some(_) => drop_in_runtime(take(&self.inner, "KeepAlive")?),
            None => Ok(()),
        }
    }
}

/// A member of a liveness group under its own lease (`journalkeeper::client::Registration`).
#[pyclass(frozen, name = "Registration", module = "journalkeeper._native")]
pub struct PyRegistration {
    lease: u64,
    inner: ProcessBound<Mutex<Option<Registration>>>,
}

#[pymethods]
impl PyRegistration {
    #[getter]
    fn lease(&self) -> u64 {
        self.lease
    }

    /// Ends the registration now (revokes its lease). Idempotent.
    #[pyo3(signature = (aio=false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let registration = take(&self.inner, "Registration")?;
        call(py, aio, async move {
            match registration {
                Some(r) => r.close().await,
                None => Ok(()),
            }
        })
    }

    /// Stops renewing (the member leaves when the lease runs out). Idempotent.
    fn release(&self) -> PyResult<()> {
        match self.inner.local() {
            Some(_) => drop_in_runtime(take(&self.inner, "Registration")?),
            None => Ok(()),
        }
    }
}

/// A core change stream whose `next` a Python stream wraps.
trait Stream: Send + 'static {
    type Item: for<'py> IntoPyObject<'py> + Send + 'static;
    const WHAT: &'static str;
    fn next(&mut self) -> impl Future<Output = Result<Self::Item, Error>> + Send;
}

impl Stream for ElectionObserver {
    type Item = Option<LeaderDict>;
    const WHAT: &'static str = "leader change";
    async fn next(&mut self) -> Result<Self::Item, Error> {
        ElectionObserver::next(self).await.map(leader_dict)
    }
}

impl Stream for MembersWatch {
    type Item = MemberEventDict;
    const WHAT: &'static str = "member change";
    async fn next(&mut self) -> Result<Self::Item, Error> {
        MembersWatch::next(self).await.map(MemberEventDict::from)
    }
}

/// What `ElectionObserver` and `MembersWatch` share with `Watch`: `next` may be called from
/// several threads / tasks (they take changes in turn), with a timeout that leaves the stream
/// usable; `close` ends it (pending `next`s fail with `ClosedError`).
struct Changes<S> {
    inner: ProcessBound<ChangesInner<S>>,
}

struct ChangesInner<S> {
    stream: Arc<tokio::sync::Mutex<Option<S>>>,
    closed: tokio::sync::watch::Sender<bool>,
}

impl<S: Stream> Changes<S> {
    fn new(stream: S) -> Self {
        Changes {
            inner: ProcessBound::new(ChangesInner {
                stream: Arc::new(tokio::sync::Mutex::new(Some(stream))),
                closed: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    fn next(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        let inner = self.inner.get(S::WHAT)?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let stream = inner.stream.clone();
        let mut closed = inner.closed.subscribe();
        let ended = || {
            Error::new(
                ErrorKind::Closed,
                format!("the {} stream is closed", S::WHAT),
            )
        };
        call(py, aio, async move {
            let next = async {
                match stream.lock().await.as_mut() {
                    Some(s) => s.next().await,
                    None => Err(ended()),
                }
            };
            let next = async {
                match timeout {
                    None => next.await,
                    Some(d) => tokio::time::timeout(d, next).await.unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!("no {} within {d:?}", S::WHAT),
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
                    // Unwatch on the server now rather than when Python frees the object.
                    stream.lock().await.take();
                    Err(ended())
                }
            }
        })
    }

    fn close(&self) {
        let Some(inner) = self.inner.local() else {
            return;
        };
        inner.closed.send_replace(true);
        if let Ok(mut guard) = inner.stream.try_lock() {
            guard.take();
        }
    }

    fn is_closed(&self) -> bool {
        self.inner.local().is_none_or(|i| *i.closed.borrow())
    }
}

/// The leaders of one election as they change (`journalkeeper::client::ElectionObserver`).
#[pyclass(frozen, name = "ElectionObserver", module = "journalkeeper._native")]
pub struct PyElectionObserver(Changes<ElectionObserver>);

#[pymethods]
impl PyElectionObserver {
    /// The next leader (`None`: nobody leads); the first call returns the current one.
    #[pyo3(signature = (timeout=None, aio=false))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        self.0.next(py, timeout, aio)
    }

    fn close(&self) {
        self.0.close();
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The joins and leaves of one liveness group (`journalkeeper::client::MembersWatch`).
#[pyclass(frozen, name = "MembersWatch", module = "journalkeeper._native")]
pub struct PyMembersWatch(Changes<MembersWatch>);

#[pymethods]
impl PyMembersWatch {
    #[pyo3(signature = (timeout=None, aio=false))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>, aio: bool) -> PyResult<Py<PyAny>> {
        self.0.next(py, timeout, aio)
    }

    fn close(&self) {
        self.0.close();
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
