//! The stall fault: a node stops processing (a GC pause, SIGSTOP, a starved VM) for a while. Its
//! clock runs on; peer messages and client requests pile up in its inbox, its disk writes wait;
//! on resume it handles everything queued — in an arbitrary interleaving, as its connections'
//! readers would deliver it — and hands out the resulting `Ready` before its next tick. That is
//! exactly where a core that judged time by its last tick would act on an expired belief.

use journalkeeper::raft::{Message, NodeId, ReadMode, Role};

use super::{OpKind, World, encode_op};

/// Input that reached a stalled node.
pub(super) enum Queued {
    Peer(Message),
    /// A client request: the client waits on it (`busy`) with index not yet known.
    Client {
        client: usize,
        op_id: u64,
        kind: OpKind,
        mode: ReadMode,
    },
}

/// Index of a client operation that has not reached the core yet.
pub(super) const NOT_SUBMITTED: u64 = u64::MAX;

impl World {
    pub(super) fn is_stalled(&self, i: usize) -> bool {
        self.nodes[i].stalled_until.is_some()
    }

    /// Stalls node index `i` for `ms` milliseconds (scripted scenarios and the nemesis).
    pub fn stall(&mut self, i: usize, ms: u64) {
        if self.nodes[i].raft.is_none() || self.is_stalled(i) {
            return;
        }
        self.nodes[i].stalled_until = Some(self.now + ms);
        let id = i + 1;
        self.log(|| format!("STALL n{id} for {ms}ms"));
    }

    /// The nemesis' stall: mostly the leader (the case a lease must survive), for up to several
    /// election timeouts.
    pub(super) fn random_stall(&mut self) {
        let target = match self.leader_index() {
            Some(l) if self.rng.chance(0.7) => l,
            _ => self.rng.range(0, self.nodes.len() as u64) as usize,
        };
        let ms =
            [self.rng.range(20, 300), self.rng.range(300, 2_500)][self.rng.range(0, 2) as usize];
        self.stall(target, ms);
    }

    /// Resumes every node whose stall is over (all of them when `all`): it handles its inbox in
    /// a random interleaving, then its `Ready`, before anything else happens to it.
    pub(super) fn resume_due(&mut self, all: bool) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .stalled_until
                .is_some_and(|t| all || t <= self.now);
            if !due {
                continue;
            }
            self.nodes[i].stalled_until = None;
            let mut inbox = std::mem::take(&mut self.nodes[i].inbox);
            self.rng.shuffle(&mut inbox);
            let (id, queued) = (i + 1, inbox.len());
            self.log(|| format!("RESUME n{id} with {queued} queued inputs"));
            for q in inbox {
                match q {
                    Queued::Peer(m) => self.step_node(i, m),
                    Queued::Client {
                        client,
                        op_id,
                        kind,
                        mode,
                    } => self.submit_queued(client, i, op_id, kind, mode),
                }
            }
            self.drain_ready(i)?;
        }
        Ok(())
    }

    /// Hands a client request that waited in a stalled node's inbox to its core.
    fn submit_queued(&mut self, c: usize, i: usize, op_id: u64, kind: OpKind, mode: ReadMode) {
        let waiting = self.clients[c]
            .busy
            .as_ref()
            .is_some_and(|p| p.op_id == op_id && p.index == NOT_SUBMITTED);
        if !waiting && matches!(kind, OpKind::Get { .. }) {
            return; // the client gave up on the read: nobody asks any more
        }
        let res = self.submit(c, i, op_id, kind, mode);
        if !waiting {
            return; // a write the client gave up on still reaches the node, as on a network
        }
        match res {
            Ok(index) => {
                if let Some(p) = self.clients[c].busy.as_mut() {
                    p.index = index;
                }
            }
            Err(leader) => {
                // Refused: it never took effect.
                if let Some(p) = self.clients[c].busy.take() {
                    self.hist[p.hist].dropped = true;
                }
                self.clients[c].leader_hint = leader;
            }
        }
    }

    /// Proposes or reads at node index `i` at its current local time; the index of the write (0
    /// for reads), or the node's leader hint when refused.
    pub(super) fn submit(
        &mut self,
        c: usize,
        i: usize,
        op_id: u64,
        kind: OpKind,
        mode: ReadMode,
    ) -> Result<u64, Option<NodeId>> {
        let t = self.nodes[i].local_time(self.now);
        let Some(r) = self.nodes[i].raft.as_mut() else {
            return Err(None);
        };
        let res = match kind {
            OpKind::Get { .. } => r.read(op_id.to_le_bytes().to_vec(), mode, t).map(|_| 0),
            _ => r.propose(encode_op(c as u64, op_id, kind)),
        };
        res.map_err(|_| r.leader().filter(|_| r.role() != Role::Leader))
    }
}
