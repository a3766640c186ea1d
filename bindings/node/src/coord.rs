//! `client.coord`: the coordination recipes (`Client::coord()`) as Promises — leases, keys under
//! a lease, locks with fencing tokens, elections, ID ranges, liveness groups — and the objects
//! that live on: `KeepAlive`, `Registration` (`close()`), `ElectionObserver`, `MembersWatch`
//! (`next(timeoutMs)`; `journalkeeper.js` makes them async iterators).
//!
//! Durations are milliseconds; leases, tokens and IDs are JS numbers (`to_number`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use journalkeeper::api::{self, ErrorKind};
use journalkeeper::client::protocol::LeaseStatus as CoreLeaseStatus;
use journalkeeper::client::{
    Client as CoreClient, ElectionLeader as CoreLeader, ElectionObserver as CoreObserver,
    GroupMember as CoreMember, KeepAlive as CoreKeepAlive, KeepAliveState,
    MemberEvent as CoreEvent, MembersWatch as CoreMembersWatch, Registration as CoreRegistration,
};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::{Env, Unknown};
use napi_derive::napi;

use crate::args::{self, R};
use crate::{js_error, promise, to_number};

/// A lease as the leader sees it (`coord.timeToLive()`, `coord.keepAlive()`).
#[napi(object, object_from_js = false)]
pub struct LeaseStatus {
    pub lease: f64,
    /// The TTL it was granted with.
    pub ttl_ms: f64,
    /// Time left before the leader ends it.
    pub remaining_ms: f64,
    /// The KV keys attached to it.
    pub keys: Vec<String>,
}

/// The leader of an election.
#[napi(object, object_from_js = false)]
pub struct ElectionLeader {
    /// The value it campaigned with.
    pub value: Buffer,
    /// The lease it leads under.
    pub lease: f64,
    /// Its fencing token: increases with every new leader of the election.
    pub token: f64,
}

/// A live member of a liveness group.
#[napi(object, object_from_js = false)]
pub struct GroupMember {
    pub member: String,
    pub info: Buffer,
    /// The lease it lives under.
    pub lease: f64,
}

/// A join (`joined`, with `info` and `lease`) or a leave (`info` empty, `lease` 0).
#[napi(object, object_from_js = false)]
pub struct MemberEvent {
    pub joined: bool,
    pub member: String,
    pub info: Buffer,
    pub lease: f64,
}

/// IDs `start` (inclusive) to `end` (exclusive) of `coord.nextIds()`.
#[napi(object, object_from_js = false)]
pub struct IdRange {
    pub start: f64,
    pub end: f64,
}

fn lease_status(s: CoreLeaseStatus) -> R<LeaseStatus> {
    Ok(LeaseStatus {
        lease: to_number("lease", s.lease)?,
        ttl_ms: to_number("ttlMs", s.ttl_ms)?,
        remaining_ms: to_number("remainingMs", s.remaining_ms)?,
        keys: s.keys,
    })
}

fn leader(l: Option<CoreLeader>) -> R<Option<ElectionLeader>> {
    l.map(|l| {
        Ok(ElectionLeader {
            value: l.value.into(),
            lease: to_number("lease", l.lease)?,
            token: to_number("token", l.token)?,
        })
    })
    .transpose()
}

fn member(m: CoreMember) -> R<GroupMember> {
    Ok(GroupMember {
        member: m.member,
        info: m.info.into(),
        lease: to_number("lease", m.lease)?,
    })
}

fn member_event(e: CoreEvent) -> R<MemberEvent> {
    Ok(match e {
        CoreEvent::Joined(m) => MemberEvent {
            joined: true,
            lease: to_number("lease", m.lease)?,
            member: m.member,
            info: m.info.into(),
        },
        CoreEvent::Left { member } => MemberEvent {
            joined: false,
            member,
            info: Vec::new().into(),
            lease: 0.0,
        },
    })
}

fn millis(what: &str, v: Unknown) -> R<Duration> {
    Ok(Duration::from_millis(args::uint(what, v)?))
}

/// The coordination recipes of a client. Anything asked under a lease that ended rejects with
/// `LEASE_EXPIRED`.
#[napi]
pub struct Coord {
    inner: CoreClient,
}

impl Coord {
    pub fn new(inner: CoreClient) -> Self {
        Coord { inner }
    }
}

#[napi]
impl Coord {
    /// Grants a lease of `ttlMs` (100 ms to 7 days); resolves to its id.
    #[napi(ts_args_type = "ttlMs: number")]
    pub fn grant<'env>(
        &self,
        env: &'env Env,
        ttl_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let ttl = millis("ttlMs", ttl_ms);
        promise(env, async move {
            to_number("lease", c.coord().grant(ttl?).await?)
        })
    }

    /// Ends `lease` now (its keys, locks, campaigns, registrations go); false when it had
    /// already ended.
    #[napi(ts_args_type = "lease: number")]
    pub fn revoke<'env>(
        &self,
        env: &'env Env,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let lease = args::uint("lease", lease);
        promise(env, async move { c.coord().revoke(lease?).await })
    }

    /// Renews `lease` once for its full TTL from now.
    #[napi(ts_args_type = "lease: number")]
    pub fn keep_alive<'env>(
        &self,
        env: &'env Env,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, LeaseStatus>> {
        let c = self.inner.clone();
        let lease = args::uint("lease", lease);
        promise(env, async move {
            lease_status(c.coord().keep_alive(lease?).await?)
        })
    }

    /// What `lease` has left and which keys are attached to it.
    #[napi(ts_args_type = "lease: number")]
    pub fn time_to_live<'env>(
        &self,
        env: &'env Env,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, LeaseStatus>> {
        let c = self.inner.clone();
        let lease = args::uint("lease", lease);
        promise(env, async move {
            lease_status(c.coord().time_to_live(lease?).await?)
        })
    }

    /// Renews `lease` in the background (every third of its TTL) until `revoke()` /
    /// `close()`.
    #[napi(ts_args_type = "lease: number")]
    pub fn keep_alive_forever<'env>(
        &self,
        env: &'env Env,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, KeepAlive>> {
        let c = self.inner.clone();
        let lease = args::uint("lease", lease);
        promise(env, async move {
            let lease = lease?;
            let inner = c.coord().keep_alive_forever(lease).await?;
            Ok(KeepAlive {
                lease: to_number("lease", lease)?,
                inner: Arc::new(Mutex::new(Some(inner))),
            })
        })
    }

    /// Sets KV `key` to `value` under `lease`: removed when the lease ends (a later plain KV
    /// write detaches it).
    #[napi(
        ts_args_type = "key: string, value: Buffer, lease: number",
        ts_return_type = "Promise<void>"
    )]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
        value: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("key", key)?,
                args::buffer("value", value)?,
                args::uint("lease", lease)?,
            ))
        });
        promise(env, async move {
            let (key, value, lease) = args?;
            c.coord().put(&key, value, lease).await
        })
    }

    /// Waits until `lease` holds lock `name` (FIFO); resolves to its fencing token.
    #[napi(ts_args_type = "name: string, lease: number")]
    pub fn lock<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let args = name_lease(name, lease);
        promise(env, async move {
            let (name, lease) = args?;
            to_number("token", c.coord().lock(&name, lease).await?)
        })
    }

    /// `lock()` waiting at most `waitMs` (default 0); null when not held by then (the lease
    /// left the queue again).
    #[napi(ts_args_type = "name: string, lease: number, waitMs?: number | undefined | null")]
    pub fn try_lock<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        lease: Unknown<'env>,
        wait_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            let (name, lease) = name_lease(name, lease)?;
            Ok((
                name,
                lease,
                args::optional_uint("waitMs", wait_ms)?.unwrap_or(0),
            ))
        });
        promise(env, async move {
            let (name, lease, wait) = args?;
            let token = c
                .coord()
                .try_lock(&name, lease, Duration::from_millis(wait))
                .await?;
            token.map(|t| to_number("token", t)).transpose()
        })
    }

    /// Releases (or stops waiting for) lock `name`; true when `lease` held it.
    #[napi(ts_args_type = "name: string, lease: number")]
    pub fn unlock<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let args = name_lease(name, lease);
        promise(env, async move {
            let (name, lease) = args?;
            c.coord().unlock(&name, lease).await
        })
    }

    /// Waits until `lease` leads election `name` (in campaign order); resolves to its token.
    #[napi(ts_args_type = "name: string, value: Buffer, lease: number")]
    pub fn campaign<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        value: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("name", name)?,
                args::buffer("value", value)?,
                args::uint("lease", lease)?,
            ))
        });
        promise(env, async move {
            let (name, value, lease) = args?;
            to_number("token", c.coord().campaign(&name, value, lease).await?)
        })
    }

    /// Stops leading (or campaigning in) election `name`; true when `lease` led.
    #[napi(ts_args_type = "name: string, lease: number")]
    pub fn resign<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let args = name_lease(name, lease);
        promise(env, async move {
            let (name, lease) = args?;
            c.coord().resign(&name, lease).await
        })
    }

    /// The current leader of election `name` (null: nobody leads).
    #[napi(ts_args_type = "name: string")]
    pub fn leader<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<ElectionLeader>>> {
        let c = self.inner.clone();
        let name = args::string("name", name);
        promise(env, async move { leader(c.coord().leader(&name?).await?) })
    }

    /// Follows the leader of election `name`: the first `next()` resolves to the current one,
    /// each later one to the next change.
    #[napi(ts_args_type = "name: string")]
    pub fn observe<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ElectionObserver>> {
        let c = self.inner.clone();
        let name = args::string("name", name);
        promise(env, async move {
            let observer = c.coord().observe(&name?).await?;
            Ok(ElectionObserver(Changes::new(observer)))
        })
    }

    /// The next value of sequence `name` (1, 2, 3, …).
    #[napi(ts_args_type = "name: string")]
    pub fn next_id<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        let name = args::string("name", name);
        promise(env, async move {
            to_number("id", c.coord().next_id(&name?).await?)
        })
    }

    /// The next `count` values of sequence `name`, as one contiguous range.
    #[napi(ts_args_type = "name: string, count: number")]
    pub fn next_ids<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'env>,
        count: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, IdRange>> {
        let c = self.inner.clone();
        let args = args::checked(|| Ok((args::string("name", name)?, args::uint("count", count)?)));
        promise(env, async move {
            let (name, count) = args?;
            let r = c.coord().next_ids(&name, count).await?;
            Ok(IdRange {
                start: to_number("id", r.start)?,
                end: to_number("id", r.end)?,
            })
        })
    }

    /// Registers `member` of `group` with `info` under a new lease of `ttlMs` kept alive in
    /// the background until the registration is closed (or the process ends).
    #[napi(ts_args_type = "group: string, member: string, info: Buffer, ttlMs: number")]
    pub fn register<'env>(
        &self,
        env: &'env Env,
        group: Unknown<'env>,
        member: Unknown<'env>,
        info: Unknown<'env>,
        ttl_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Registration>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("group", group)?,
                args::string("member", member)?,
                args::buffer("info", info)?,
                millis("ttlMs", ttl_ms)?,
            ))
        });
        promise(env, async move {
            let (group, member, info, ttl) = args?;
            let inner = c.coord().register(&group, &member, info, ttl).await?;
            Ok(Registration {
                lease: to_number("lease", inner.lease)?,
                inner: Arc::new(Mutex::new(Some(inner))),
            })
        })
    }

    /// Removes `member` from `group` when it is registered under `lease`.
    #[napi(ts_args_type = "group: string, member: string, lease: number")]
    pub fn unregister<'env>(
        &self,
        env: &'env Env,
        group: Unknown<'env>,
        member: Unknown<'env>,
        lease: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("group", group)?,
                args::string("member", member)?,
                args::uint("lease", lease)?,
            ))
        });
        promise(env, async move {
            let (group, member, lease) = args?;
            c.coord().unregister(&group, &member, lease).await
        })
    }

    /// The live members of `group`, by member name.
    #[napi(ts_args_type = "group: string")]
    pub fn members<'env>(
        &self,
        env: &'env Env,
        group: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<GroupMember>>> {
        let c = self.inner.clone();
        let group = args::string("group", group);
        promise(env, async move {
            c.coord()
                .members(&group?)
                .await?
                .into_iter()
                .map(member)
                .collect::<R<Vec<_>>>()
        })
    }

    /// Follows `group`'s joins and leaves from now on.
    #[napi(ts_args_type = "group: string")]
    pub fn watch_members<'env>(
        &self,
        env: &'env Env,
        group: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, MembersWatch>> {
        let c = self.inner.clone();
        let group = args::string("group", group);
        promise(env, async move {
            let watch = c.coord().watch_members(&group?).await?;
            Ok(MembersWatch(Changes::new(watch)))
        })
    }
}

fn name_lease(name: Unknown, lease: Unknown) -> R<(String, u64)> {
    Ok((args::string("name", name)?, args::uint("lease", lease)?))
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn stopped(what: &str) -> api::Error {
    api::Error::new(ErrorKind::Closed, format!("the {what} was stopped"))
}

/// A lease renewed in the background. `revoke()` ends the lease now; `close()` only stops
/// renewing (the lease runs out after its TTL).
#[napi]
pub struct KeepAlive {
    lease: f64,
    inner: Arc<Mutex<Option<CoreKeepAlive>>>,
}

#[napi]
impl KeepAlive {
    #[napi(getter)]
    pub fn lease(&self) -> f64 {
        self.lease
    }

    /// The time (ms) the leader gave the lease at the last renewal; throws why it was lost
    /// (`LEASE_EXPIRED`, `CLOSED`).
    #[napi]
    pub fn check(&self, env: Env) -> napi::Result<f64> {
        let state = match self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(k) => k.state(),
            None => KeepAliveState::Lost(stopped("keep-alive")),
        };
        match state {
            KeepAliveState::Alive { remaining_ms } => {
                to_number("remainingMs", remaining_ms).map_err(|e| js_error(&env, &e))
            }
            KeepAliveState::Lost(e) => Err(js_error(&env, &e)),
        }
    }

    /// Still renewed (not lost, revoked or closed).
    #[napi(getter)]
    pub fn alive(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|k| matches!(k.state(), KeepAliveState::Alive { .. }))
    }

    /// Stops renewing and ends the lease now. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn revoke<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let keep_alive = take(&self.inner);
        promise(env, async move {
            match keep_alive {
                Some(k) => k.revoke().await,
                None => Ok(()),
            }
        })
    }

    /// Stops renewing; the lease runs out after its TTL. Idempotent.
    #[napi]
    pub fn close(&self) {
        drop(take(&self.inner));
    }
}

/// A member of a liveness group under its own lease, kept alive in the background.
/// `close()` ends it now; `release()` only stops renewing (it leaves when the lease runs out).
#[napi]
pub struct Registration {
    lease: f64,
    inner: Arc<Mutex<Option<CoreRegistration>>>,
}

#[napi]
impl Registration {
    #[napi(getter)]
    pub fn lease(&self) -> f64 {
        self.lease
    }

    /// Revokes the lease: the member leaves every group at once. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let registration = take(&self.inner);
        promise(env, async move {
            match registration {
                Some(r) => r.close().await,
                None => Ok(()),
            }
        })
    }

    /// Stops renewing; the member leaves when the lease runs out. Idempotent.
    #[napi]
    pub fn release(&self) {
        drop(take(&self.inner));
    }
}

/// A core change stream and how its items reach JS.
trait Stream: Send + 'static {
    type Item: Send + 'static + napi::bindgen_prelude::ToNapiValue;
    const WHAT: &'static str;
    fn next_item(&mut self) -> impl Future<Output = R<Self::Item>> + Send;
}

impl Stream for CoreObserver {
    type Item = Option<ElectionLeader>;
    const WHAT: &'static str = "leader change";
    async fn next_item(&mut self) -> R<Self::Item> {
        leader(self.next().await?)
    }
}

impl Stream for CoreMembersWatch {
    type Item = MemberEvent;
    const WHAT: &'static str = "member change";
    async fn next_item(&mut self) -> R<Self::Item> {
        member_event(self.next().await?)
    }
}

/// What `ElectionObserver` and `MembersWatch` share: `next` may be called concurrently
/// (callers take changes in turn), with a timeout that leaves the stream usable; `close()`
/// rejects pending `next`s with `CLOSED`.
struct Changes<S> {
    stream: Arc<tokio::sync::Mutex<Option<S>>>,
    closed: tokio::sync::watch::Sender<bool>,
}

impl<S: Stream> Changes<S> {
    fn new(stream: S) -> Self {
        Changes {
            stream: Arc::new(tokio::sync::Mutex::new(Some(stream))),
            closed: tokio::sync::watch::channel(false).0,
        }
    }

    /// The next item, within `timeout_ms` (absent: no bound).
    fn next<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, S::Item>> {
        let timeout = args::optional_uint("timeoutMs", timeout_ms);
        let stream = self.stream.clone();
        let mut closed = self.closed.subscribe();
        let ended = || {
            api::Error::new(
                ErrorKind::Closed,
                format!("the {} stream is closed", S::WHAT),
            )
        };
        promise(env, async move {
            let timeout = timeout?.map(Duration::from_millis);
            let wait = async {
                let mut guard = stream.lock().await;
                let Some(s) = guard.as_mut() else {
                    return Err(ended());
                };
                match timeout {
                    None => s.next_item().await,
                    Some(d) => tokio::time::timeout(d, s.next_item())
                        .await
                        .unwrap_or_else(|_| {
                            Err(api::Error::new(
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
                r = wait => Some(r),
                () = closed => None,
            };
            match outcome {
                Some(r) => r,
                None => {
                    // Unwatch on the server now rather than when JS frees the object.
                    stream.lock().await.take();
                    Err(ended())
                }
            }
        })
    }

    fn close(&self) {
        self.closed.send_replace(true);
        if let Ok(mut guard) = self.stream.try_lock() {
            guard.take();
        }
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// The leaders of one election as they change (`coord.observe()`); an async iterator too.
#[napi]
pub struct ElectionObserver(Changes<CoreObserver>);

#[napi]
impl ElectionObserver {
    /// The next leader (null: nobody leads); the first call resolves to the current one.
    /// Rejects with `TIMEOUT` after `timeoutMs` (the observer stays usable), `CLOSED` once
    /// closed.
    #[napi(ts_args_type = "timeoutMs?: number | undefined | null")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<ElectionLeader>>> {
        self.0.next(env, timeout_ms)
    }

    /// Ends the observer (a pending `next()` rejects with `CLOSED`). Idempotent.
    #[napi]
    pub fn close(&self) {
        self.0.close();
    }

    #[napi(getter)]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The joins and leaves of one liveness group (`coord.watchMembers()`); an async iterator too.
#[napi]
pub struct MembersWatch(Changes<CoreMembersWatch>);

#[napi]
impl MembersWatch {
    /// The next join or leave; `TIMEOUT` / `CLOSED` as `ElectionObserver.next()`.
    #[napi(ts_args_type = "timeoutMs?: number | undefined | null")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, MemberEvent>> {
        self.0.next(env, timeout_ms)
    }

    /// Ends the watch (a pending `next()` rejects with `CLOSED`). Idempotent.
    #[napi]
    pub fn close(&self) {
        self.0.close();
    }

    #[napi(getter)]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
