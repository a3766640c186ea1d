//! Observers in the simulator: read replicas outside the configuration that pull committed
//! entries from parents (voters of the [`World`] or other observers, so in levels) with the
//! core's [`Puller`] and `serve_pull` / `pulled`. Parents crash, answers get lost, observers
//! crash and restart from their storage, voters compact their logs (so a lagging observer has
//! to fetch a parent's state). Every entry an observer applies is checked to be committed
//! (a voter committed or applied that very entry) and to come right after the one before.

use std::collections::BTreeMap;

use journalkeeper::raft::observer::{PullRequest, Puller};
use journalkeeper::raft::{
    Config, Entry, EntryKind, Index, MemStorage, Membership, NodeId, RaftNode,
};

use super::rng::Rng;
use super::world::{STEP_MS, World};

/// Where an observer pulls from.
#[derive(Clone, Copy, Debug)]
pub enum Parent {
    /// `world.nodes[i]`.
    Voter(usize),
    /// Another observer of the set (a lower level).
    Observer(usize),
}

pub struct SimObserver {
    pub id: NodeId,
    raft: Option<RaftNode<MemStorage>>,
    down_store: Option<MemStorage>,
    puller: Puller,
    parents: Vec<Parent>,
    pub applied: Index,
    pub kv_hash: u64,
    pub fetched_state: u32,
}

pub struct Observers {
    pub obs: Vec<SimObserver>,
    rng: Rng,
    cfg: Config,
}

impl Observers {
    /// Two observers pulling from the world's voters, two more pulling from those.
    pub fn new(w: &World, seed: u64) -> Self {
        let voters: Vec<usize> = (0..w.nodes.len()).collect();
        let mut rng = Rng::new(seed ^ 0x0b5e_77e5);
        let cfg = Config {
            id: 0,
            seed,
            snapshot_chunk_bytes: 64,
            ..Config::default()
        };
        let mut obs = Vec::new();
        for k in 0..4usize {
            let parents: Vec<Parent> = if k < 2 {
                voters.iter().map(|&i| Parent::Voter(i)).collect()
            } else {
                vec![Parent::Observer(k - 2), Parent::Observer(3 - k)]
            };
            let id = 100 + k as NodeId;
            let c = Config { id, ..cfg.clone() };
            let raft =
                RaftNode::new(c, MemStorage::new(Membership::default()), 0, 0).expect("config");
            obs.push(SimObserver {
                id,
                raft: Some(raft),
                down_store: None,
                puller: Puller::new(parents.len(), rng.range(0, 1000), 50),
                parents,
                applied: 0,
                kv_hash: 0,
                fetched_state: 0,
            });
        }
        Self { obs, rng, cfg }
    }

    /// One world step's worth of observer activity, faults included when `chaos`.
    pub fn step(&mut self, w: &World, chaos: bool) -> Result<(), String> {
        for k in 0..self.obs.len() {
            if chaos && self.rng.chance(0.002) {
                self.crash_or_restart(k);
            }
            if self.obs[k].raft.is_none() {
                continue;
            }
            self.pull(k, w, chaos)?;
            self.drain(k, w)?;
        }
        Ok(())
    }

    fn crash_or_restart(&mut self, k: usize) {
        let o = &mut self.obs[k];
        match o.raft.take() {
            Some(r) => o.down_store = Some(r.storage().clone()),
            None => {
                let store = o.down_store.take().unwrap_or_default();
                let applied = store.snapshot.meta.index;
                let c = Config {
                    id: o.id,
                    ..self.cfg.clone()
                };
                o.raft = Some(RaftNode::new(c, store, applied, 0).expect("config"));
                // The state machine restarts from the snapshot and replays the log.
                o.applied = applied;
                o.kv_hash = 0;
                o.puller = Puller::new(o.parents.len(), o.id, 50);
            }
        }
    }

    /// Sends the puller's next request to its parent and hands the answer to the core.
    fn pull(&mut self, k: usize, w: &World, chaos: bool) -> Result<(), String> {
        let now = w.now;
        let last = self.obs[k].raft.as_ref().map_or(0, |r| {
            r.storage().snapshot.meta.index.max(r.status().last_index)
        });
        let Some(req) = self.obs[k].puller.next_request(now, last) else {
            return Ok(());
        };
        let lost = chaos && self.rng.chance(0.05);
        let parent = self.obs[k].parents[req.parent()];
        enum Answer {
            Entries(Index, journalkeeper::raft::observer::PullAnswer),
            Piece(journalkeeper::raft::observer::SnapshotPiece),
            Failed,
        }
        let answer = {
            let parent_raft = match parent {
                Parent::Voter(i) => w.nodes[i].raft.as_ref(),
                Parent::Observer(j) => self.obs[j].raft.as_ref(),
            };
            match (parent_raft, lost) {
                (Some(p), false) => match req {
                    PullRequest::Entries { from, .. } => {
                        Answer::Entries(from, p.serve_pull(from, 300))
                    }
                    PullRequest::Snapshot { index, offset, .. } => {
                        match p.serve_snapshot(index, offset, 64) {
                            Some(piece) => Answer::Piece(piece),
                            None => Answer::Failed,
                        }
                    }
                },
                _ => Answer::Failed,
            }
        };
        let o = &mut self.obs[k];
        let Some(r) = o.raft.as_mut() else {
            return Ok(());
        };
        match answer {
            Answer::Entries(from, a) => {
                let outcome = r.pulled(from, a);
                o.puller.on_entries(outcome);
            }
            Answer::Piece(piece) => {
                let index = piece.meta.index;
                match r.pulled_snapshot(piece) {
                    Some(ack) if ack.skipped => o.puller.on_snapshot(index, 0, true),
                    Some(ack) => o.puller.on_snapshot(index, ack.next_offset, ack.installed),
                    None => o.puller.on_failure(now),
                }
            }
            Answer::Failed => o.puller.on_failure(now),
        }
        Ok(())
    }

    /// Persists and applies what the core hands out, checking each applied entry.
    fn drain(&mut self, k: usize, w: &World) -> Result<(), String> {
        for _ in 0..100 {
            let o = &mut self.obs[k];
            let Some(r) = o.raft.as_mut() else {
                return Ok(());
            };
            if !r.has_ready() {
                return Ok(());
            }
            let rd = r.ready();
            if !rd.messages.is_empty() || !rd.persisted_messages.is_empty() {
                return Err(format!("observer n{} sent a raft message", o.id));
            }
            for c in &rd.snapshot_chunks {
                r.storage_mut().receive_chunk(c);
            }
            if let Some(meta) = rd.snapshot.clone() {
                r.storage_mut().install_received(meta.clone());
                o.applied = meta.index;
                o.kv_hash = hash_bytes(&r.storage().snapshot.data);
                o.fetched_state += 1;
            }
            r.storage_mut().append(&rd.entries);
            if let Some(hs) = rd.hard_state.clone() {
                r.storage_mut().hard_state = hs;
            }
            if let Some((i, t)) = rd.persist_point() {
                r.on_persisted(i, t);
            }
            for e in &rd.committed_entries {
                check_committed(w, o.id, e)?;
                if e.index != o.applied + 1 {
                    return Err(format!(
                        "observer n{} applies {} after {}",
                        o.id, e.index, o.applied
                    ));
                }
                o.applied = e.index;
            }
            if let Some(e) = rd.committed_entries.last() {
                r.on_applied(e.index);
            }
        }
        Err(format!(
            "observer n{} keeps producing Readys",
            self.obs[k].id
        ))
    }

    /// Now and then a voter snapshots and compacts its log, so lagging observers must fetch state.
    pub fn maybe_compact(&mut self, w: &mut World) {
        if self.rng.chance(0.01) {
            let i = self.rng.range(0, w.nodes.len() as u64) as usize;
            w.snapshot(i);
        }
    }

    /// Whether every live observer has applied at least `index`.
    pub fn caught_up(&self, index: Index) -> bool {
        self.obs
            .iter()
            .all(|o| o.raft.is_none() || o.applied >= index)
    }

    /// Restarts the crashed observers.
    pub fn restart_all(&mut self) {
        for k in 0..self.obs.len() {
            if self.obs[k].raft.is_none() {
                self.crash_or_restart(k);
            }
        }
    }
}

/// An applied entry must be committed: a voter committed an entry of that term at that index,
/// or applied it (then it was committed).
fn check_committed(w: &World, id: NodeId, e: &Entry) -> Result<(), String> {
    if w.checker.applied_term(e.index) == Some(e.term) {
        return Ok(());
    }
    let committed = w.nodes.iter().filter_map(|n| n.raft.as_ref()).any(|r| {
        let s = r.status();
        s.commit >= e.index
            && r.storage()
                .log
                .iter()
                .any(|x| x.index == e.index && x.term == e.term)
    });
    if committed {
        return Ok(());
    }
    let kind = match e.kind {
        EntryKind::Normal(_) => "normal",
        _ => "other",
    };
    Err(format!(
        "observer n{id} applies an uncommitted {kind} entry (index {}, term {})",
        e.index, e.term
    ))
}

fn hash_bytes(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `w` with observers attached: chaos, then heal, then every observer catches up with the
/// highest index a voter applied.
pub fn run_with_observers(
    w: &mut World,
    seed: u64,
    chaos_ms: u64,
) -> Result<BTreeMap<NodeId, u32>, String> {
    let mut obs = Observers::new(w, seed);
    for _ in 0..chaos_ms / STEP_MS {
        w.step(true)?;
        obs.maybe_compact(w);
        obs.step(w, true)?;
    }
    w.heal()?;
    obs.restart_all();
    let target = w.nodes.iter().map(|n| n.applied).max().unwrap_or(0);
    let deadline = w.now + 20_000;
    while !obs.caught_up(target) {
        if w.now > deadline {
            let got: Vec<(NodeId, Index)> = obs.obs.iter().map(|o| (o.id, o.applied)).collect();
            return Err(format!("observers did not catch up with {target}: {got:?}"));
        }
        w.step(false)?;
        obs.step(w, false)?;
    }
    Ok(obs.obs.iter().map(|o| (o.id, o.fetched_state)).collect())
}
