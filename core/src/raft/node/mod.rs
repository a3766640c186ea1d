//! [`RaftNode`]: the consensus state machine. Owns elections (pre-vote, check-quorum, leader
//! stickiness), replication (pipelined, windowed), commit, joint-consensus membership, snapshots,
//! leader transfer and reads. Inputs are method calls; outputs accumulate until [`RaftNode::ready`].
//! Never performs I/O, never reads a clock, never panics on a peer's message.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::RaftError;
use super::config::Config;
use super::log::RaftLog;
use super::membership::Membership;
use super::message::{
    Entry, EntryKind, HardState, Index, Message, MessageBody, NodeId, SnapshotChunk, SnapshotMeta,
    Term,
};
use super::progress::Progress;
use super::ready::{Event, ReadMode, ReadState, Ready, Role};
use super::storage::Storage;

#[cfg(test)]
mod accessor_tests;
mod election;
mod follower;
mod membership_change;
mod monitor;
mod observed;
pub use follower::SnapshotAck;
pub use monitor::FollowerProgress;
mod reads;
mod replication;
#[cfg(test)]
mod tests;

/// A snapshot of a node's externally visible state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub vote: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub first_index: Index,
    pub last_index: Index,
    pub persisted_index: Index,
    pub commit: Index,
    pub applied: Index,
    pub membership: Membership,
    pub membership_index: Index,
}

struct PendingRead {
    ctx: Vec<u8>,
    index: Index,
    round: u64,
}

/// One Raft server's consensus state. See the module docs of [`super`] for how to drive it.
pub struct RaftNode<S: Storage> {
    cfg: Config,
    rng: u64,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog<S>,
    membership: Membership,
    membership_index: Index,
    /// The configuration at the snapshot, then every configuration entry after it, ascending.
    base_config: (Index, Membership),
    configs: Vec<(Index, Membership)>,
    progress: BTreeMap<NodeId, Progress>,
    votes: BTreeMap<NodeId, bool>,
    now: u64,
    election_deadline: u64,
    /// Last time a leader was heard from (or start-up): votes are refused for an election
    /// timeout after it (leader stickiness; what makes leases safe).
    leader_contact: u64,
    /// When this node last heard from a leader of its term (not set by start-up), for
    /// [`RaftNode::leader_heard_at`].
    leader_heard: Option<u64>,
    heartbeat_due: u64,
    check_quorum_due: u64,
    transfer: Option<(NodeId, u64)>,
    preferred: Option<NodeId>,
    target: Option<Membership>,
    /// Until when the leader keeps replicating to members the latest configuration removed
    /// (so they receive it and its commit and know they are out), and for which index.
    departing_until: (Index, u64),
    round: u64,
    round_sent: VecDeque<(u64, u64)>,
    confirmed_round: u64,
    lease_until: u64,
    lease_disabled: bool,
    reads: VecDeque<PendingRead>,
    reads_before_commit: Vec<(Vec<u8>, ReadMode)>,
    reads_ready: Vec<ReadState>,
    stash: BTreeMap<Index, Message>,
    /// The snapshot being received and how many of its bytes the host was handed (the core
    /// keeps none of them).
    incoming_snap: Option<(SnapshotMeta, u64)>,
    /// Accepted chunks not yet handed out.
    chunks_out: Vec<SnapshotChunk>,
    snapshot_out: Option<SnapshotMeta>,
    msgs: Vec<Message>,
    persisted_msgs: Vec<Message>,
    events: Vec<Event>,
    last_hs: HardState,
    /// Persist points of handed-out `Ready`s with the term of their hard state, oldest first.
    unpersisted: VecDeque<((Index, Term), Term)>,
    /// Highest term known durable: a leader sends nothing before its term is.
    durable_term: Term,
}

impl<S: Storage> RaftNode<S> {
    /// Starts (or restarts) a node from its durable `store`. `applied` is the index the host's
    /// state machine already reflects (at least the snapshot index); `now` is the current time.
    pub fn new(cfg: Config, store: S, applied: Index, now: u64) -> Result<Self, RaftError> {
        cfg.validate()?;
        let hs = store.hard_state();
        let snap = store.snapshot_meta();
        let log = RaftLog::new(store, applied);
        let mut node = Self {
            rng: cfg.seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            membership: snap.membership.clone(),
            membership_index: snap.index,
            base_config: (snap.index, snap.membership),
            configs: Vec::new(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            now,
            election_deadline: now,
            leader_contact: now,
            leader_heard: None,
            heartbeat_due: now,
            check_quorum_due: now,
            transfer: None,
            preferred: None,
            target: None,
            departing_until: (0, 0),
            round: 0,
            round_sent: VecDeque::new(),
            confirmed_round: 0,
            lease_until: 0,
            lease_disabled: false,
            reads: VecDeque::new(),
            reads_before_commit: Vec::new(),
            reads_ready: Vec::new(),
            stash: BTreeMap::new(),
            incoming_snap: None,
            chunks_out: Vec::new(),
            snapshot_out: None,
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            events: Vec::new(),
            last_hs: HardState::default(),
            unpersisted: VecDeque::new(),
            durable_term: hs.term,
            log,
            cfg,
        };
        node.last_hs = node.hard_state();
        // Rebuild the configuration history from the log after the snapshot.
        let mut lo = node.log.first_index();
        let last = node.log.last_index();
        while lo <= last {
            let Some(batch) = node.log.entries(lo, last + 1, 4 << 20) else {
                break;
            };
            let Some(end) = batch.last().map(|e| e.index) else {
                break;
            };
            for e in batch {
                if let EntryKind::Config(m) = e.kind {
                    node.configs.push((e.index, m));
                }
            }
            lo = end + 1;
        }
        node.refresh_membership();
        node.events.clear();
        node.reset_election_timer();
        Ok(node)
    }

    // ----- accessors -----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    pub fn storage(&self) -> &S {
        &self.log.store
    }
    /// The host writes what each [`Ready`] says through this (the core never writes).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.log.store
    }
    /// Term of the entry at `index` in this node's log (durable or not), if present.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }
    /// Entries `[lo, hi)` of this node's log (durable or not); `None` if compacted.
    pub fn entries(&self, lo: Index, hi: Index) -> Option<Vec<Entry>> {
        self.log.entries(lo, hi, u64::MAX)
    }
    /// While leader: the time (this node's clock) until which it may serve lease reads, if it
    /// holds a lease at all. No other node can become leader before then.
    pub fn lease_expiry(&self) -> Option<u64> {
        let holds = self.role == Role::Leader && self.cfg.lease_reads && !self.lease_disabled;
        (holds && self.lease_until > 0).then_some(self.lease_until)
    }
    /// Until when (this node's clock) it refuses votes because it heard from a leader — the
    /// promise leader leases rest on; `None` without check-quorum (no promise is kept).
    pub fn vote_refused_until(&self) -> Option<u64> {
        self.cfg
            .check_quorum
            .then(|| self.leader_contact + self.cfg.election_timeout)
    }
    /// The voter this leader is handing leadership to, while a transfer is in progress.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|(to, _)| to)
    }
    /// The preferred leader this node was told about.
    pub fn preferred_leader(&self) -> Option<NodeId> {
        self.preferred
    }
    /// The latest time this node has been given (by `tick` or any time-carrying input).
    pub fn clock(&self) -> u64 {
        self.now
    }
    pub fn status(&self) -> Status {
        Status {
            id: self.cfg.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            persisted_index: self.log.persisted,
            commit: self.log.commit,
            applied: self.log.applied,
            membership: self.membership.clone(),
            membership_index: self.membership_index,
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }

    // ----- inputs -----

    /// Advances the node's notion of time (milliseconds, monotonic) and fires due timers.
    pub fn tick(&mut self, now: u64) {
        if now < self.now {
            return;
        }
        self.now = now;
        if self.role == Role::Leader {
            self.tick_leader();
        } else if now >= self.election_deadline {
            self.reset_election_timer();
            if self.promotable() {
                self.campaign(self.cfg.pre_vote, false);
            }
        }
    }

    /// Proposes client data; returns the index it will have if it commits.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<Index, RaftError> {
        self.check_can_propose()?;
        let idx = self.append_as_leader(vec![EntryKind::Normal(data)]);
        Ok(idx)
    }

    /// Proposes several entries at once; returns the index of the last one.
    pub fn propose_batch(&mut self, batch: Vec<Vec<u8>>) -> Result<Index, RaftError> {
        self.check_can_propose()?;
        if batch.is_empty() {
            return Ok(self.log.last_index());
        }
        Ok(self.append_as_leader(batch.into_iter().map(EntryKind::Normal).collect()))
    }

    fn check_can_propose(&self) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if let Some((to, _)) = self.transfer {
            return Err(RaftError::TransferInProgress(to));
        }
        Ok(())
    }

    /// Asks the leader to move the cluster to `voters` (new voters first join as learners and
    /// catch up, then C_old,new, then C_new) with `learners` as non-voting members.
    pub fn change_membership(
        &mut self,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<(), RaftError> {
        self.check_can_propose()?;
        let target = Membership {
            voters,
            outgoing: BTreeSet::new(),
            learners,
        };
        if !target.is_valid() {
            return Err(RaftError::InvalidArgument(format!(
                "invalid membership {target:?}"
            )));
        }
        if self.target.is_some()
            || self.membership_index > self.log.commit
            || self.membership.is_joint()
        {
            return Err(RaftError::ConfChangeInProgress);
        }
        self.target = Some(target);
        self.drive_membership();
        Ok(())
    }

    /// Gives up the membership change in progress before its joint phase (e.g. a new member
    /// never caught up); learners it added stay until a later change removes them. Once
    /// C_old,new is in the log the change cannot be cancelled: it completes on its own.
    pub fn cancel_membership_change(&mut self) -> Result<(), RaftError> {
        if self.membership.is_joint() {
            return Err(RaftError::ConfChangeInProgress);
        }
        self.target = None;
        Ok(())
    }

    /// Whether a membership change is requested and not finished.
    pub fn membership_change_pending(&self) -> bool {
        self.target.is_some() || self.membership.is_joint()
    }

    /// Requests a linearizable read; `ctx` comes back in a [`ReadState`] once it may be served.
    /// `now` is the host's clock when the request is handed over: a lease is checked against it,
    /// never against the time of the last tick (a node resuming from a stall must not serve a
    /// lease that expired while it was stopped).
    pub fn read(&mut self, ctx: Vec<u8>, mode: ReadMode, now: u64) -> Result<(), RaftError> {
        self.observe_time(now);
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.len() + self.reads_before_commit.len() + self.reads_ready.len()
            >= self.cfg.max_pending_reads
        {
            return Err(RaftError::TooManyPendingReads);
        }
        if self.log.term(self.log.commit) != Some(self.term) {
            self.reads_before_commit.push((ctx, mode));
            return Ok(());
        }
        self.start_read(ctx, mode);
        Ok(())
    }

    /// Hands leadership to `to` once its log matches (TimeoutNow); gives up an election timeout
    /// after `now`.
    pub fn transfer_leader(&mut self, to: NodeId, now: u64) -> Result<(), RaftError> {
        self.observe_time(now);
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.cfg.id {
            return Ok(());
        }
        if !self.membership.voters.contains(&to) || !self.progress.contains_key(&to) {
            return Err(RaftError::InvalidArgument(format!("{to} is not a voter")));
        }
        if self.transfer.map(|(t, _)| t) == Some(to) {
            return Ok(());
        }
        self.transfer = Some((to, self.now + self.cfg.election_timeout));
        // The target may campaign past its voters' leases; no more lease reads in this term.
        self.lease_disabled = true;
        self.lease_until = 0;
        if self.progress[&to].matched == self.log.last_index() {
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_append(to);
        }
        Ok(())
    }

    /// Sets (or clears) the preferred leader; a leader hands over to it once it is caught up.
    pub fn set_preferred_leader(&mut self, id: Option<NodeId>) {
        self.preferred = id;
    }

    /// The host made `(index, term)` and everything before it durable.
    pub fn on_persisted(&mut self, index: Index, term: Term) {
        if let Some(pos) = self
            .unpersisted
            .iter()
            .position(|(p, _)| *p == (index, term))
        {
            for (_, t) in self.unpersisted.drain(..=pos) {
                self.durable_term = self.durable_term.max(t);
            }
            if self.role == Role::Leader && self.durable_term >= self.term {
                let held: Vec<Message> = std::mem::take(&mut self.persisted_msgs);
                self.msgs.extend(held);
            }
        }
        self.log.stable_to(index, term);
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// The host applied committed entries up to `index`.
    pub fn on_applied(&mut self, index: Index) {
        let index = index.min(self.log.apply_sent);
        if index > self.log.applied {
            self.log.applied = index;
            self.events.push(Event::Applied { index });
        }
    }

    /// The host took a snapshot of its state machine at `index` (≤ applied and durable). Returns
    /// the metadata to store with it; the host may then drop log entries up to `index`.
    pub fn on_snapshot_taken(&mut self, index: Index) -> Result<SnapshotMeta, RaftError> {
        let unavailable = |why: &str| RaftError::SnapshotUnavailable {
            index,
            why: why.to_string(),
        };
        if index > self.log.applied {
            return Err(unavailable("not applied yet"));
        }
        if index > self.log.persisted {
            return Err(unavailable("not durable yet"));
        }
        if index < self.log.first_index() {
            return Err(unavailable("already compacted"));
        }
        let term = self.log.term(index).ok_or_else(|| unavailable("no term"))?;
        let membership = self.membership_at(index);
        let base = self.configs.iter().take_while(|(i, _)| *i <= index).count();
        self.configs.drain(..base);
        self.base_config = (index, membership.clone());
        Ok(SnapshotMeta {
            index,
            term,
            membership,
        })
    }

    fn membership_at(&self, index: Index) -> Membership {
        self.configs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| self.base_config.1.clone())
    }

    /// Whether [`RaftNode::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        self.hard_state() != self.last_hs
            || self.log.has_unsent()
            || !self.msgs.is_empty()
            || !self.chunks_out.is_empty()
            || !self.persisted_msgs.is_empty()
            || self.log.apply_sent < self.log.commit
            || self.reads_ready.iter().any(|r| r.index <= self.log.applied)
            || !self.events.is_empty()
    }

    /// Drains the accumulated effects. See [`Ready`] for how the host must handle them.
    pub fn ready(&mut self) -> Ready {
        let mut rd = Ready::default();
        let hs = self.hard_state();
        if hs != self.last_hs {
            debug_assert!(hs.term >= self.last_hs.term, "term went backwards");
            self.last_hs = hs.clone();
            rd.hard_state = Some(hs);
        }
        rd.snapshot_chunks = std::mem::take(&mut self.chunks_out);
        let (snap, entries) = self.log.take_unsent();
        if snap {
            rd.snapshot = self.snapshot_out.take();
        }
        rd.entries = entries;
        if rd.hard_state.is_some() || rd.snapshot.is_some() || !rd.entries.is_empty() {
            let last = self.log.last_index();
            let point = rd
                .persist_point_of_writes()
                .unwrap_or((last, self.log.term(last).unwrap_or(0)));
            rd.persist_point = Some(point);
            self.unpersisted.push_back((point, self.term));
        }
        rd.messages = std::mem::take(&mut self.msgs);
        rd.persisted_messages = std::mem::take(&mut self.persisted_msgs);
        rd.committed_entries = self.log.take_committed(self.cfg.max_apply_bytes);
        let applied = self.log.applied;
        let (done, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_ready)
            .into_iter()
            .partition(|r| r.index <= applied);
        self.reads_ready = wait;
        rd.read_states = done;
        rd.events = std::mem::take(&mut self.events);
        rd
    }

    /// Handles a message from a peer, received at `now`. Malformed or stale messages are
    /// ignored. The time matters: a vote is granted or refused against the leader lease this node
    /// promised, and hearing from a leader starts a new promise — both as of `now`.
    pub fn step(&mut self, m: Message, now: u64) {
        self.observe_time(now);
        // Terms and indexes near u64::MAX cannot occur honestly; refusing them keeps all index
        // arithmetic below free of overflow.
        if m.to != self.cfg.id
            || m.from == self.cfg.id
            || m.term >= Term::MAX / 2
            || !m.body.indexes_sane()
        {
            return;
        }
        if m.term > self.term {
            match &m.body {
                MessageBody::PreVote { .. } => {}
                MessageBody::Vote { transfer, .. } => {
                    if !transfer && self.in_lease() {
                        return;
                    }
                    self.become_follower(m.term, None);
                }
                MessageBody::PreVoteResponse { reject: false } => {}
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(m.term, Some(m.from));
                }
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            match m.body {
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    // Tell a stale leader about the newer term.
                    self.send(
                        m.from,
                        MessageBody::AppendResponse {
                            index: 0,
                            reject: true,
                            hint_index: 0,
                            hint_term: 0,
                        },
                    );
                }
                MessageBody::PreVote { .. } => {
                    self.send(m.from, MessageBody::PreVoteResponse { reject: true });
                }
                _ => {}
            }
            return;
        }
        let from = m.from;
        match m.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => {
                let grant = m.term > self.term
                    && !self.in_lease()
                    && self.log.is_up_to_date(last_index, last_term);
                let term = if grant { m.term } else { self.term };
                self.send_with_term(from, term, MessageBody::PreVoteResponse { reject: !grant });
            }
            MessageBody::Vote {
                last_index,
                last_term,
                ..
            } => {
                let can_vote =
                    self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
                let grant = can_vote && self.log.is_up_to_date(last_index, last_term);
                if grant {
                    self.vote = Some(from);
                    self.reset_election_timer();
                }
                self.send(from, MessageBody::VoteResponse { reject: !grant });
            }
            MessageBody::PreVoteResponse { reject } => {
                if self.role == Role::PreCandidate && (m.term == self.term + 1 || reject) {
                    self.poll(from, !reject);
                }
            }
            MessageBody::VoteResponse { reject } => {
                if self.role == Role::Candidate {
                    self.poll(from, !reject);
                }
            }
            MessageBody::Append { .. } => {
                self.follow(from);
                self.handle_append(m);
            }
            MessageBody::Heartbeat { commit, round } => {
                self.follow(from);
                self.log.commit_to(commit);
                self.send(from, MessageBody::HeartbeatResponse { round });
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            } => {
                self.follow(from);
                self.handle_snapshot(from, meta, offset, data, done);
            }
            MessageBody::TimeoutNow => {
                if self.role != Role::Leader && self.promotable() {
                    self.campaign(false, true);
                }
            }
            MessageBody::AppendResponse {
                index,
                reject,
                hint_index,
                hint_term,
            } => self.handle_append_response(from, index, reject, hint_index, hint_term),
            MessageBody::HeartbeatResponse { round } => self.handle_heartbeat_response(from, round),
            MessageBody::SnapshotResponse {
                snapshot_index,
                next_offset,
                installed,
                skipped,
            } => {
                self.handle_snapshot_response(from, snapshot_index, next_offset, installed, skipped)
            }
        }
    }

    // ----- shared -----

    /// Moves the node's clock forward to `now` (never back) without firing timers; every input
    /// whose meaning depends on time calls it first, so no decision is made against the time of
    /// an earlier input. Timers fire on the next [`RaftNode::tick`].
    fn observe_time(&mut self, now: u64) {
        if super::planted::active(super::planted::PlantedBug::StaleClock) {
            return;
        }
        self.now = self.now.max(now);
    }

    fn refresh_membership(&mut self) {
        let (idx, m) = self
            .configs
            .last()
            .cloned()
            .unwrap_or_else(|| self.base_config.clone());
        if idx != self.membership_index || m != self.membership {
            self.membership = m.clone();
            self.membership_index = idx;
            self.events.push(Event::MembershipChanged {
                index: idx,
                membership: m,
            });
            if self.role == Role::Leader {
                self.sync_progress();
            }
        }
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Leader traffic goes out at once (once the leader's term is durable); everything else only
    /// after the current `Ready` is durable (votes, acknowledgements and terms must survive a crash).
    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let m = Message {
            from: self.cfg.id,
            to,
            term,
            body,
        };
        if self.role == Role::Leader && self.durable_term >= self.term {
            self.msgs.push(m);
        } else {
            self.persisted_msgs.push(m);
        }
    }
}

// Last in the file, so that adding it moved no line the mutation run's results name.
#[cfg(test)]
mod input_tests;
#[cfg(test)]
mod membership_tests;
