//! The blocking recipes of [`Coord`]: locks and campaigns wait in the server's FIFO queue by
//! watching their holder key (a KV key under the reserved prefix) from the index at which they
//! joined, so no grant is missed; observers follow an election's holder key; a members watch
//! follows a group's keys.
//!
//! A waiter also checks its lease whenever no event arrived for a while: a lease that ended
//! while waiting (it was not kept alive) ends the wait with `LeaseExpired` instead of never.

use std::time::Duration;

use super::coord::{
    Coord, GroupMember, check_name, check_value, decode_member, unexpected_outcome,
};
use super::watch::WatchStream;
use crate::api::{Error, ErrorKind};
use crate::state::coord::{
    CoordCommand, CoordOutcome, Holder, QueueKind, holder_key, members_prefix,
};
use crate::state::watch::WatchFilter;

/// How long a waiter goes without an event before it checks that its lease still exists.
const LEASE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The holder of an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionLeader {
    pub value: Vec<u8>,
    pub lease: u64,
    /// Increases with every new leader of this election (its fencing token).
    pub token: u64,
}

impl From<Holder> for ElectionLeader {
    fn from(h: Holder) -> Self {
        ElectionLeader {
            value: h.value,
            lease: h.lease,
            token: h.token,
        }
    }
}

/// A change of a liveness group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member registered (or re-registered with new info).
    Joined(GroupMember),
    /// A member left (unregistered, or its lease ended).
    Left { member: String },
}

/// The leaders of one election as they change (see [`Coord::observe`]).
#[derive(Debug)]
pub struct ElectionObserver {
    watch: WatchStream,
    last: Option<Option<ElectionLeader>>,
    pending: Option<Option<ElectionLeader>>,
}

impl ElectionObserver {
    /// The next leader (`None`: nobody leads now). The first call returns the current one;
    /// each later call returns when it changes.
    pub async fn next(&mut self) -> Result<Option<ElectionLeader>, Error> {
        loop {
            if let Some(current) = self.pending.take()
                && self.last.as_ref() != Some(&current)
            {
                self.last = Some(current.clone());
                return Ok(current);
            }
            let event = self.watch.next().await?;
            self.pending = Some(decode_holder(event.new_value.as_deref())?.map(Into::into));
        }
    }
}

/// The changes of one liveness group (see [`Coord::watch_members`]).
#[derive(Debug)]
pub struct MembersWatch {
    watch: WatchStream,
    prefix: String,
}

impl MembersWatch {
    pub async fn next(&mut self) -> Result<MemberEvent, Error> {
        let event = self.watch.next().await?;
        match event.new_value {
            Some(value) => Ok(MemberEvent::Joined(decode_member(
                &self.prefix,
                &event.key,
                &value,
            )?)),
            None => Ok(MemberEvent::Left {
                member: event
                    .key
                    .strip_prefix(&self.prefix)
                    .unwrap_or(&event.key)
                    .to_string(),
            }),
        }
    }
}

impl Coord<'_> {
    /// Waits until `lease` holds lock `name` (waiters are served in the order they asked) and
    /// returns its fencing token. `LeaseExpired` when the lease ends first. A caller that stops
    /// waiting (drops the future, e.g. a cancelled task) leaves the queue in the background —
    /// and releases the lock if it was granted in the meantime.
    pub async fn lock(&self, name: &str, lease: u64) -> Result<u64, Error> {
        self.acquire(QueueKind::Lock, name, lease, Vec::new(), None)
            .await
            .and_then(|t| t.ok_or_else(|| Error::new(ErrorKind::Internal, "lock wait ended")))
    }

    /// Like [`lock`](Self::lock), waiting at most `wait` (zero: not at all); `None` when not
    /// held by then (the lease has left the queue again).
    pub async fn try_lock(
        &self,
        name: &str,
        lease: u64,
        wait: Duration,
    ) -> Result<Option<u64>, Error> {
        self.acquire(QueueKind::Lock, name, lease, Vec::new(), Some(wait))
            .await
    }

    /// Releases lock `name` held by `lease` (the next waiter holds it), or withdraws a waiting
    /// `lease`. `true` when it held the lock.
    pub async fn unlock(&self, name: &str, lease: u64) -> Result<bool, Error> {
        self.release(QueueKind::Lock, name, lease).await
    }

    /// Campaigns in election `name` with `value`: waits until `lease` leads and returns its
    /// token (increasing with every new leader). Candidates lead in the order they campaigned.
    pub async fn campaign(&self, name: &str, value: Vec<u8>, lease: u64) -> Result<u64, Error> {
        check_value(&value)?;
        self.acquire(QueueKind::Election, name, lease, value, None)
            .await
            .and_then(|t| t.ok_or_else(|| Error::new(ErrorKind::Internal, "campaign ended")))
    }

    /// Gives up leading (or campaigning in) election `name`; the next candidate leads.
    pub async fn resign(&self, name: &str, lease: u64) -> Result<bool, Error> {
        self.release(QueueKind::Election, name, lease).await
    }

    /// The current leader of election `name`.
    pub async fn leader(&self, name: &str) -> Result<Option<ElectionLeader>, Error> {
        check_name("election", name)?;
        let value = self
            .client
            .kv()
            .get(&holder_key(QueueKind::Election, name))
            .await?;
        Ok(decode_holder(value.as_deref())?.map(Into::into))
    }

    /// Follows the leader of election `name`: first the current one, then every change.
    pub async fn observe(&self, name: &str) -> Result<ElectionObserver, Error> {
        check_name("election", name)?;
        let key = holder_key(QueueKind::Election, name);
        // Watch first, then read: a change between the two is seen (maybe twice, deduplicated).
        let watch = self.client.kv().watch(WatchFilter::Key(key), 0).await?;
        let current = self.leader(name).await?;
        Ok(ElectionObserver {
            watch,
            last: None,
            pending: Some(current),
        })
    }

    /// Follows the members of `group` joining and leaving (from now on; list the current ones
    /// with [`members`](Self::members)).
    pub async fn watch_members(&self, group: &str) -> Result<MembersWatch, Error> {
        check_name("group", group)?;
        let prefix = members_prefix(group);
        let watch = self
            .client
            .kv()
            .watch(WatchFilter::Prefix(prefix.clone()), 0)
            .await?;
        Ok(MembersWatch { watch, prefix })
    }

    /// Joins queue `name`; waits until held (`Some(token)`), or `wait` passed (`None`, after
    /// leaving the queue again).
    async fn acquire(
        &self,
        kind: QueueKind,
        name: &str,
        lease: u64,
        value: Vec<u8>,
        wait: Option<Duration>,
    ) -> Result<Option<u64>, Error> {
        check_name(kind.word(), name)?;
        let command = CoordCommand::Acquire {
            kind,
            name: name.to_string(),
            lease,
            value,
        };
        // A caller that stops waiting (drops this future) leaves the queue, or gives up what
        // was granted meanwhile: it will never learn its token, so it must not hold it.
        let mut withdraw = Withdraw {
            cluster: Some(self.client.inner.clone()),
            kind,
            name: name.to_string(),
            lease,
        };
        let index = match self.write(command).await {
            Ok(CoordOutcome::Acquired { token }) => {
                withdraw.disarm();
                return Ok(Some(token));
            }
            Ok(CoordOutcome::Queued { index, .. }) => index,
            Ok(other) => return Err(unexpected_outcome("Acquire", &other)),
            Err(e) => {
                // Refused outright: nothing was queued. Any other failure (a timeout, a lost
                // reply) may have queued it: the drop withdraws it.
                if matches!(e.kind, ErrorKind::LeaseExpired | ErrorKind::InvalidArgument) {
                    withdraw.disarm();
                }
                return Err(e);
            }
        };
        let waited = match wait {
            None => self
                .wait_for_grant(kind, name, lease, index)
                .await
                .map(Some),
            Some(wait) => {
                match tokio::time::timeout(wait, self.wait_for_grant(kind, name, lease, index))
                    .await
                {
                    Ok(r) => r.map(Some),
                    Err(_) => Ok(None),
                }
            }
        };
        match waited {
            Ok(None) => {
                // Leave the queue (a grant that raced the timeout is given up with it).
                self.release(kind, name, lease).await?;
                withdraw.disarm();
                Ok(None)
            }
            Ok(Some(token)) => {
                withdraw.disarm();
                Ok(Some(token))
            }
            Err(e) => {
                if e.kind == ErrorKind::LeaseExpired {
                    withdraw.disarm();
                }
                Err(e)
            }
        }
    }

    /// Watches the holder key from `index + 1` until `lease` holds it.
    async fn wait_for_grant(
        &self,
        kind: QueueKind,
        name: &str,
        lease: u64,
        index: u64,
    ) -> Result<u64, Error> {
        let key = holder_key(kind, name);
        let mut watch = self
            .client
            .kv()
            .watch(WatchFilter::Key(key), index + 1)
            .await?;
        loop {
            match tokio::time::timeout(LEASE_CHECK_EVERY, watch.next()).await {
                Ok(event) => {
                    let event = event?;
                    if let Some(holder) = decode_holder(event.new_value.as_deref())?
                        && holder.lease == lease
                    {
                        return Ok(holder.token);
                    }
                }
                Err(_) => {
                    // Fails with `LeaseExpired` when the lease ended while waiting.
                    self.time_to_live(lease).await?;
                }
            }
        }
    }
}

fn decode_holder(value: Option<&[u8]>) -> Result<Option<Holder>, Error> {
    value
        .map(|v| {
            Holder::decode(v)
                .map_err(|e| Error::new(ErrorKind::Corruption, format!("holder record: {e}")))
        })
        .transpose()
}

/// Leaves a queue in the background when the wait that joined it is dropped unfinished.
struct Withdraw {
    cluster: Option<std::sync::Arc<super::cluster::Cluster>>,
    kind: QueueKind,
    name: String,
    lease: u64,
}

impl Withdraw {
    fn disarm(&mut self) {
        self.cluster = None;
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let command = CoordCommand::Release {
            kind: self.kind,
            name: std::mem::take(&mut self.name),
            lease: self.lease,
        };
        runtime.spawn(async move {
            if let Err(e) = super::coord::coord_write(&cluster, command).await {
                tracing::debug!(reason = %e, "withdrawing an abandoned wait failed");
            }
        });
    }
}
