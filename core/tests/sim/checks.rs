//! Raft's safety properties, checked after every simulation step:
//! - election safety: at most one leader per term;
//! - log matching: two logs with an entry of the same index and term hold the same entry there
//!   and are identical before it;
//! - leader completeness: every leader's log holds every entry any node has applied (so no
//!   committed entry is lost, including across crashes that drop un-fsynced writes);
//! - state machine safety: no two nodes apply different entries at one index;
//! - lease safety: while a leader holds a lease by its own clock, no node leads a later term
//!   (a lease read there would miss the new leader's writes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use journalkeeper::raft::{Index, NodeId, Role, Term};

use super::world::SimNode;

#[derive(Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    entries: HashMap<(Index, Term), u64>,
    /// index → (entry term, hash, first applier, an upper bound of the term it was committed in).
    applied: BTreeMap<Index, (Term, u64, NodeId, Term)>,
    checked_leaders: BTreeSet<(Term, NodeId)>,
}

impl Checker {
    pub fn max_committed(&self) -> Index {
        self.applied.keys().next_back().copied().unwrap_or(0)
    }

    /// An entry handed out for persistence (appended to some log).
    pub fn saw_entry(
        &mut self,
        id: NodeId,
        index: Index,
        term: Term,
        hash: u64,
    ) -> Result<(), String> {
        match self.entries.insert((index, term), hash) {
            Some(h) if h != hash => Err(format!(
                "log matching: n{id} holds a different entry at index {index} term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// An entry applied by node `id`.
    /// `node_term` is the applier's current term, at least the term the entry was committed in.
    /// The term of the entry some voter applied at `index` (so committed there), if any.
    pub fn applied_term(&self, index: Index) -> Option<Term> {
        self.applied.get(&index).map(|&(t, ..)| t)
    }

    pub fn applied(
        &mut self,
        id: NodeId,
        index: Index,
        term: Term,
        hash: u64,
        node_term: Term,
    ) -> Result<(), String> {
        match self.applied.get(&index) {
            Some(&(t, h, other, _)) if t != term || h != hash => Err(format!(
                "state machine safety: n{id} applies (index {index}, term {term}) but n{other} applied term {t} there"
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(index, (term, hash, id, node_term));
                Ok(())
            }
        }
    }

    /// `now` is the world's time (each node's clock is derived from it).
    pub fn check_step(&mut self, nodes: &[SimNode], now: u64, deep: bool) -> Result<(), String> {
        lease_safety(nodes, now)?;
        for n in nodes {
            let Some(r) = &n.raft else { continue };
            // A leader whose term is not durable yet has sent nothing and may be forgotten.
            if r.role() != Role::Leader || r.storage().hard_state.term != r.term() {
                continue;
            }
            let term = r.term();
            match self.leaders.insert(term, n.id) {
                Some(other) if other != n.id => {
                    return Err(format!(
                        "election safety: n{other} and n{} both lead term {term}",
                        n.id
                    ));
                }
                _ => {}
            }
            if deep || self.checked_leaders.insert((term, n.id)) {
                self.leader_complete(n)?;
            }
        }
        if deep {
            self.log_matching(nodes)?;
        }
        Ok(())
    }

    fn leader_complete(&self, n: &SimNode) -> Result<(), String> {
        let Some(r) = &n.raft else { return Ok(()) };
        let st = r.status();
        for (&idx, &(term, _, by, commit_term)) in self.applied.range(st.first_index..) {
            // Only leaders of later terms than the commit must hold it.
            if st.term > commit_term && r.term_at(idx) != Some(term) {
                return Err(format!(
                    "leader completeness: leader n{} of term {} lacks committed entry {idx} (term {term}, applied by n{by}); it has term {:?}",
                    n.id,
                    st.term,
                    r.term_at(idx)
                ));
            }
        }
        Ok(())
    }

    fn log_matching(&self, nodes: &[SimNode]) -> Result<(), String> {
        let alive: Vec<&SimNode> = nodes.iter().filter(|n| n.raft.is_some()).collect();
        for (i, a) in alive.iter().enumerate() {
            for b in &alive[i + 1..] {
                let (Some(ra), Some(rb)) = (&a.raft, &b.raft) else {
                    continue;
                };
                let (sa, sb) = (ra.status(), rb.status());
                let lo = sa.first_index.max(sb.first_index) - 1;
                let hi = sa.last_index.min(sb.last_index);
                let Some(top) = (lo..=hi)
                    .rev()
                    .find(|&x| ra.term_at(x).is_some() && ra.term_at(x) == rb.term_at(x))
                else {
                    continue;
                };
                for x in lo..=top {
                    if ra.term_at(x) != rb.term_at(x) {
                        return Err(format!(
                            "log matching: n{} and n{} agree at index {top} but differ at {x} ({:?} vs {:?})",
                            a.id,
                            b.id,
                            ra.term_at(x),
                            rb.term_at(x)
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn lease_safety(nodes: &[SimNode], now: u64) -> Result<(), String> {
    let leaders = nodes.iter().filter_map(|n| {
        let r = n.raft.as_ref()?;
        (r.role() == Role::Leader).then(|| (n, r.term()))
    });
    for (holder, term) in leaders.clone() {
        let Some(r) = holder.raft.as_ref() else {
            continue;
        };
        let Some(expiry) = r.lease_expiry() else {
            continue;
        };
        let local = holder.local_time(now);
        if local >= expiry {
            continue;
        }
        if let Some((other, t)) = leaders.clone().find(|(_, t)| *t > term) {
            return Err(format!(
                "lease safety: n{} leads term {t} while n{} (term {term}) holds its lease for {} more ms",
                other.id,
                holder.id,
                expiry - local
            ));
        }
        // What the lease rests on: a quorum of the holder's voters still refuses to vote (a
        // crashed voter cannot vote; a restarted one refuses for an election timeout).
        let promising = |id: NodeId| {
            id == holder.id
                || nodes.iter().find(|n| n.id == id).is_none_or(|n| {
                    n.raft.as_ref().is_none_or(|v| {
                        v.vote_refused_until()
                            .is_some_and(|until| n.local_time(now) < until)
                    })
                })
        };
        let m = r.membership();
        let majority = |set: &BTreeSet<NodeId>| {
            set.iter().filter(|&&id| promising(id)).count() * 2 > set.len()
        };
        // An election needs a majority of both halves of a joint configuration: one half
        // still promising is enough.
        let outgoing_holds = !m.outgoing.is_empty() && majority(&m.outgoing);
        if !(majority(&m.voters) || outgoing_holds) {
            return Err(format!(
                "lease safety: n{} (term {term}) holds its lease for {} more ms, but a quorum of its voters no longer promises to refuse votes",
                holder.id,
                expiry - local
            ));
        }
    }
    Ok(())
}
