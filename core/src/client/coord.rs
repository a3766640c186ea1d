//! [`Coord`]: the coordination recipes on top of the cluster layer — leases (TTL sessions),
//! KV keys attached to a lease, locks with fencing tokens, leader elections, unique monotonic
//! IDs and liveness groups.
//!
//! Owns: argument checks, the mapping of [`CoordOutcome`]s to return values, and the waits of
//! the blocking recipes (a queued lock or campaign waits by watching its holder key, see
//! [`super::coord_wait`]). Never does: decide expiry (the leader does, see
//! `server::lessor`) or routing. Every write carries a session id, so a retry applies once.
//!
//! How a resource uses a fencing token: the holder sends its token with every write; the
//! resource remembers the highest token it has accepted and refuses any lower one. A holder
//! whose lease expired (paused, partitioned) still believes it holds the lock, but the next
//! holder's token is higher, so once the resource has seen the new holder the old one's
//! writes are refused. Tokens are log indices: strictly increasing with every acquisition of a
//! lock, across leader changes and restarts.

use std::ops::Range;
use std::time::Duration;

use super::cluster::Target;
use super::keep_alive::KeepAlive;
use super::protocol::{LeaseStatus, MAX_KEY_BYTES, MAX_VALUE_BYTES, ReplyBody, RequestBody};
use super::{Client, invalid, unexpected};
use crate::api::{Error, ErrorKind};
use crate::state::coord::{
    CoordCommand, CoordOutcome, CoordRequest, MemberRecord, QueueKind, is_reserved, member_key,
    members_prefix,
};

/// Longest lock, election, sequence, group or member name (bytes), as the server's default.
pub const MAX_NAME_BYTES: usize = 1024;

/// A live member of a liveness group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member: String,
    pub info: Vec<u8>,
    /// The lease it lives under.
    pub lease: u64,
}

/// A registration made by [`Coord::register`]: the member stays live while this is kept (its
/// lease is kept alive in the background). [`close`](Self::close) ends it at once; dropping it
/// stops the keep-alive, and the member vanishes when the lease runs out.
#[derive(Debug)]
pub struct Registration {
    pub lease: u64,
    keep_alive: KeepAlive,
}

impl Registration {
    /// The keep-alive of the registration's lease (its loss is the registration's end).
    pub fn keep_alive(&self) -> &KeepAlive {
        &self.keep_alive
    }

    /// Ends the registration now (revokes its lease); the member leaves every group at once.
    pub async fn close(self) -> Result<(), Error> {
        self.keep_alive.revoke().await
    }
}

/// The coordination recipes of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Coord<'a> {
    pub(super) client: &'a Client,
}

impl<'a> Coord<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Coord { client }
    }

    /// Grants a lease of `ttl` (at least 100 ms): its id. Keep it alive within `ttl`
    /// ([`keep_alive`](Self::keep_alive), or [`keep_alive_forever`](Self::keep_alive_forever)),
    /// or everything attached to it ends when the leader sees it run out.
    pub async fn grant(&self, ttl: Duration) -> Result<u64, Error> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        match self.write(CoordCommand::Grant { ttl_ms }).await? {
            CoordOutcome::Granted { lease, .. } => Ok(lease),
            other => Err(unexpected_outcome("Grant", &other)),
        }
    }

    /// Ends `lease` now: its keys are removed, its locks released, its campaigns and
    /// registrations withdrawn. `false` when it had already ended.
    pub async fn revoke(&self, lease: u64) -> Result<bool, Error> {
        match self.write(CoordCommand::Revoke { lease }).await? {
            CoordOutcome::Revoked { existed } => Ok(existed),
            other => Err(unexpected_outcome("Revoke", &other)),
        }
    }

    /// Renews `lease` for its full TTL from now (`LeaseExpired` when it is gone).
    pub async fn keep_alive(&self, lease: u64) -> Result<LeaseStatus, Error> {
        lease_call(&self.client.inner, RequestBody::LeaseKeepAlive { lease }).await
    }

    /// Keeps `lease` alive in the background (a renewal every third of its TTL) until the
    /// handle is dropped or the lease is lost.
    pub async fn keep_alive_forever(&self, lease: u64) -> Result<KeepAlive, Error> {
        let status = self.keep_alive(lease).await?;
        Ok(KeepAlive::spawn(
            self.client.inner.clone(),
            lease,
            Duration::from_millis(status.ttl_ms),
        ))
    }

    /// What `lease` has left and which keys are attached to it.
    pub async fn time_to_live(&self, lease: u64) -> Result<LeaseStatus, Error> {
        lease_call(&self.client.inner, RequestBody::LeaseTimeToLive { lease }).await
    }

    /// Sets KV `key` to `value`, attached to `lease`: the key is removed when the lease ends
    /// (watchers see the removal). A later plain KV write of the key detaches it.
    pub async fn put(&self, key: &str, value: Vec<u8>, lease: u64) -> Result<(), Error> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES || is_reserved(key) {
            return Err(invalid(format!(
                "key of {} bytes is outside 1..={MAX_KEY_BYTES} bytes or reserved",
                key.len()
            )));
        }
        check_value(&value)?;
        let command = CoordCommand::Put {
            key: key.to_string(),
            value,
            lease,
        };
        match self.write(command).await? {
            CoordOutcome::Put => Ok(()),
            other => Err(unexpected_outcome("Put", &other)),
        }
    }

    /// The next value of sequence `name` (1, 2, 3, …; unique and increasing across leader
    /// changes and restarts).
    pub async fn next_id(&self, name: &str) -> Result<u64, Error> {
        Ok(self.next_ids(name, 1).await?.start)
    }

    /// The next `count` values of sequence `name`, as one contiguous range.
    pub async fn next_ids(&self, name: &str, count: u64) -> Result<Range<u64>, Error> {
        check_name("sequence name", name)?;
        if count == 0 {
            return Err(invalid("id count must be at least 1".into()));
        }
        let command = CoordCommand::NextIds {
            name: name.to_string(),
            count,
        };
        match self.write(command).await? {
            CoordOutcome::Ids { first, count } => Ok(first..first + count),
            other => Err(unexpected_outcome("NextIds", &other)),
        }
    }

    /// Registers `member` of `group` with `info` under a new lease of `ttl` kept alive in the
    /// background: the member is listed by [`members`](Self::members) while the returned
    /// [`Registration`] lives (and its process does).
    pub async fn register(
        &self,
        group: &str,
        member: &str,
        info: Vec<u8>,
        ttl: Duration,
    ) -> Result<Registration, Error> {
        check_group(group, member)?;
        check_value(&info)?;
        let lease = self.grant(ttl).await?;
        let keep_alive = KeepAlive::spawn(self.client.inner.clone(), lease, ttl);
        if let Err(e) = self.register_under(group, member, info, lease).await {
            // The lease was made for this registration alone: end it rather than let it
            // linger until its TTL runs out.
            let _ = keep_alive.revoke().await;
            return Err(e);
        }
        Ok(Registration { lease, keep_alive })
    }

    /// Registers `member` of `group` under an existing `lease` (replacing an earlier
    /// registration of the same member).
    pub async fn register_under(
        &self,
        group: &str,
        member: &str,
        info: Vec<u8>,
        lease: u64,
    ) -> Result<(), Error> {
        check_group(group, member)?;
        check_value(&info)?;
        let command = CoordCommand::Register {
            group: group.to_string(),
            member: member.to_string(),
            lease,
            info,
        };
        match self.write(command).await? {
            CoordOutcome::Registered => Ok(()),
            other => Err(unexpected_outcome("Register", &other)),
        }
    }

    /// Removes `member` from `group` when it is registered under `lease`.
    pub async fn unregister(&self, group: &str, member: &str, lease: u64) -> Result<bool, Error> {
        check_group(group, member)?;
        let command = CoordCommand::Unregister {
            group: group.to_string(),
            member: member.to_string(),
            lease,
        };
        match self.write(command).await? {
            CoordOutcome::Unregistered { existed } => Ok(existed),
            other => Err(unexpected_outcome("Unregister", &other)),
        }
    }

    /// The live members of `group`, by member name (a STRICT read unless the client's KV
    /// handle says otherwise).
    pub async fn members(&self, group: &str) -> Result<Vec<GroupMember>, Error> {
        check_group(group, "x")?;
        let prefix = members_prefix(group);
        let entries = self.client.kv().list(&prefix).await?;
        entries
            .into_iter()
            .map(|(key, value)| decode_member(&prefix, &key, &value))
            .collect()
    }

    pub(super) async fn write(&self, command: CoordCommand) -> Result<CoordOutcome, Error> {
        coord_write(&self.client.inner, command).await
    }

    /// Leaves the queue of `name` (releasing it when held).
    pub(super) async fn release(
        &self,
        kind: QueueKind,
        name: &str,
        lease: u64,
    ) -> Result<bool, Error> {
        check_name(kind.word(), name)?;
        let command = CoordCommand::Release {
            kind,
            name: name.to_string(),
            lease,
        };
        match self.write(command).await? {
            CoordOutcome::Released { held } => Ok(held),
            other => Err(unexpected_outcome("Release", &other)),
        }
    }
}

/// A coordination write with its own session (a retry applies once).
pub(super) async fn coord_write(
    cluster: &super::cluster::Cluster,
    command: CoordCommand,
) -> Result<CoordOutcome, Error> {
    let session = cluster.begin_write();
    let body = RequestBody::CoordWrite {
        request: CoordRequest {
            id: Some(session.id),
            command,
        },
    };
    match cluster.call(Target::Leader, body).await? {
        ReplyBody::CoordWritten(outcome) => Ok(outcome),
        other => Err(unexpected("CoordWrite", &other)),
    }
}

/// A `LeaseKeepAlive` / `LeaseTimeToLive` call.
pub(super) async fn lease_call(
    cluster: &super::cluster::Cluster,
    body: RequestBody,
) -> Result<LeaseStatus, Error> {
    match cluster.call(Target::Leader, body).await? {
        ReplyBody::Lease(status) => Ok(status),
        other => Err(unexpected("Lease", &other)),
    }
}

pub(super) fn decode_member(prefix: &str, key: &str, value: &[u8]) -> Result<GroupMember, Error> {
    let record = MemberRecord::decode(value)
        .map_err(|e| Error::new(ErrorKind::Corruption, format!("member record {key:?}: {e}")))?;
    Ok(GroupMember {
        member: key.strip_prefix(prefix).unwrap_or(key).to_string(),
        info: record.info,
        lease: record.lease,
    })
}

pub(super) fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "{what} of {} bytes is outside 1..={MAX_NAME_BYTES} bytes",
            name.len()
        )));
    }
    Ok(())
}

fn check_group(group: &str, member: &str) -> Result<(), Error> {
    check_name("group", group)?;
    check_name("member", member)?;
    if group.contains('/') {
        return Err(invalid(format!("group {group:?} contains '/'")));
    }
    if member_key(group, member).len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "group and member names exceed the key limit of {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

pub(super) fn check_value(value: &[u8]) -> Result<(), Error> {
    // The holder and member records wrap the value in a few bytes of framing.
    let max = MAX_VALUE_BYTES - 64;
    if value.len() > max {
        return Err(invalid(format!(
            "value of {} bytes exceeds the limit of {max} bytes",
            value.len()
        )));
    }
    Ok(())
}

pub(super) fn unexpected_outcome(what: &str, outcome: &CoordOutcome) -> Error {
    unexpected(what, &ReplyBody::CoordWritten(outcome.clone()))
}
