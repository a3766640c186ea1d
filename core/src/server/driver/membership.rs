//! Live membership: the address book (which node is where), `UpdateVoters` from request to
//! committed configuration, and this node's own standing — joining (not yet added), member, or
//! removed (stops serving, says so, leaves a marker so it never rejoins with stale state).
//!
//! The raft core decides the configuration; this module records new members' addresses in
//! the replicated [`ClusterMeta`] first (so every node can reach them), asks the core for the
//! change, and answers the caller once the final configuration is committed or the deadline
//! passed (then the change is cancelled while it still can be).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::errors::{invalid, raft_error};
use super::{Conn, Driver, reply};
use crate::api::{Error, ErrorKind};
use crate::client::protocol::{MAX_ADMIN_TIMEOUT_MS, MAX_VOTERS, Member, ReplyBody};
use crate::raft::{Index, Role, Term};
use crate::server::command::{Command, TAG_META, decode, encode_meta};
use crate::state::cluster_meta::{ClusterMeta, MetaCommand};

/// The time an admin request may take when it names none.
pub(super) const DEFAULT_ADMIN_TIMEOUT_MS: u64 = 60_000;

/// This node's standing in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Standing {
    /// Started to join a running cluster; not in any configuration yet.
    Joining,
    /// In the configuration (voter or learner).
    #[default]
    Member,
    /// A committed configuration no longer holds this node: it serves nothing.
    Removed,
    /// A read replica outside the configuration, pulling from parents (configured as one, or
    /// registered as one before its removal from the voters).
    Observer,
}

/// An `UpdateVoters` in progress on this leader.
pub(super) struct VoterChange {
    conn: Conn,
    req: u64,
    old: BTreeSet<u64>,
    new: BTreeSet<u64>,
    stage: Stage,
    deadline: u64,
    timeout_ms: u64,
}

impl VoterChange {
    pub(super) fn fail(self, e: &Error) {
        reply(&self.conn, self.req, Err(e.clone()), 0);
    }
}

enum Stage {
    /// Waiting for the new members' addresses (proposed at `index` in `term`) to be applied.
    Recording { index: Index, term: Term },
    /// The core is moving the configuration.
    Changing,
    /// Cancelled at the deadline; `error` is the answer once the learners the change added
    /// are removed again (or an election timeout later, whatever comes first).
    RollingBack { error: Error, until: u64 },
}

/// The file a removed node leaves in its data dir.
pub(super) fn removed_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("REMOVED")
}

/// The addresses this node learned beyond its configuration file.
fn address_file(data_dir: &Path) -> PathBuf {
    data_dir.join("addresses")
}

/// Reads the learned addresses (a missing or unreadable file is no addresses).
pub(super) fn load_addresses(data_dir: &Path) -> BTreeMap<u64, SocketAddr> {
    let Ok(bytes) = std::fs::read(address_file(data_dir)) else {
        return BTreeMap::new();
    };
    postcard::from_bytes(&bytes).unwrap_or_default()
}

fn save_addresses(data_dir: &Path, addrs: &BTreeMap<u64, SocketAddr>) -> std::io::Result<()> {
    let path = address_file(data_dir);
    let tmp = path.with_extension("tmp");
    let bytes = postcard::to_allocvec(addrs).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, &path)
}

/// A joining node asks the members its configuration names for everyone's address (the
/// leader may be a node it was not told about, and it must be able to answer it), until one
/// answers or the node stops.
pub(super) async fn ask_for_addresses(
    node_id: u64,
    cluster_id: u64,
    members: Vec<SocketAddr>,
    reports: tokio::sync::mpsc::UnboundedSender<super::Report>,
) {
    let mut client_cfg = crate::client::ClientConfig::new(cluster_id);
    client_cfg.request_timeout = std::time::Duration::from_secs(5);
    client_cfg.attempt_timeout = std::time::Duration::from_secs(2);
    loop {
        let connected = crate::client::Client::connect(members.clone(), client_cfg.clone()).await;
        if let Err(e) = &connected {
            tracing::debug!(node = node_id, reason = %e, "cannot ask the members for addresses yet");
        }
        if let Ok(client) = connected {
            let answer = client.admin().cluster_configuration().await;
            client.close();
            if let Ok(c) = answer {
                let addrs = c
                    .voters
                    .iter()
                    .chain(c.observers.iter())
                    .chain(c.joint_old_voters.iter().flatten())
                    .filter_map(|m| Some((m.node_id, m.addr.parse().ok()?)))
                    .collect();
                let _ = reports.send(super::Report::Addresses(addrs));
                return;
            }
        }
        if reports.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

impl Driver {
    /// Takes in addresses from the configuration, the address book or the log; a new or moved
    /// peer is connected on the next pass.
    pub(super) fn learn_addresses(&mut self, addrs: &BTreeMap<u64, SocketAddr>) {
        let me = self.cfg.node_id;
        let mut changed = false;
        for (&id, &addr) in addrs {
            if id == me || self.peer_addrs.get(&id) == Some(&addr) {
                continue;
            }
            tracing::info!(node = me, peer = id, %addr, "peer address learned");
            self.peer_addrs.insert(id, addr);
            self.addrs.insert(id, addr.to_string());
            self.new_peers.push((id, addr));
            changed = true;
        }
        if changed && let Err(e) = save_addresses(&self.cfg.data_dir, &self.peer_addrs) {
            tracing::warn!(node = me, reason = %e, "cannot save the learned peer addresses");
        }
    }

    /// The applied cluster metadata changed (or a snapshot brought it).
    pub(super) fn on_meta_applied(&mut self, meta: &ClusterMeta) {
        self.learn_addresses(&meta.addrs);
        self.observers = meta.observers.clone();
        if self.raft.preferred_leader() != meta.preferred_leader {
            tracing::info!(node = self.cfg.node_id, preferred = ?meta.preferred_leader, "preferred leader set");
            self.raft.set_preferred_leader(meta.preferred_leader);
        }
    }

    /// Addresses in entries this node is about to store: known before they commit, so a node
    /// can reach a new member (e.g. to vote) as soon as its log holds it.
    pub(super) fn scan_for_addresses(&mut self, entries: &[crate::raft::Entry]) {
        for e in entries {
            if let crate::raft::EntryKind::Normal(d) = &e.kind
                && d.first() == Some(&TAG_META)
                && let Ok(Command::Meta(MetaCommand::SetAddresses(addrs))) = decode(d)
            {
                self.learn_addresses(&addrs);
            }
        }
    }

    pub(super) fn handle_update_voters(
        &mut self,
        conn: Conn,
        req: u64,
        old: &[u64],
        new: &[Member],
        timeout_ms: u64,
    ) {
        let applied = self.applied();
        match self.plan_voter_change(old, new, timeout_ms) {
            Err(e) => reply(&conn, req, Err(e), applied),
            Ok(None) => reply(&conn, req, Ok(ReplyBody::Done), applied),
            Ok(Some((addrs, old, new, timeout_ms))) => {
                let now = self.now();
                let stage = if addrs.is_empty() {
                    match self.start_voter_change(&new) {
                        Ok(()) => Stage::Changing,
                        Err(e) => return reply(&conn, req, Err(e), applied),
                    }
                } else {
                    let data = encode_meta(&MetaCommand::SetAddresses(addrs));
                    match self.raft.propose(data) {
                        Ok(index) => Stage::Recording {
                            index,
                            term: self.raft.term(),
                        },
                        Err(e) => {
                            return reply(
                                &conn,
                                req,
                                Err(raft_error(e, self.leader_hint())),
                                applied,
                            );
                        }
                    }
                };
                self.pending_count += 1;
                self.voter_change = Some(VoterChange {
                    conn,
                    req,
                    old,
                    new,
                    stage,
                    deadline: now + timeout_ms,
                    timeout_ms,
                });
            }
        }
    }

    /// Checks an `UpdateVoters`; `None` when the voters already are `new`, else the addresses
    /// to record first, the old and new voter sets and the timeout.
    #[allow(clippy::type_complexity)]
    fn plan_voter_change(
        &self,
        old: &[u64],
        new: &[Member],
        timeout_ms: u64,
    ) -> Result<Option<(BTreeMap<u64, SocketAddr>, BTreeSet<u64>, BTreeSet<u64>, u64)>, Error> {
        if self.raft.role() != Role::Leader {
            return Err(self.not_leader());
        }
        if self.applied() < self.term_start {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the new leader is still catching up",
            ));
        }
        if timeout_ms > MAX_ADMIN_TIMEOUT_MS {
            return Err(invalid(format!(
                "timeout_ms {timeout_ms} exceeds {MAX_ADMIN_TIMEOUT_MS}"
            )));
        }
        let timeout_ms = if timeout_ms == 0 {
            DEFAULT_ADMIN_TIMEOUT_MS
        } else {
            timeout_ms
        };
        if self.voter_change.is_some() || self.raft.membership_change_pending() {
            return Err(invalid("a membership change is already in progress"));
        }
        let m = self.raft.membership();
        let old: BTreeSet<u64> = old.iter().copied().collect();
        let target: BTreeSet<u64> = new.iter().map(|n| n.node_id).collect();
        let moved = new
            .iter()
            .any(|n| !n.addr.is_empty() && self.addrs.get(&n.node_id) != Some(&n.addr));
        if target == m.voters && !moved {
            // Idempotent by value: the voters already are `new` (e.g. a retry of a change
            // that took effect).
            return Ok(None);
        }
        if old != m.voters {
            return Err(invalid(format!(
                "the old voters {old:?} are not the current voters {:?}",
                m.voters
            )));
        }
        if new.is_empty() || new.len() > MAX_VOTERS {
            return Err(invalid(format!(
                "the new voters must be 1..={MAX_VOTERS} nodes, not {}",
                new.len()
            )));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeMap::new();
        for member in new {
            let id = member.node_id;
            if id == 0 || !ids.insert(id) {
                return Err(invalid(format!(
                    "node id {id} is zero or listed twice in the new voters"
                )));
            }
            if member.addr.is_empty() {
                if id != self.cfg.node_id && !self.peer_addrs.contains_key(&id) {
                    return Err(invalid(format!(
                        "node {id} has no known address: give one with it"
                    )));
                }
                continue;
            }
            let addr: SocketAddr = member.addr.parse().map_err(|_| {
                invalid(format!(
                    "node {id}: {:?} is not a \"host:port\" address",
                    member.addr
                ))
            })?;
            let known = if id == self.cfg.node_id {
                self.addrs.get(&id).and_then(|a| a.parse().ok())
            } else {
                self.peer_addrs.get(&id).copied()
            };
            if known != Some(addr) {
                addrs.insert(id, addr);
            }
        }
        Ok(Some((addrs, old, ids, timeout_ms)))
    }

    fn start_voter_change(&mut self, new: &BTreeSet<u64>) -> Result<(), Error> {
        let learners = self
            .raft
            .membership()
            .learners
            .difference(new)
            .copied()
            .collect();
        tracing::info!(node = self.cfg.node_id, voters = ?new, "membership change started");
        self.raft
            .change_membership(new.clone(), learners)
            .map_err(|e| raft_error(e, self.leader_hint()))
    }

    /// Moves the `UpdateVoters` in progress on; called once per pass.
    pub(super) fn drive_voter_change(&mut self) {
        let Some(op) = &self.voter_change else {
            return;
        };
        let now = self.now();
        let applied = self.applied();
        let result = match &op.stage {
            &Stage::Recording { index, term } => {
                if self.raft.term() != term || self.raft.role() != Role::Leader {
                    Some(Err(Error::new(
                        ErrorKind::Unavailable,
                        "leadership changed before the change started; retry",
                    )))
                } else if applied >= index {
                    let new = op.new.clone();
                    match self.start_voter_change(&new) {
                        Ok(()) => {
                            if let Some(op) = &mut self.voter_change {
                                op.stage = Stage::Changing;
                            }
                            None
                        }
                        Err(e) => Some(Err(e)),
                    }
                } else if now >= op.deadline {
                    Some(Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "the new members' addresses were not committed within {} ms",
                            op.timeout_ms
                        ),
                    )))
                } else {
                    None
                }
            }
            Stage::Changing => {
                let m = self.raft.membership();
                let s = self.raft.status();
                if !m.is_joint() && m.voters == op.new && s.commit >= s.membership_index {
                    tracing::info!(node = self.cfg.node_id, voters = ?op.new, "membership change committed");
                    Some(Ok(ReplyBody::Done))
                } else if self.raft.role() != Role::Leader && !m.is_joint() {
                    Some(Err(Error::new(
                        ErrorKind::Unavailable,
                        "leadership changed during the membership change; the voters are \
                         those of cluster_configuration()",
                    )))
                } else if now >= op.deadline && self.raft.cancel_membership_change().is_ok() {
                    let (old, new, t) = (op.old.clone(), op.new.clone(), op.timeout_ms);
                    let error = self.cancel_voter_change(&old, &new, t);
                    let until = now + 2 * self.cfg.election_timeout_ms;
                    if let Some(op) = &mut self.voter_change {
                        op.stage = Stage::RollingBack { error, until };
                    }
                    None
                } else {
                    None
                }
            }
            Stage::RollingBack { error, until } => (!self.raft.membership_change_pending()
                || now >= *until)
                .then(|| Err(error.clone())),
        };
        if let Some(result) = result
            && let Some(op) = self.voter_change.take()
        {
            self.pending_count = self.pending_count.saturating_sub(1);
            reply(&op.conn, op.req, result, applied);
        }
    }

    /// The deadline passed before the joint phase: the voters stay `old`; learners the change
    /// added are removed again when the core allows it now.
    fn cancel_voter_change(&mut self, old: &BTreeSet<u64>, new: &BTreeSet<u64>, t: u64) -> Error {
        let m = self.raft.membership().clone();
        let added: BTreeSet<u64> = new.difference(old).copied().collect();
        let lagging: Vec<u64> = added.iter().copied().collect();
        let learners: BTreeSet<u64> = m.learners.difference(&added).copied().collect();
        if learners != m.learners
            && let Err(e) = self.raft.change_membership(m.voters.clone(), learners)
        {
            tracing::warn!(node = self.cfg.node_id, reason = %e, "cannot remove the learners of a cancelled change yet");
        }
        tracing::warn!(
            node = self.cfg.node_id,
            ?lagging,
            "membership change cancelled"
        );
        Error::new(
            ErrorKind::Timeout,
            format!(
                "node(s) {lagging:?} did not catch up within {t} ms (unreachable or too far \
                 behind); the change was cancelled and the voters are still {old:?}"
            ),
        )
    }

    /// Follows this node's own standing after every pass.
    pub(super) fn check_standing(&mut self) {
        let me = self.cfg.node_id;
        let m = self.raft.membership();
        if m.contains(me) {
            if self.standing == Standing::Joining {
                tracing::info!(node = me, "joined the cluster");
            }
            self.standing = Standing::Member;
            return;
        }
        let s = self.raft.status();
        if self.standing == Standing::Observer {
            return;
        }
        // Judged once the configuration that left this node out is applied, so the metadata
        // before it (an observer registration) is known.
        if self.standing != Standing::Member || s.applied < s.membership_index {
            return;
        }
        if self.observers.contains_key(&me) || self.cfg.role == crate::server::ServerRole::Observer
        {
            tracing::info!(node = me, "no longer a voter: goes on as an observer");
            self.standing = Standing::Observer;
            return;
        }
        self.standing = Standing::Removed;
        let index = s.membership_index;
        tracing::warn!(
            node = me,
            index,
            "removed from the cluster: this node stops serving"
        );
        let marker = removed_marker(&self.cfg.data_dir);
        if let Err(e) = std::fs::write(&marker, format!("removed at index {index}\n")) {
            tracing::warn!(node = me, reason = %e, "cannot write {}", marker.display());
        }
        let e = self
            .standing_error()
            .unwrap_or_else(|| Error::new(ErrorKind::Closed, "removed"));
        self.fail_waiting(e);
    }

    /// Why this node refuses client requests, when it does.
    pub(super) fn standing_error(&self) -> Option<Error> {
        let me = self.cfg.node_id;
        match self.standing {
            Standing::Member | Standing::Observer => None,
            Standing::Joining => Some(Error::new(
                ErrorKind::Unavailable,
                format!("node {me} is joining the cluster and is not a member yet"),
            )),
            Standing::Removed => Some(Error::new(
                ErrorKind::Unavailable,
                format!("node {me} was removed from the cluster"),
            )),
        }
    }
}
