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
    Entry, EntryKind, HardState, Index, Message, MessageBody, NodeId, Snapshot, SnapshotMeta, Term,
};
use super::progress::{Progress, ProgressState};
use super::quorum::{VoteResult, joint_index, joint_vote};
use super::ready::{Event, ReadMode, ReadState, Ready, Role};
use super::storage::Storage;

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
    heartbeat_due: u64,
    check_quorum_due: u64,
    transfer: Option<(NodeId, u64)>,
    preferred: Option<NodeId>,
    target: Option<Membership>,
    round: u64,
    round_sent: VecDeque<(u64, u64)>,
    confirmed_round: u64,
    lease_until: u64,
    lease_disabled: bool,
    reads: VecDeque<PendingRead>,
    reads_before_commit: Vec<(Vec<u8>, ReadMode)>,
    reads_ready: Vec<ReadState>,
    stash: BTreeMap<Index, Message>,
    incoming_snap: Option<(SnapshotMeta, Vec<u8>)>,
    snapshot_out: Option<Snapshot>,
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
            heartbeat_due: now,
            check_quorum_due: now,
            transfer: None,
            preferred: None,
            target: None,
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

    /// Requests a linearizable read; `ctx` comes back in a [`ReadState`] once it may be served.
    pub fn read(&mut self, ctx: Vec<u8>, mode: ReadMode) -> Result<(), RaftError> {
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

    fn start_read(&mut self, ctx: Vec<u8>, mode: ReadMode) {
        let index = self.log.commit;
        if mode == ReadMode::Lease && self.lease_valid() {
            self.reads_ready.push(ReadState { ctx, index });
            return;
        }
        let round = self.broadcast_heartbeat();
        self.reads.push_back(PendingRead { ctx, index, round });
        self.update_confirmed_round();
    }

    fn lease_valid(&self) -> bool {
        self.cfg.lease_reads && !self.lease_disabled && self.now < self.lease_until
    }

    /// Hands leadership to `to` once its log matches (TimeoutNow).
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), RaftError> {
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

    /// Handles a message from a peer. Malformed or stale messages are ignored.
    pub fn step(&mut self, m: Message) {
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

    // ----- roles -----

    fn rand_timeout(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        self.cfg.election_timeout + z % self.cfg.election_timeout
    }

    fn reset_election_timer(&mut self) {
        self.election_deadline = self.now + self.rand_timeout();
    }

    /// May campaign: a voter of the latest configuration, or — while that configuration is not
    /// known committed — of the one before it. (A leader removed by C_new that crashed before C_new
    /// committed may hold the only log that can win; it must be able to finish the change.)
    fn promotable(&self) -> bool {
        let id = self.cfg.id;
        if self.membership.is_voter(id) {
            return true;
        }
        if self.membership_index <= self.log.commit {
            return false;
        }
        let prev = match self.configs.len() {
            0 => return false,
            1 => &self.base_config.1,
            n => &self.configs[n - 2].1,
        };
        prev.is_voter(id)
    }

    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && (self.role == Role::Leader
                || self.now < self.leader_contact + self.cfg.election_timeout)
    }

    fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.events.push(Event::RoleChanged {
                role,
                term: self.term,
            });
        }
    }

    fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.events.push(Event::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(self.term, Some(leader));
        }
        self.leader_contact = self.now;
        self.reset_election_timer();
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(term >= self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.stash.clear();
            self.incoming_snap = None;
        }
        if self.role == Role::Leader {
            for r in self.reads.drain(..) {
                self.events.push(Event::ReadDropped { ctx: r.ctx });
            }
            for (ctx, _) in self.reads_before_commit.drain(..) {
                self.events.push(Event::ReadDropped { ctx });
            }
            self.progress.clear();
            self.transfer = None;
            self.target = None;
            self.lease_until = 0;
        }
        self.set_role(Role::Follower);
        self.set_leader(leader);
        self.reset_election_timer();
    }

    fn campaign(&mut self, pre: bool, transfer: bool) {
        let id = self.cfg.id;
        self.votes.clear();
        self.set_leader(None);
        self.reset_election_timer();
        let (term, body) = if pre {
            self.set_role(Role::PreCandidate);
            (
                self.term + 1,
                MessageBody::PreVote {
                    last_index: self.log.last_index(),
                    last_term: self.log.last_term(),
                },
            )
        } else {
            self.term += 1;
            self.vote = Some(id);
            self.stash.clear();
            self.set_role(Role::Candidate);
            (
                self.term,
                MessageBody::Vote {
                    last_index: self.log.last_index(),
                    last_term: self.log.last_term(),
                    transfer,
                },
            )
        };
        let peers: Vec<NodeId> = self
            .membership
            .voters
            .union(&self.membership.outgoing)
            .copied()
            .collect();
        for p in peers {
            if p != id {
                self.send_with_term(p, term, body.clone());
            }
        }
        self.poll(id, true);
    }

    fn poll(&mut self, from: NodeId, granted: bool) {
        self.votes.insert(from, granted);
        let votes = &self.votes;
        match joint_vote(&self.membership, &|id| votes.get(&id).copied()) {
            VoteResult::Won => {
                if self.role == Role::PreCandidate {
                    self.campaign(false, false);
                } else {
                    self.become_leader();
                }
            }
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self) {
        self.set_role(Role::Leader);
        self.set_leader(Some(self.cfg.id));
        self.transfer = None;
        self.target = None;
        self.lease_until = 0;
        self.lease_disabled = false;
        self.round_sent.clear();
        self.confirmed_round = self.round;
        self.heartbeat_due = self.now + self.cfg.heartbeat_interval;
        self.check_quorum_due = self.now + self.cfg.election_timeout;
        self.progress.clear();
        self.sync_progress();
        self.append_as_leader(vec![EntryKind::Noop]);
    }

    // ----- leader -----

    fn tick_leader(&mut self) {
        let now = self.now;
        if now >= self.check_quorum_due {
            self.check_quorum_due = now + self.cfg.election_timeout;
            if self.cfg.check_quorum {
                let id = self.cfg.id;
                let pr = &self.progress;
                let active =
                    |n: NodeId| Some(n == id || pr.get(&n).is_some_and(|p| p.recent_active));
                if joint_vote(&self.membership, &active) != VoteResult::Won {
                    self.become_follower(self.term, None);
                    return;
                }
                for p in self.progress.values_mut() {
                    p.recent_active = false;
                }
            }
        }
        if let Some((_, deadline)) = self.transfer
            && now >= deadline
        {
            self.transfer = None;
        }
        if now >= self.heartbeat_due {
            self.heartbeat_due = now + self.cfg.heartbeat_interval;
            self.broadcast_heartbeat();
            self.update_confirmed_round();
            self.check_preferred();
            self.drive_membership();
        }
        let et = self.cfg.election_timeout;
        let hb = self.cfg.heartbeat_interval;
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            let Some(pr) = self.progress.get_mut(&id) else {
                continue;
            };
            let stalled = match pr.state {
                ProgressState::Replicate => pr.inflight_len() > 0 && now >= pr.last_send + et,
                ProgressState::Probe => pr.probe_sent && now >= pr.last_send + 2 * hb,
                ProgressState::Snapshot => now >= pr.last_send + et / 2,
            };
            if stalled {
                match pr.state {
                    ProgressState::Replicate => pr.become_probe(),
                    ProgressState::Probe => pr.probe_sent = false,
                    ProgressState::Snapshot => {
                        self.send_snapshot_chunk(id);
                        continue;
                    }
                }
                self.send_append(id);
            }
        }
    }

    fn check_preferred(&mut self) {
        let Some(p) = self.preferred else { return };
        if p == self.cfg.id
            || self.transfer.is_some()
            || self.target.is_some()
            || !self.membership.voters.contains(&p)
        {
            return;
        }
        let last = self.log.last_index();
        if self
            .progress
            .get(&p)
            .is_some_and(|pr| pr.recent_active && pr.matched == last)
        {
            let _ = self.transfer_leader(p);
        }
    }

    /// Adds progress for new members and drops it for removed ones.
    fn sync_progress(&mut self) {
        let members = self.membership.members();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index() + 1;
        for id in members {
            if id != self.cfg.id {
                self.progress
                    .entry(id)
                    .or_insert_with(|| Progress::new(next, self.now));
            }
        }
        if let Some((t, _)) = self.transfer
            && !self.membership.voters.contains(&t)
        {
            self.transfer = None;
        }
    }

    fn append_as_leader(&mut self, kinds: Vec<EntryKind>) -> Index {
        let mut idx = self.log.last_index();
        let mut ents = Vec::with_capacity(kinds.len());
        let mut confs = Vec::new();
        for kind in kinds {
            idx += 1;
            if let EntryKind::Config(m) = &kind {
                confs.push((idx, m.clone()));
            }
            ents.push(Entry {
                term: self.term,
                index: idx,
                kind,
            });
        }
        self.log.append(ents);
        if !confs.is_empty() {
            self.configs.extend(confs);
            self.refresh_membership();
        }
        self.broadcast_append();
        self.maybe_commit();
        idx
    }

    fn broadcast_append(&mut self) {
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            while self.send_append(id) {}
        }
    }

    /// Sends one AppendEntries to `to` if its window allows; returns whether more may follow.
    fn send_append(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if !pr.can_send(self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes) {
            return false;
        }
        let prev = pr.next - 1;
        let state = pr.state;
        let last = self.log.last_index();
        if state == ProgressState::Replicate && pr.next > last {
            return false;
        }
        let prev_term = self.log.term(prev);
        let ents = self
            .log
            .entries(pr.next, last + 1, self.cfg.max_append_bytes);
        let (Some(prev_term), Some(ents)) = (prev_term, ents) else {
            // Needed entries are compacted: send the snapshot instead.
            self.send_snapshot_chunk(to);
            return false;
        };
        if state == ProgressState::Replicate && ents.is_empty() {
            return false;
        }
        let bytes: u64 = ents.iter().map(Entry::size).sum();
        let sent_last = ents.last().map_or(prev, |e| e.index);
        let has = !ents.is_empty();
        let now = self.now;
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.on_sent(sent_last, bytes, has, now);
        }
        let commit = self.log.commit;
        self.send(
            to,
            MessageBody::Append {
                prev_index: prev,
                prev_term,
                entries: ents,
                commit,
            },
        );
        state == ProgressState::Replicate
    }

    fn send_snapshot_chunk(&mut self, to: NodeId) {
        let meta = self.log.store.snapshot_meta();
        let now = self.now;
        let chunk = self.cfg.snapshot_chunk_bytes;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        if pr.state != ProgressState::Snapshot || pr.snap_index != meta.index {
            pr.become_snapshot(meta.index);
        }
        pr.last_send = now;
        let offset = pr.snap_offset;
        let Some((data, done)) = self.log.store.snapshot_chunk(offset, chunk) else {
            return;
        };
        self.send(
            to,
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            },
        );
    }

    /// Starts a heartbeat round; returns its number.
    fn broadcast_heartbeat(&mut self) -> u64 {
        self.round += 1;
        let round = self.round;
        self.round_sent.push_back((round, self.now));
        let commit = self.log.commit;
        let targets: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(id, p)| (*id, p.matched.min(commit)))
            .collect();
        for (id, c) in targets {
            self.send(id, MessageBody::Heartbeat { commit: c, round });
        }
        round
    }

    fn update_confirmed_round(&mut self) {
        let id = self.cfg.id;
        let round = self.round;
        let pr = &self.progress;
        let acked = |n: NodeId| {
            if n == id {
                Some(round)
            } else {
                pr.get(&n).map(|p| p.acked_round)
            }
        };
        let q = joint_index(&self.membership, &acked).min(round);
        if q <= self.confirmed_round {
            return;
        }
        self.confirmed_round = q;
        while let Some(&(r, sent)) = self.round_sent.front() {
            if r > q {
                break;
            }
            self.round_sent.pop_front();
            if r == q && !self.lease_disabled {
                self.lease_until = sent + self.cfg.election_timeout - self.cfg.max_clock_drift;
            }
        }
        while self.reads.front().is_some_and(|r| r.round <= q) {
            if let Some(r) = self.reads.pop_front() {
                self.reads_ready.push(ReadState {
                    ctx: r.ctx,
                    index: r.index,
                });
            }
        }
    }

    fn maybe_commit(&mut self) {
        let id = self.cfg.id;
        let persisted = self.log.persisted;
        let pr = &self.progress;
        let acked = |n: NodeId| {
            if n == id {
                Some(persisted)
            } else {
                pr.get(&n).map(|p| p.matched)
            }
        };
        let q = joint_index(&self.membership, &acked);
        if q == Index::MAX || q <= self.log.commit {
            return;
        }
        debug_assert!(
            q <= self.log.last_index(),
            "quorum index {q} beyond the leader's log"
        );
        // Only entries of the current term are committed by counting replicas.
        if self.log.term(q) != Some(self.term) {
            return;
        }
        self.log.commit_to(q);
        self.on_commit_advanced();
    }

    fn on_commit_advanced(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if !self.reads_before_commit.is_empty() && self.log.term(self.log.commit) == Some(self.term)
        {
            for (ctx, mode) in std::mem::take(&mut self.reads_before_commit) {
                self.start_read(ctx, mode);
            }
        }
        if self.membership_index <= self.log.commit && !self.membership.is_voter(self.cfg.id) {
            // Not in C_new and C_new is committed: step down.
            self.become_follower(self.term, None);
            return;
        }
        self.drive_membership();
    }

    /// Moves an ongoing membership change one step when the current configuration is committed.
    fn drive_membership(&mut self) {
        if self.role != Role::Leader
            || self.membership_index > self.log.commit
            || self.transfer.is_some()
        {
            return;
        }
        let cur = self.membership.clone();
        if cur.is_joint() {
            let learners = self
                .target
                .as_ref()
                .map_or(cur.learners.clone(), |t| t.learners.clone());
            let learners = learners.difference(&cur.voters).copied().collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: cur.voters,
                outgoing: BTreeSet::new(),
                learners,
            })]);
            return;
        }
        let Some(t) = self.target.clone() else { return };
        if cur.voters == t.voters && cur.learners == t.learners {
            self.target = None;
            return;
        }
        let members = cur.members();
        let missing: BTreeSet<NodeId> = t
            .voters
            .union(&t.learners)
            .filter(|n| !members.contains(n))
            .copied()
            .collect();
        if !missing.is_empty() {
            let learners = cur.learners.union(&missing).copied().collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: cur.voters,
                outgoing: BTreeSet::new(),
                learners,
            })]);
            return;
        }
        if cur.voters == t.voters {
            self.append_as_leader(vec![EntryKind::Config(t)]);
            return;
        }
        let last = self.log.last_index();
        let lag = self.cfg.catchup_lag;
        let caught_up = t.voters.difference(&cur.voters).all(|n| {
            self.progress
                .get(n)
                .is_some_and(|p| p.recent_active && p.matched + lag >= last)
        });
        if caught_up {
            let all: BTreeSet<NodeId> = t.voters.union(&cur.voters).copied().collect();
            let learners = cur
                .learners
                .union(&t.learners)
                .filter(|n| !all.contains(n))
                .copied()
                .collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: t.voters,
                outgoing: cur.voters,
                learners,
            })]);
        }
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: bool,
        hint_index: Index,
        hint_term: Term,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let hint = if reject {
            self.find_conflict_by_term(hint_index, hint_term)
        } else {
            0
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if reject {
            if pr.on_reject(index, hint) {
                self.send_append(from);
            }
            return;
        }
        if index > last {
            return; // malformed
        }
        let advanced = pr.on_success(index, now);
        if pr.state == ProgressState::Probe && pr.matched + 1 >= pr.next {
            pr.become_replicate();
        }
        let matched = pr.matched;
        if advanced {
            self.maybe_commit();
        }
        if self.role != Role::Leader {
            return;
        }
        if self.transfer.map(|(t, _)| t) == Some(from) && matched == self.log.last_index() {
            self.send(from, MessageBody::TimeoutNow);
        }
        while self.send_append(from) {}
    }

    fn find_conflict_by_term(&self, index: Index, term: Term) -> Index {
        let mut i = index.min(self.log.last_index());
        while i > 0 {
            match self.log.term(i) {
                Some(t) if t > term => i -= 1,
                _ => break,
            }
        }
        i
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if self.role != Role::Leader || round > self.round {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.acked_round = pr.acked_round.max(round);
        if pr.state == ProgressState::Probe {
            pr.probe_sent = false;
        }
        let behind = pr.matched < last;
        self.update_confirmed_round();
        if behind {
            self.send_append(from);
        }
    }

    fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: Index,
        next_offset: u64,
        installed: bool,
        skipped: bool,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if installed && snapshot_index <= last {
            pr.matched = pr.matched.max(snapshot_index);
            pr.next = pr.next.max(pr.matched + 1);
        }
        if pr.state != ProgressState::Snapshot || pr.snap_index != snapshot_index {
            return;
        }
        if installed || skipped {
            pr.become_probe();
            pr.last_send = now;
            self.maybe_commit();
            self.send_append(from);
        } else {
            pr.snap_offset = next_offset;
            self.send_snapshot_chunk(from);
        }
    }

    // ----- follower -----

    fn handle_append(&mut self, m: Message) {
        let MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } = m.body
        else {
            return;
        };
        let from = m.from;
        // Entries must be contiguous after prev_index; anything else is malformed.
        if entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.index != prev_index + 1 + i as Index)
        {
            return;
        }
        if prev_index < self.log.commit {
            self.send(
                from,
                MessageBody::AppendResponse {
                    index: self.log.commit,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            );
            return;
        }
        let last = self.log.last_index();
        // Out of order (pipelined): keep it until the gap is filled. A second copy of the same
        // message is a retransmission (the leader is probing): answer it with a hint instead.
        if prev_index > last
            && self.stash.len() < self.cfg.max_stashed_appends
            && self.stash.remove(&prev_index).is_none()
        {
            self.stash.insert(
                prev_index,
                Message {
                    from,
                    to: self.cfg.id,
                    term: m.term,
                    body: MessageBody::Append {
                        prev_index,
                        prev_term,
                        entries,
                        commit,
                    },
                },
            );
            return;
        }
        let confs: Vec<(Index, Membership)> = entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Config(c) => Some((e.index, c.clone())),
                _ => None,
            })
            .collect();
        match self.log.maybe_append(prev_index, prev_term, entries) {
            Some((last_new, truncated)) => {
                let from_idx = truncated.unwrap_or(last + 1);
                if truncated.is_some() {
                    self.configs.retain(|(i, _)| *i < from_idx);
                }
                let new_confs: Vec<_> = confs.into_iter().filter(|(i, _)| *i >= from_idx).collect();
                if truncated.is_some() || !new_confs.is_empty() {
                    self.configs.extend(new_confs);
                    self.refresh_membership();
                }
                self.log.commit_to(commit.min(last_new));
                self.send(
                    from,
                    MessageBody::AppendResponse {
                        index: last_new,
                        reject: false,
                        hint_index: 0,
                        hint_term: 0,
                    },
                );
                // Process stashed successors that now fit.
                let new_last = self.log.last_index();
                let ready: Vec<Index> = self.stash.range(..=new_last).map(|(k, _)| *k).collect();
                for k in ready {
                    if let Some(sm) = self.stash.remove(&k) {
                        self.handle_append(sm);
                    }
                }
            }
            None => {
                let mut hint_index = prev_index.min(self.log.last_index());
                while hint_index > 0 {
                    match self.log.term(hint_index) {
                        Some(t) if t > prev_term => hint_index -= 1,
                        _ => break,
                    }
                }
                let hint_term = self.log.term(hint_index).unwrap_or(0);
                self.send(
                    from,
                    MessageBody::AppendResponse {
                        index: prev_index,
                        reject: true,
                        hint_index,
                        hint_term,
                    },
                );
            }
        }
    }

    fn handle_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        let respond =
            |node: &mut Self, next_offset: u64, installed: bool, skipped: bool, index: Index| {
                node.send(
                    from,
                    MessageBody::SnapshotResponse {
                        snapshot_index: index,
                        next_offset,
                        installed,
                        skipped,
                    },
                );
            };
        let index = meta.index;
        if index <= self.log.commit || self.log.match_term(meta.index, meta.term) {
            // Already have it: keep the log, probe instead.
            self.log.commit_to(index);
            self.incoming_snap = None;
            respond(self, 0, false, true, index);
            return;
        }
        if !meta.membership.is_valid() {
            return;
        }
        let buf_len = match &mut self.incoming_snap {
            Some((m, buf)) if *m == meta && buf.len() as u64 == offset => {
                buf.extend_from_slice(&data);
                buf.len() as u64
            }
            _ if offset == 0 => {
                self.incoming_snap = Some((meta.clone(), data));
                self.incoming_snap
                    .as_ref()
                    .map_or(0, |(_, b)| b.len() as u64)
            }
            Some((m, buf)) if *m == meta => {
                let l = buf.len() as u64;
                respond(self, l, false, false, index);
                return;
            }
            _ => {
                respond(self, 0, false, false, index);
                return;
            }
        };
        if !done {
            respond(self, buf_len, false, false, index);
            return;
        }
        let Some((meta, data)) = self.incoming_snap.take() else {
            return;
        };
        self.log.restore(meta.clone());
        self.stash.clear();
        self.base_config = (meta.index, meta.membership.clone());
        self.configs.clear();
        self.refresh_membership();
        self.snapshot_out = Some(Snapshot { meta, data });
        respond(self, buf_len, true, false, index);
    }

    // ----- shared -----

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::storage::MemStorage;

    fn node(id: NodeId, voters: &[NodeId]) -> RaftNode<MemStorage> {
        let cfg = Config {
            id,
            ..Config::default()
        };
        RaftNode::new(
            cfg,
            MemStorage::new(Membership::new(voters.iter().copied())),
            0,
            0,
        )
        .unwrap()
    }

    /// Persists everything a `Ready` asks for at once and returns the messages.
    fn flush(n: &mut RaftNode<MemStorage>) -> Vec<Message> {
        let mut out = Vec::new();
        while n.has_ready() {
            let rd = n.ready();
            if let Some(s) = rd.snapshot.clone() {
                n.storage_mut().install_snapshot(s);
            }
            n.storage_mut().append(&rd.entries);
            if let Some(hs) = rd.hard_state.clone() {
                n.storage_mut().hard_state = hs;
            }
            if let Some((i, t)) = rd.persist_point() {
                n.on_persisted(i, t);
            }
            if let Some(e) = rd.committed_entries.last() {
                n.on_applied(e.index);
            }
            out.extend(rd.messages);
            out.extend(rd.persisted_messages);
        }
        out
    }

    fn elect(n: &mut RaftNode<MemStorage>, peers: &[NodeId]) {
        n.tick(5000);
        let msgs = flush(n);
        // Grant every (pre-)vote request.
        for m in msgs {
            let body = match m.body {
                MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { reject: false },
                _ => continue,
            };
            n.step(Message {
                from: m.to,
                to: m.from,
                term: m.term,
                body,
            });
        }
        for m in flush(n) {
            if let MessageBody::Vote { .. } = m.body {
                n.step(Message {
                    from: m.to,
                    to: m.from,
                    term: m.term,
                    body: MessageBody::VoteResponse { reject: false },
                });
            }
        }
        assert_eq!(n.role(), Role::Leader, "peers {peers:?}");
        flush(n);
    }

    #[test]
    fn vote_is_refused_to_a_candidate_with_a_stale_log() {
        let mut n = node(2, &[1, 2, 3]);
        let mut m = node(1, &[1, 2, 3]);
        elect(&mut m, &[2, 3]);
        // Node 2 gets the leader's no-op; a candidate that lacks it must not get the vote.
        for msg in flush(&mut m).into_iter().chain(std::iter::once(Message {
            from: 1,
            to: 2,
            term: m.term(),
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: m.entries(1, 2).unwrap(),
                commit: 0,
            },
        })) {
            if msg.to == 2 {
                n.step(msg);
            }
        }
        flush(&mut n);
        n.tick(10_000);
        n.step(Message {
            from: 3,
            to: 2,
            term: 9,
            body: MessageBody::Vote {
                last_index: 0,
                last_term: 0,
                transfer: false,
            },
        });
        let replies = flush(&mut n);
        assert!(
            replies
                .iter()
                .any(|r| r.to == 3 && r.body == MessageBody::VoteResponse { reject: true })
        );
        assert_eq!(n.status().vote, None);
    }

    #[test]
    fn leader_commits_only_after_its_own_copy_is_durable() {
        let mut n = node(1, &[1]);
        n.tick(5000);
        let rd = n.ready();
        assert_eq!(n.role(), Role::Leader);
        assert_eq!(rd.entries.len(), 1, "the term's no-op");
        assert_eq!(n.status().commit, 0, "not durable yet");
        n.storage_mut().append(&rd.entries);
        let (i, t) = rd.persist_point().unwrap();
        n.on_persisted(i, t);
        assert_eq!(n.status().commit, 1);
    }

    #[test]
    fn garbage_messages_never_panic() {
        let mut rng = 7u64;
        let mut next = move || {
            rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^ (z >> 27)
        };
        for round in 0..2 {
            let mut n = node(1, &[1, 2, 3]);
            if round == 1 {
                elect(&mut n, &[2, 3]);
            }
            for step in 0..20_000u64 {
                let big = |x: u64| match x % 4 {
                    0 => x,
                    1 => u64::MAX - x % 3,
                    _ => x % 8,
                };
                let (a, b, c) = (big(next()), big(next()), big(next()));
                let entries = (0..next() % 3)
                    .map(|k| Entry {
                        term: b,
                        index: a.wrapping_add(1 + k),
                        kind: EntryKind::Noop,
                    })
                    .collect();
                let body = match next() % 12 {
                    0 => MessageBody::PreVote {
                        last_index: a,
                        last_term: b,
                    },
                    1 => MessageBody::PreVoteResponse { reject: a % 2 == 0 },
                    2 => MessageBody::Vote {
                        last_index: a,
                        last_term: b,
                        transfer: c % 2 == 0,
                    },
                    3 => MessageBody::VoteResponse { reject: a % 2 == 0 },
                    4 => MessageBody::Append {
                        prev_index: a,
                        prev_term: b,
                        entries,
                        commit: c,
                    },
                    5 => MessageBody::AppendResponse {
                        index: a,
                        reject: c % 2 == 0,
                        hint_index: b,
                        hint_term: c,
                    },
                    6 => MessageBody::Heartbeat {
                        commit: a,
                        round: b,
                    },
                    7 => MessageBody::HeartbeatResponse { round: a },
                    8 => MessageBody::InstallSnapshot {
                        meta: SnapshotMeta {
                            index: a,
                            term: b,
                            membership: Membership::new([1, 2]),
                        },
                        offset: c,
                        data: vec![1, 2, 3],
                        done: c % 2 == 0,
                    },
                    9 => MessageBody::SnapshotResponse {
                        snapshot_index: a,
                        next_offset: b,
                        installed: c % 2 == 0,
                        skipped: c % 3 == 0,
                    },
                    10 => MessageBody::TimeoutNow,
                    _ => MessageBody::Heartbeat {
                        commit: 0,
                        round: 0,
                    },
                };
                let from = 1 + next() % 4;
                let term = n.term().saturating_add(next() % 3);
                let term = term.saturating_sub(next() % 2);
                n.step(Message {
                    from,
                    to: 1,
                    term,
                    body,
                });
                n.tick(5000 + step * 7);
                flush(&mut n);
            }
        }
    }
}
