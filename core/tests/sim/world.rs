//! The simulated world: nodes driven exactly like a host would drive the sans-IO core, a lossy
//! network, disks that lose un-fsynced writes on crash, skewed clocks, clients and a nemesis.
//! Every step ends with the safety checks of [`super::checks`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use journalkeeper::raft::{
    Config, Entry, EntryKind, Event, Index, MemStorage, Membership, Message, MessageBody, NodeId,
    RaftNode, ReadMode, Role, Snapshot,
};

use super::checks::Checker;
use super::disk::{Batch, Disk};
use super::rng::Rng;
use crate::support::linearizability::{KvInput, KvOutput, Operation};
use stall::{NOT_SUBMITTED, Queued};

#[path = "stall.rs"]
mod stall;

/// Simulated milliseconds per step.
pub const STEP_MS: u64 = 5;
const TRACE_LEN: usize = 400;
/// A node handed no input settles within a few Readys; this many in a row is a loop in the core.
const READY_LOOP_BOUND: usize = 1_000;

pub struct SimNode {
    pub id: NodeId,
    pub raft: Option<RaftNode<MemStorage>>,
    /// Durable state while crashed.
    down_store: Option<MemStorage>,
    disk: Disk,
    pub kv: BTreeMap<u64, u64>,
    pub applied: Index,
    /// The incoming snapshot assembled from the core's chunks (lost on a crash).
    receiving: Vec<u8>,
    clock_offset: u64,
    drift_ppm: i64,
    /// While stalled: the world time it resumes at; its input waits in `inbox`.
    stalled_until: Option<u64>,
    inbox: Vec<Queued>,
}

impl SimNode {
    /// This node's clock at world time `now`.
    pub fn local_time(&self, now: u64) -> u64 {
        let skew = (now as i128 * self.drift_ppm as i128 / 1_000_000) as i64;
        (self.clock_offset as i64 + now as i64 + skew) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Put {
        key: u64,
        value: u64,
    },
    Cas {
        key: u64,
        expected: Option<u64>,
        new: u64,
    },
    Get {
        key: u64,
    },
}

struct PendingOp {
    hist: usize,
    node: NodeId,
    /// Index of the proposed entry (writes) or read context id (reads).
    index: Index,
    op_id: u64,
    kind: OpKind,
    deadline: u64,
}

struct Client {
    busy: Option<PendingOp>,
    leader_hint: Option<NodeId>,
}

/// A recorded history operation (completed later or left pending).
struct HistOp {
    client: u64,
    input: KvInput,
    output: Option<KvOutput>,
    call: u64,
    ret: Option<u64>,
    dropped: bool,
}

struct InFlight {
    at: u64,
    seq: u64,
    msg: Message,
}

pub struct World {
    pub seed: u64,
    rng: Rng,
    pub now: u64,
    pub nodes: Vec<SimNode>,
    net: Vec<InFlight>,
    seq: u64,
    /// blocked[from][to]
    blocked: [[bool; 8]; 8],
    loss: f64,
    dup: f64,
    max_delay: u64,
    /// Per-step probability of crashing the current leader.
    leader_crash: f64,
    /// A client gives up on an operation after this long (a write then stays pending).
    op_timeout: u64,
    auto_clients: bool,
    stamp_seq: u64,
    clients: Vec<Client>,
    hist: Vec<HistOp>,
    next_op: u64,
    pub trace: VecDeque<String>,
    pub verbose: bool,
    pub checker: Checker,
    cfg: Config,
    pub liveness_probe: Option<(NodeId, Index, u64)>,
    pub steps: u64,
}

fn encode_op(client: u64, op_id: u64, kind: OpKind) -> Vec<u8> {
    let (tag, key, a, b) = match kind {
        OpKind::Put { key, value } => (1u64, key, value, 0),
        OpKind::Cas { key, expected, new } => (2, key, expected.map_or(u64::MAX, |v| v), new),
        OpKind::Get { key } => (3, key, 0, 0),
    };
    [client, op_id, tag, key, a, b]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

fn decode_op(d: &[u8]) -> Option<(u64, u64, OpKind)> {
    if d.len() != 48 {
        return None;
    }
    let w = |i: usize| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let kind = match w(2) {
        1 => OpKind::Put {
            key: w(3),
            value: w(4),
        },
        2 => OpKind::Cas {
            key: w(3),
            expected: (w(4) != u64::MAX).then_some(w(4)),
            new: w(5),
        },
        _ => return None,
    };
    Some((w(0), w(1), kind))
}

fn body_name(b: &MessageBody) -> String {
    match b {
        MessageBody::PreVote {
            last_index,
            last_term,
        } => format!("PreVote(last {last_index}/{last_term})"),
        MessageBody::PreVoteResponse { reject } => format!("PreVoteResp(reject={reject})"),
        MessageBody::Vote {
            last_index,
            last_term,
            transfer,
        } => format!("Vote(last {last_index}/{last_term}, transfer={transfer})"),
        MessageBody::VoteResponse { reject } => format!("VoteResp(reject={reject})"),
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } => format!(
            "Append(prev {prev_index}/{prev_term}, {} entries, commit {commit})",
            entries.len()
        ),
        MessageBody::AppendResponse {
            index,
            reject,
            hint_index,
            hint_term,
        } => format!("AppendResp(index {index}, reject={reject}, hint {hint_index}/{hint_term})"),
        MessageBody::Heartbeat { commit, round } => {
            format!("Heartbeat(commit {commit}, round {round})")
        }
        MessageBody::HeartbeatResponse { round } => format!("HeartbeatResp(round {round})"),
        MessageBody::InstallSnapshot {
            meta, offset, done, ..
        } => {
            format!(
                "InstallSnapshot(index {}, offset {offset}, done={done})",
                meta.index
            )
        }
        MessageBody::SnapshotResponse {
            snapshot_index,
            next_offset,
            installed,
            skipped,
        } => format!(
            "SnapshotResp({snapshot_index}, next {next_offset}, installed={installed}, skipped={skipped})"
        ),
        MessageBody::TimeoutNow => "TimeoutNow".into(),
    }
}

fn entry_hash(e: &Entry) -> u64 {
    let bytes = postcard::to_allocvec(&e.kind).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl World {
    pub fn new(seed: u64) -> Self {
        Self::with_setup(seed, None)
    }

    /// A world for a scripted scenario: `nodes` voters, quiet network (1–3 ms, no loss), no
    /// clients, one entry per AppendEntries and one in flight.
    pub fn scripted(seed: u64, nodes: usize) -> Self {
        let mut w = Self::with_setup(seed, Some(nodes));
        w.clients.clear();
        w.loss = 0.0;
        w.dup = 0.0;
        w.max_delay = 3;
        w.leader_crash = 0.0;
        w
    }

    fn with_setup(seed: u64, fixed: Option<usize>) -> Self {
        let mut rng = Rng::new(seed);
        let n = rng.range(1, 8) as usize;
        let voters = match n {
            1 | 2 => n,
            _ => [1, 3, 3, n, n][rng.range(0, 5) as usize].min(n),
        };
        let (n, voters) = fixed.map_or((n, voters), |f| (f, f));
        let mut cfg = Config {
            id: 1,
            seed,
            heartbeat_interval: 50,
            election_timeout: 300,
            max_clock_drift: 90,
            pre_vote: rng.chance(0.8),
            check_quorum: true,
            lease_reads: true,
            max_inflight_msgs: [1, 2, 4, 8][rng.range(0, 4) as usize],
            max_inflight_bytes: 2048,
            max_append_bytes: [70, 150, 400][rng.range(0, 3) as usize],
            max_apply_bytes: 4096,
            snapshot_chunk_bytes: 64,
            max_stashed_appends: 8,
            max_pending_reads: 64,
            catchup_lag: 4,
        };
        if fixed.is_some() {
            cfg.max_append_bytes = 70;
            cfg.max_inflight_msgs = 1;
        }
        // How late the writer's durability reports reach the core, at most.
        let report_delay = [0, 5, 20, 60][rng.range(0, 4) as usize];
        let initial = Membership::new(1..=voters as NodeId);
        let mut nodes = Vec::new();
        for i in 1..=n as NodeId {
            let m = if i as usize <= voters {
                initial.clone()
            } else {
                Membership::default()
            };
            // ±13%: two clocks drift apart by at most 26% of an election timeout (78 ms of 300),
            // inside the lease's 90 ms margin — and far outside a lease without the margin. Clocks
            // at either extreme are common, so a slow leader with fast followers is too.
            let drift_ppm = match rng.range(0, 3) {
                0 => -130_000,
                1 => 130_000,
                _ => rng.range(0, 260_001) as i64 - 130_000,
            };
            let clock_offset = rng.range(0, 1_000_000);
            let mut node = SimNode {
                id: i,
                raft: None,
                down_store: Some(MemStorage::new(m)),
                disk: Disk::new(report_delay),
                kv: BTreeMap::new(),
                applied: 0,
                receiving: Vec::new(),
                clock_offset,
                drift_ppm,
                stalled_until: None,
                inbox: Vec::new(),
            };
            let c = Config {
                id: i,
                ..cfg.clone()
            };
            let store = node.down_store.take().unwrap_or_default();
            node.raft = Some(RaftNode::new(c, store, 0, node.local_time(0)).expect("config"));
            nodes.push(node);
        }
        let loss = [0.0, 0.0, 0.01, 0.05][rng.range(0, 4) as usize];
        let dup = [0.0, 0.02][rng.range(0, 2) as usize];
        let max_delay = [3, 10, 30, 80][rng.range(0, 4) as usize];
        let leader_crash = [0.0, 0.002, 0.01][rng.range(0, 3) as usize];
        let op_timeout = [400, 1000, 3000][rng.range(0, 3) as usize];
        let clients = (0..rng.range(2, 7))
            .map(|_| Client {
                busy: None,
                leader_hint: None,
            })
            .collect();
        Self {
            seed,
            rng,
            now: 0,
            nodes,
            net: Vec::new(),
            seq: 0,
            blocked: [[false; 8]; 8],
            loss,
            dup,
            max_delay,
            leader_crash,
            op_timeout,
            auto_clients: true,
            stamp_seq: 0,
            clients,
            hist: Vec::new(),
            next_op: 1,
            trace: VecDeque::new(),
            verbose: false,
            checker: Checker::default(),
            cfg,
            liveness_probe: None,
            steps: 0,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} nodes, voters {:?}, pre_vote={}, loss={}, dup={}, max_delay={}ms, report_delay={}ms, leader_crash={}, {} clients",
            self.nodes.len(),
            self.nodes[0]
                .raft
                .as_ref()
                .map(|r| r.membership().voters.clone())
                .unwrap_or_default(),
            self.cfg.pre_vote,
            self.loss,
            self.dup,
            self.max_delay,
            self.nodes[0].disk.max_report_delay(),
            self.leader_crash,
            self.clients.len()
        )
    }

    pub fn log(&mut self, s: impl FnOnce() -> String) {
        let line = format!("[{:>6}ms] {}", self.now, s());
        if self.verbose {
            println!("{line}");
        }
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    // ----- one step -----

    /// Advances one step; `chaos` enables faults and admin operations.
    /// History timestamp: simulated time refined by the order of events within a step, so that
    /// an operation invoked after another returned (in the same step) is not taken as concurrent.
    fn stamp(&mut self) -> u64 {
        self.stamp_seq += 1;
        self.now * 1_000_000 + self.stamp_seq
    }

    pub fn step(&mut self, chaos: bool) -> Result<(), String> {
        self.now += STEP_MS;
        self.stamp_seq = 0;
        self.steps += 1;
        if chaos {
            self.nemesis();
        }
        self.resume_due(false)?;
        self.deliver();
        self.fsyncs()?;
        for i in 0..self.nodes.len() {
            if self.is_stalled(i) {
                continue;
            }
            let t = self.nodes[i].local_time(self.now);
            if let Some(r) = self.nodes[i].raft.as_mut() {
                r.tick(t);
            }
        }
        self.clients_act(chaos);
        for i in 0..self.nodes.len() {
            if !self.is_stalled(i) {
                self.drain_ready(i)?;
            }
        }
        self.check()
    }

    fn deliver(&mut self) {
        let now = self.now;
        let mut due: Vec<InFlight> = Vec::new();
        let mut i = 0;
        while i < self.net.len() {
            if self.net[i].at <= now {
                due.push(self.net.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|m| (m.at, m.seq));
        for f in due {
            let (from, to) = (f.msg.from as usize, f.msg.to as usize);
            if to == 0 || to > self.nodes.len() || self.blocked[from][to] {
                continue;
            }
            if self.nodes[to - 1].raft.is_none() {
                continue;
            }
            if self.is_stalled(to - 1) {
                self.nodes[to - 1].inbox.push(Queued::Peer(f.msg));
                continue;
            }
            self.step_node(to - 1, f.msg);
        }
    }

    /// Node index `i` handles a peer message at its current local time.
    fn step_node(&mut self, i: usize, m: Message) {
        let line = format!("{} -> {} t{} {}", m.from, m.to, m.term, body_name(&m.body));
        self.log(|| line);
        let t = self.nodes[i].local_time(self.now);
        if let Some(r) = self.nodes[i].raft.as_mut() {
            r.step(m, t);
        }
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if self.rng.chance(self.loss) {
                continue;
            }
            let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.now + self.rng.range(1, self.max_delay + 1);
                self.seq += 1;
                self.net.push(InFlight {
                    at,
                    seq: self.seq,
                    msg: m.clone(),
                });
            }
        }
    }

    /// Completes due fsyncs (writes become durable and are checked for log matching) and
    /// delivers due durability reports: the core is told, and the messages that waited are sent.
    fn fsyncs(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.is_stalled(i) {
                // The whole process waits: no fsync completes, no report is handled.
                continue;
            }
            let node = &mut self.nodes[i];
            let Some(r) = node.raft.as_mut() else {
                continue;
            };
            let (id, checker) = (node.id, &mut self.checker);
            node.disk
                .sync(self.now, &mut self.rng, r.storage_mut(), |e| {
                    checker.saw_entry(id, e.index, e.term, entry_hash(e))
                })?;
            let mut msgs = Vec::new();
            for rep in node.disk.due_reports(self.now) {
                if let Some((idx, term)) = rep.point {
                    r.on_persisted(idx, term);
                }
                msgs.extend(rep.msgs);
            }
            self.send(msgs);
        }
        Ok(())
    }

    fn drain_ready(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..READY_LOOP_BOUND {
            let Some(r) = self.nodes[i].raft.as_mut() else {
                return Ok(());
            };
            if !r.has_ready() {
                return Ok(());
            }
            let rd = r.ready();
            let id = self.nodes[i].id;
            let point = rd.persist_point();
            for c in &rd.snapshot_chunks {
                if !c.assemble_into(&mut self.nodes[i].receiving) {
                    return Err(format!(
                        "n{id}: snapshot chunk at {} out of order",
                        c.offset
                    ));
                }
            }
            let snap = rd.snapshot.map(|meta| Snapshot {
                meta,
                data: std::mem::take(&mut self.nodes[i].receiving),
            });
            if let Some(s) = &snap {
                self.nodes[i].kv = postcard::from_bytes(&s.data).unwrap_or_default();
                self.nodes[i].applied = s.meta.index;
                let idx = s.meta.index;
                self.log(|| format!("n{id} installs snapshot at {idx}"));
            }
            let writes = rd.hard_state.is_some() || snap.is_some() || !rd.entries.is_empty();
            if writes || !rd.persisted_messages.is_empty() {
                let b = Batch {
                    hs: rd.hard_state,
                    snap,
                    entries: rd.entries,
                    msgs: rd.persisted_messages,
                    point,
                };
                self.nodes[i].disk.write(b, self.now, &mut self.rng);
            }
            self.send(rd.messages);
            for e in &rd.committed_entries {
                self.apply(i, e)?;
            }
            if let Some(e) = rd.committed_entries.last() {
                let idx = e.index;
                if let Some(r) = self.nodes[i].raft.as_mut() {
                    r.on_applied(idx);
                }
            }
            for rs in rd.read_states {
                self.complete_read(i, &rs.ctx);
            }
            for ev in rd.events {
                match ev {
                    Event::ReadDropped { ctx } => self.drop_read(i, &ctx),
                    Event::RoleChanged { role, term } => {
                        self.log(|| format!("n{id} becomes {role:?} in term {term}"))
                    }
                    Event::MembershipChanged { index, membership } => {
                        self.log(|| format!("n{id} membership at {index}: {membership:?}"))
                    }
                    _ => {}
                }
            }
        }
        Err(format!(
            "progress: n{} still has a Ready after {READY_LOOP_BOUND} in a row without new input",
            self.nodes[i].id
        ))
    }

    fn apply(&mut self, i: usize, e: &Entry) -> Result<(), String> {
        let id = self.nodes[i].id;
        let node_term = self.nodes[i].raft.as_ref().map_or(0, |r| r.term());
        self.checker
            .applied(id, e.index, e.term, entry_hash(e), node_term)?;
        let node = &mut self.nodes[i];
        if e.index != node.applied + 1 {
            return Err(format!("n{id} applies {} after {}", e.index, node.applied));
        }
        node.applied = e.index;
        let EntryKind::Normal(d) = &e.kind else {
            return Ok(());
        };
        let Some((client, op_id, kind)) = decode_op(d) else {
            return Ok(());
        };
        let out = match kind {
            OpKind::Put { key, value } => {
                node.kv.insert(key, value);
                KvOutput::Put
            }
            OpKind::Cas { key, expected, new } => {
                let ok = node.kv.get(&key).copied() == expected;
                if ok {
                    node.kv.insert(key, new);
                }
                KvOutput::Cas(ok)
            }
            OpKind::Get { .. } => return Ok(()),
        };
        if let Some((n, idx, _)) = self.liveness_probe
            && n == id
            && idx == e.index
            && client == u64::MAX
        {
            self.liveness_probe = Some((n, idx, self.now));
        }
        // Complete the client's write if this node proposed it at this index.
        let now = self.stamp();
        for (c, cl) in self.clients.iter_mut().enumerate() {
            let Some(p) = &cl.busy else { continue };
            if p.node == id && p.index == e.index && !matches!(p.kind, OpKind::Get { .. }) {
                let h = p.hist;
                if c as u64 == client && p.op_id == op_id {
                    self.hist[h].output = Some(out);
                    self.hist[h].ret = Some(now);
                } else {
                    // Another entry took the index: this proposal can never commit.
                    self.hist[h].dropped = true;
                }
                cl.busy = None;
            }
        }
        Ok(())
    }

    fn complete_read(&mut self, i: usize, ctx: &[u8]) {
        let id = self.nodes[i].id;
        let Ok(b) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let op_id = u64::from_le_bytes(b);
        let now = self.stamp();
        for cl in self.clients.iter_mut() {
            let Some(p) = &cl.busy else { continue };
            if p.node == id && p.op_id == op_id {
                if let OpKind::Get { key } = p.kind {
                    let v = self.nodes[i].kv.get(&key).copied();
                    self.hist[p.hist].output = Some(KvOutput::Get(v));
                    self.hist[p.hist].ret = Some(now);
                }
                cl.busy = None;
            }
        }
    }

    fn drop_read(&mut self, i: usize, ctx: &[u8]) {
        let id = self.nodes[i].id;
        let Ok(b) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let op_id = u64::from_le_bytes(b);
        for cl in self.clients.iter_mut() {
            if cl
                .busy
                .as_ref()
                .is_some_and(|p| p.node == id && p.op_id == op_id)
                && let Some(p) = cl.busy.take()
            {
                self.hist[p.hist].dropped = true;
            }
        }
    }

    // ----- clients -----

    fn pick_node(&mut self, c: usize) -> usize {
        if let Some(h) = self.clients[c].leader_hint
            && self.rng.chance(0.9)
        {
            return h as usize - 1;
        }
        self.rng.range(0, self.nodes.len() as u64) as usize
    }

    fn clients_act(&mut self, chaos: bool) {
        let now = self.now;
        for c in 0..self.clients.len() {
            if let Some(p) = &self.clients[c].busy {
                if now >= p.deadline {
                    let h = p.hist;
                    if matches!(p.kind, OpKind::Get { .. }) {
                        self.hist[h].dropped = true;
                    }
                    // A timed-out write stays pending: it may or may not have taken effect.
                    self.clients[c].busy = None;
                    self.clients[c].leader_hint = None;
                }
                continue;
            }
            if !self.auto_clients || !self.rng.chance(if chaos { 0.2 } else { 0.1 }) {
                continue;
            }
            let n = self.pick_node(c);
            if self.nodes[n].raft.is_none() {
                self.clients[c].leader_hint = None;
                continue;
            }
            let key = self.rng.range(0, 3);
            let op_id = self.next_op;
            self.next_op += 1;
            let kind = match self.rng.range(0, 10) {
                0..=3 => OpKind::Put { key, value: op_id },
                4..=5 => OpKind::Cas {
                    key,
                    expected: if self.rng.chance(0.2) {
                        None
                    } else {
                        self.nodes[n].kv.get(&key).copied()
                    },
                    new: op_id,
                },
                _ => OpKind::Get { key },
            };
            let mode = if self.rng.chance(0.5) {
                ReadMode::Lease
            } else {
                ReadMode::ReadIndex
            };
            self.invoke(c, n, op_id, kind, mode);
        }
    }

    /// Client `c` invokes `kind` at node index `n`; returns whether the node accepted it.
    pub fn invoke(&mut self, c: usize, n: usize, op_id: u64, kind: OpKind, mode: ReadMode) -> bool {
        let now = self.now;
        if self.nodes[n].raft.is_none() {
            return false;
        }
        let stalled = self.is_stalled(n);
        let res = if stalled {
            self.nodes[n].inbox.push(Queued::Client {
                client: c,
                op_id,
                kind,
                mode,
            });
            Ok(NOT_SUBMITTED)
        } else {
            self.submit(c, n, op_id, kind, mode)
        };
        let input = match kind {
            OpKind::Put { key, value } => KvInput::Put { key, value },
            OpKind::Cas { key, expected, new } => KvInput::Cas { key, expected, new },
            OpKind::Get { key } => KvInput::Get { key },
        };
        let index = match res {
            Ok(index) => index,
            Err(hint) => {
                self.clients[c].leader_hint = hint;
                return false;
            }
        };
        let call = self.stamp();
        self.hist.push(HistOp {
            client: c as u64,
            input,
            output: None,
            call,
            ret: None,
            dropped: false,
        });
        self.clients[c].leader_hint = Some(n as NodeId + 1);
        self.clients[c].busy = Some(PendingOp {
            hist: self.hist.len() - 1,
            node: n as NodeId + 1,
            index,
            op_id,
            kind,
            deadline: now + self.op_timeout,
        });
        self.log(|| {
            format!(
                "client {c} invokes {kind:?} at n{} (index {index}, op {op_id})",
                n + 1
            )
        });
        true
    }

    /// Scripted scenarios: adds `n` clients that act only through [`World::invoke`].
    pub fn scripted_clients(&mut self, n: usize) {
        self.auto_clients = false;
        self.clients = (0..n)
            .map(|_| Client {
                busy: None,
                leader_hint: None,
            })
            .collect();
    }

    pub fn client_idle(&self, c: usize) -> bool {
        self.clients[c].busy.is_none()
    }

    pub fn next_op_id(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op
    }

    // ----- faults and admin -----

    fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].raft.is_some())
            .collect()
    }

    /// Cuts (or restores) both directions between node indexes `a` and `b`.
    pub fn block_pair(&mut self, a: usize, b: usize, cut: bool) {
        self.blocked[a + 1][b + 1] = cut;
        self.blocked[b + 1][a + 1] = cut;
    }

    /// Cuts (or restores) every link to and from node index `i`.
    pub fn isolate(&mut self, i: usize, cut: bool) {
        for j in 1..8 {
            if j != i + 1 {
                self.blocked[i + 1][j] = cut;
                self.blocked[j][i + 1] = cut;
            }
        }
        let id = i + 1;
        self.log(|| format!("{} n{id}", if cut { "ISOLATE" } else { "RECONNECT" }));
    }

    /// Holds back (or releases) node index `i`'s durability reports (scripted scenarios).
    pub fn hold_reports(&mut self, i: usize, held: bool) {
        self.nodes[i].disk.hold_reports(held);
        let id = i + 1;
        self.log(|| format!("n{id} reports {}", if held { "held" } else { "released" }));
    }

    /// Holds back (or releases) node index `i`'s fsyncs (scripted scenarios).
    pub fn hold_fsyncs(&mut self, i: usize, held: bool) {
        self.nodes[i].disk.hold_fsyncs(held);
        let id = i + 1;
        self.log(|| format!("n{id} fsyncs {}", if held { "held" } else { "released" }));
    }

    /// Proposes a client write at node index `i` (scripted scenarios).
    pub fn propose_at(&mut self, i: usize, value: u64) -> Option<Index> {
        let data = encode_op(u64::MAX - 1, value, OpKind::Put { key: 999, value });
        self.nodes[i].raft.as_mut()?.propose(data).ok()
    }

    pub fn leader_index(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i]
                    .raft
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Leader)
            })
            .max_by_key(|i| self.nodes[*i].raft.as_ref().map(|r| r.term()))
    }

    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(r) = node.raft.take() else { return };
        let (lost, unreported) = node.disk.crash();
        node.down_store = Some(r.storage().clone());
        node.stalled_until = None;
        node.inbox.clear();
        node.kv.clear();
        node.receiving.clear();
        let id = node.id;
        self.log(|| {
            format!(
                "CRASH n{id} ({lost} un-fsynced batches lost, {unreported} reports undelivered)"
            )
        });
    }

    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(store) = node.down_store.take() else {
            return;
        };
        node.kv = postcard::from_bytes(&store.snapshot.data).unwrap_or_default();
        node.applied = store.snapshot.meta.index;
        let c = Config {
            id: node.id,
            seed: self.seed ^ self.now,
            ..self.cfg.clone()
        };
        let t = node.local_time(self.now);
        node.raft = Some(RaftNode::new(c, store, node.applied, t).expect("restart"));
        let id = node.id;
        let applied = node.applied;
        self.log(|| format!("RESTART n{id} from snapshot {applied}"));
    }

    pub fn heal(&mut self) -> Result<(), String> {
        self.resume_due(true)?;
        self.blocked = [[false; 8]; 8];
        self.loss = 0.0;
        self.dup = 0.0;
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
        self.log(|| "HEAL all faults".into());
        Ok(())
    }

    fn nemesis(&mut self) {
        let n = self.nodes.len();
        if self.rng.chance(self.leader_crash) {
            // Crash the leader right after it has appended (and partly replicated) entries, then
            // bring it back soon: the schedule behind Raft's "figure 8".
            if let Some(l) = self.leader_index() {
                self.crash(l);
            }
            let down: Vec<usize> = (0..n).filter(|i| self.nodes[*i].raft.is_none()).collect();
            if let Some(&i) = down.get(self.rng.range(0, down.len() as u64) as usize) {
                self.restart(i);
            }
        }
        let r = self.rng.next_f64();
        if r < 0.002 {
            let alive = self.alive();
            if !alive.is_empty() {
                let i = alive[self.rng.range(0, alive.len() as u64) as usize];
                self.crash(i);
            }
        } else if r < 0.006 {
            let i = self.rng.range(0, n as u64) as usize;
            self.restart(i);
        } else if r < 0.0075 {
            let mut side = [false; 8];
            for s in side.iter_mut().take(n + 1).skip(1) {
                *s = self.rng.chance(0.5);
            }
            for a in 1..=n {
                for b in 1..=n {
                    if side[a] != side[b] {
                        self.blocked[a][b] = true;
                    }
                }
            }
            self.log(|| {
                format!(
                    "PARTITION {:?}",
                    (1..=n).filter(|x| side[*x]).collect::<Vec<_>>()
                )
            });
        } else if r < 0.009 {
            let a = self.rng.range(1, n as u64 + 1) as usize;
            let b = self.rng.range(1, n as u64 + 1) as usize;
            self.blocked[a][b] = true;
            self.log(|| format!("ONE-WAY cut {a} -> {b}"));
        } else if r < 0.012 {
            self.blocked = [[false; 8]; 8];
            self.log(|| "partitions healed".into());
        } else if r < 0.016 {
            if let Some(l) = self.leader_index().filter(|&l| !self.is_stalled(l)) {
                let k = [1usize, 3, 3, 5][self.rng.range(0, 4) as usize].min(n);
                let mut ids: Vec<NodeId> = (1..=n as NodeId).collect();
                self.rng.shuffle(&mut ids);
                let voters: BTreeSet<NodeId> = ids[..k].iter().copied().collect();
                let learners: BTreeSet<NodeId> = ids[k..]
                    .iter()
                    .copied()
                    .filter(|_| self.rng.chance(0.3))
                    .collect();
                let res = self.nodes[l]
                    .raft
                    .as_mut()
                    .map(|r| r.change_membership(voters.clone(), learners.clone()));
                self.log(|| {
                    format!(
                        "n{} change_membership {voters:?} learners {learners:?}: {res:?}",
                        l + 1
                    )
                });
            }
        } else if r < 0.020 {
            if let Some(l) = self.leader_index().filter(|&l| !self.is_stalled(l)) {
                let to = self.rng.range(1, n as u64 + 1);
                let t = self.nodes[l].local_time(self.now);
                let res = self.nodes[l]
                    .raft
                    .as_mut()
                    .map(|r| r.transfer_leader(to, t));
                self.log(|| format!("n{} transfer_leader to {to}: {res:?}", l + 1));
            }
        } else if r < 0.021 {
            let p = if self.rng.chance(0.7) {
                Some(self.rng.range(1, n as u64 + 1))
            } else {
                None
            };
            for node in self.nodes.iter_mut() {
                if let Some(r) = node.raft.as_mut() {
                    r.set_preferred_leader(p);
                }
            }
            self.log(|| format!("preferred leader {p:?}"));
        } else if r < 0.031 {
            let i = self.rng.range(0, n as u64) as usize;
            if !self.is_stalled(i) {
                self.snapshot(i);
            }
        } else if r < 0.034 {
            self.random_stall();
        }
    }

    pub fn snapshot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(r) = node.raft.as_mut() else { return };
        let applied = node.applied;
        let Ok(meta) = r.on_snapshot_taken(applied) else {
            return;
        };
        let data = postcard::to_allocvec(&node.kv).unwrap_or_default();
        r.storage_mut().compact(meta, data);
        let id = node.id;
        self.log(|| format!("n{id} snapshot + compaction at {applied}"));
    }

    // ----- checks -----

    fn check(&mut self) -> Result<(), String> {
        let deep = self.steps.is_multiple_of(20);
        self.checker.check_step(&self.nodes, self.now, deep)
    }

    pub fn propose_probe(&mut self) -> bool {
        if self.liveness_probe.is_some() {
            return true;
        }
        let Some(l) = self.leader_index() else {
            return false;
        };
        let data = encode_op(
            u64::MAX,
            0,
            OpKind::Put {
                key: 1000,
                value: 0,
            },
        );
        let Some(r) = self.nodes[l].raft.as_mut() else {
            return false;
        };
        match r.propose(data) {
            Ok(idx) => {
                self.liveness_probe = Some((l as NodeId + 1, idx, 0));
                true
            }
            Err(_) => false,
        }
    }

    /// Drops the probe if its proposer lost leadership before it committed.
    pub fn probe_lost(&mut self) {
        if let Some((n, idx, 0)) = self.liveness_probe {
            let node = &self.nodes[n as usize - 1];
            let gone = node
                .raft
                .as_ref()
                .is_none_or(|r| r.role() != Role::Leader && node.applied < idx);
            if gone {
                self.liveness_probe = None;
            }
        }
    }

    pub fn clients_idle(&self) -> bool {
        self.clients.iter().all(|c| c.busy.is_none())
    }

    /// The recorded client history for the linearizability checker.
    pub fn history(&self) -> Vec<Operation<KvInput, KvOutput>> {
        self.hist
            .iter()
            .filter(|h| !h.dropped)
            .map(|h| match (&h.output, h.ret) {
                (Some(o), Some(r)) => Operation::completed(h.client, h.input, *o, h.call, r),
                _ => Operation::pending(h.client, h.input, h.call),
            })
            .collect()
    }

    pub fn stats(&self) -> HashMap<&'static str, u64> {
        let mut m = HashMap::new();
        m.insert("ops", self.hist.len() as u64);
        m.insert(
            "completed",
            self.hist.iter().filter(|h| h.ret.is_some()).count() as u64,
        );
        m.insert("committed", self.checker.max_committed());
        m
    }
}
