//! A bounded WGL linearizability checker for recorded client histories.
//!
//! This is **test-support code** (used by the deterministic Raft simulator),
//! not production code.
//!
//! # Algorithm
//!
//! The checker implements the Wing & Gong search, improved by Lowe and by
//! Horn & Kroening with memoization, i.e. the algorithm used by
//! [porcupine](https://github.com/anishathalye/porcupine) and knossos:
//!
//! 1. Every operation contributes a *call* entry (at its call time) and, if it
//!    completed, a *return* entry (at its return time). The entries are sorted
//!    by time into a doubly-linked list. On equal timestamps call entries sort
//!    before return entries, so an operation that returns at `t` is considered
//!    concurrent with one called at `t` (the permissive choice).
//! 2. The search walks the list from the head. At a call entry it tries to
//!    *linearize* that operation next: it applies [`Model::step`] to the
//!    current state; if the output is possible, the operation's entries are
//!    *lifted* (unlinked) from the list, a frame is pushed onto a stack and the
//!    walk restarts at the head. If not possible, the walk moves on to the next
//!    entry (another operation that is concurrent with everything already
//!    placed).
//! 3. Reaching a return entry means that operation had to be linearized before
//!    everything that follows and was not: the search *backtracks* by popping
//!    the last frame, restoring (unlifting) its entries and the previous state,
//!    and continues with the entry after the one that was undone.
//! 4. Memoization: the set of linearized operations (a bitset) together with
//!    the model state fully determines the rest of the search, so each
//!    `(bitset, state)` configuration is explored at most once. A configuration
//!    already in the cache is treated like an impossible step.
//! 5. The history is linearizable iff every *completed* operation gets
//!    linearized; it is not linearizable iff the stack empties on a backtrack.
//!
//! The search is bounded by a step budget (one step = one loop iteration of
//! the walk); if it is exhausted the result is [`CheckResult::Unknown`], so a
//! pathological history cannot hang a test.
//!
//! # Pending (indeterminate) operations
//!
//! An operation whose `output` is `None` never returned to the client (timed
//! out, client crashed, ...). It may have taken effect at any point after its
//! call, or never. The checker models this exactly:
//!
//! * a pending operation has a call entry but **no return entry** (its return
//!   time is +infinity), so it never forces a backtrack, and it may be
//!   linearized at any point after its call;
//! * success only requires that all *completed* operations are linearized, so
//!   a pending operation may also be omitted entirely;
//! * when a pending operation is linearized its effect is given by
//!   [`Model::step_pending`], which returns every state it may have produced
//!   (its output being unknown); all alternatives are explored;
//! * pending operations for which [`Model::is_read_only`] holds are dropped up
//!   front (a read that never returned constrains nothing).
//!
//! # P-compositionality
//!
//! Linearizability is local: a history over independent objects is
//! linearizable iff each per-object sub-history is. [`check_partitioned`]
//! splits a history with a key function and checks each part independently;
//! [`check_kv_history`] does this for the ready-made [`KvModel`], where each
//! key is an independent register. This turns one exponential search into
//! many small ones. [`check_kv_history`] additionally drops timed-out `Put`s
//! whose value is never observed when that is provably sound (see its docs).
//!
//! # Usage
//!
//! ```ignore
//! mod support;
//! use support::linearizability::*;
//!
//! let mut rec = HistoryRecorder::new();
//! let h = rec.invoke(client, KvInput::Put { key: 1, value: 7 }, now);
//! // ... later, when (if) the response arrives:
//! rec.complete(h, KvOutput::Put, now);
//! check_kv_history(rec.history(), DEFAULT_MAX_STEPS).assert_ok();
//! ```
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Debug};
use std::hash::Hash;

/// A sequential specification of an object.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Applies a completed operation: returns the next state, or `None` if
    /// `output` is impossible for `input` in `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Every state a *pending* operation (output unknown) may produce when it
    /// takes effect in `state`. Alternatives that leave the state unchanged
    /// may be left out: "took effect as a no-op" is indistinguishable from
    /// "never took effect", which the checker always allows.
    fn step_pending(&self, state: &Self::State, input: &Self::Input) -> Vec<Self::State>;

    /// Whether `input` never changes the state; pending read-only operations
    /// are dropped before the search.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }
}

/// One recorded client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    pub client_id: u64,
    pub input: I,
    /// `None` if the operation never returned (pending / indeterminate).
    pub output: Option<O>,
    /// Time of the invocation.
    pub call: u64,
    /// Time of the response; `None` (or ignored) for pending operations.
    /// A completed operation with `ret == None` is treated as returning at
    /// `u64::MAX`.
    pub ret: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// A completed operation.
    pub fn completed(client_id: u64, input: I, output: O, call: u64, ret: u64) -> Self {
        Self {
            client_id,
            input,
            output: Some(output),
            call,
            ret: Some(ret),
        }
    }

    /// An operation that was invoked but never returned.
    pub fn pending(client_id: u64, input: I, call: u64) -> Self {
        Self {
            client_id,
            input,
            output: None,
            call,
            ret: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.output.is_none()
    }
}

/// Convenience recorder for building a history while a simulation runs.
#[derive(Debug)]
pub struct HistoryRecorder<I, O> {
    ops: Vec<Operation<I, O>>,
}

impl<I, O> Default for HistoryRecorder<I, O> {
    fn default() -> Self {
        Self { ops: Vec::new() }
    }
}

impl<I, O> HistoryRecorder<I, O> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an invocation; returns a handle for [`HistoryRecorder::complete`].
    pub fn invoke(&mut self, client_id: u64, input: I, now: u64) -> usize {
        self.ops.push(Operation::pending(client_id, input, now));
        self.ops.len() - 1
    }

    /// Records the response of the operation `handle`.
    pub fn complete(&mut self, handle: usize, output: O, now: u64) {
        let op = &mut self.ops[handle];
        assert!(op.output.is_none(), "operation {handle} completed twice");
        assert!(now >= op.call, "operation {handle} returns before its call");
        op.output = Some(output);
        op.ret = Some(now);
    }

    pub fn history(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    pub fn into_history(self) -> Vec<Operation<I, O>> {
        self.ops
    }
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Partition key (for [`check_partitioned`] / [`check_kv_history`]).
    pub partition: Option<String>,
    /// Indices (into the checked history) of the longest linearizable prefix
    /// found, in linearization order.
    pub longest_prefix: Vec<usize>,
    /// Model state after that prefix (`Debug`-formatted).
    pub state_after_prefix: String,
    /// The completed operation whose return was reached before it (or
    /// anything else) could be placed after the longest prefix.
    pub blocked_op: Option<usize>,
    /// Operations that were candidates to be placed next after the longest
    /// prefix (none of them worked).
    pub candidates: Vec<usize>,
    /// Human-readable description of every operation mentioned above.
    pub descriptions: BTreeMap<usize, String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TAIL: usize = 10;
        let desc = |i: &usize| self.descriptions.get(i).cloned().unwrap_or_default();
        write!(f, "history is not linearizable")?;
        if let Some(p) = &self.partition {
            write!(f, " (partition {p})")?;
        }
        writeln!(f)?;
        let n = self.longest_prefix.len();
        writeln!(f, "longest linearizable prefix: {n} operation(s)")?;
        if n > TAIL {
            writeln!(f, "  ... {} earlier operation(s) elided", n - TAIL)?;
        }
        for i in &self.longest_prefix[n.saturating_sub(TAIL)..] {
            writeln!(f, "  {}", desc(i))?;
        }
        writeln!(f, "state after prefix: {}", self.state_after_prefix)?;
        match &self.blocked_op {
            Some(b) => writeln!(f, "could not place (its return was reached): {}", desc(b))?,
            None => writeln!(f, "could not place any remaining operation")?,
        }
        if !self.candidates.is_empty() {
            writeln!(f, "candidates tried next (all impossible):")?;
            for i in &self.candidates {
                writeln!(f, "  {}", desc(i))?;
            }
        }
        Ok(())
    }
}

/// Result of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// The history is linearizable.
    Ok,
    /// The history is not linearizable.
    Illegal(Box<Explanation>),
    /// The step budget was exhausted before a verdict was reached.
    Unknown { steps: u64 },
}

impl CheckResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    pub fn is_illegal(&self) -> bool {
        matches!(self, CheckResult::Illegal(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, CheckResult::Unknown { .. })
    }

    /// Panics with the explanation unless the result is `Ok`.
    #[track_caller]
    pub fn assert_ok(&self) {
        match self {
            CheckResult::Ok => {}
            CheckResult::Illegal(e) => panic!("{e}"),
            CheckResult::Unknown { steps } => {
                panic!("linearizability check inconclusive after {steps} steps")
            }
        }
    }
}

/// Default step budget: generous for a few hundred operations per partition.
pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;

/// Checks a whole history against `model`, spending at most `max_steps`.
pub fn check_history<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    max_steps: u64,
) -> CheckResult {
    let ops: Vec<IndexedOp<'_, M>> = history.iter().enumerate().collect();
    check_ops(model, &ops, max_steps, None)
}

/// Splits `history` by `key_of(input)` and checks every part independently
/// (P-compositionality) with a budget of `max_steps` per part. Parts are
/// checked in key order; the first illegal part is reported, otherwise
/// `Unknown` if any part was inconclusive. Indices in an explanation refer
/// to `history`.
pub fn check_partitioned<M, K, F>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    key_of: F,
    max_steps: u64,
) -> CheckResult
where
    M: Model,
    K: Ord + Debug,
    F: Fn(&M::Input) -> K,
{
    check_partitioned_indexed(model, history.iter().enumerate(), key_of, max_steps)
}

fn check_partitioned_indexed<'a, M, K, F>(
    model: &M,
    ops: impl IntoIterator<Item = IndexedOp<'a, M>>,
    key_of: F,
    max_steps: u64,
) -> CheckResult
where
    M: Model + 'a,
    K: Ord + Debug,
    F: Fn(&M::Input) -> K,
{
    let mut parts: BTreeMap<K, Vec<IndexedOp<'a, M>>> = BTreeMap::new();
    for (i, op) in ops {
        parts.entry(key_of(&op.input)).or_default().push((i, op));
    }
    let mut unknown: Option<u64> = None;
    for (key, ops) in &parts {
        match check_ops(model, ops, max_steps, Some(format!("{key:?}"))) {
            CheckResult::Ok => {}
            illegal @ CheckResult::Illegal(_) => return illegal,
            CheckResult::Unknown { steps } => {
                unknown = Some(unknown.unwrap_or(0).saturating_add(steps));
            }
        }
    }
    match unknown {
        Some(steps) => CheckResult::Unknown { steps },
        None => CheckResult::Ok,
    }
}

/// Checks a key-value history, each key being an independent register
/// ([`KvModel`]), with a budget of `max_steps` per key.
///
/// Optimization: on a key with no *failed* `Cas`, a pending `Put` whose value
/// is never observed (by a completed `Get` or as a `Cas` expectation) is
/// dropped. Sound: in any linearization containing it, the operations between
/// it and the next write on the key would have to observe its value, and a
/// failed `Cas` (the only operation that could "use" an unobserved value) is
/// absent; removing it therefore keeps the linearization legal. This avoids an
/// exponential blow-up over subsets of timed-out writes when a history is
/// illegal.
pub fn check_kv_history(history: &[Operation<KvInput, KvOutput>], max_steps: u64) -> CheckResult {
    let mut has_failed_cas: HashSet<u64> = HashSet::new();
    let mut observed: HashSet<(u64, u64)> = HashSet::new();
    for op in history {
        match (&op.input, &op.output) {
            (KvInput::Get { key }, Some(KvOutput::Get(Some(v)))) => {
                observed.insert((*key, *v));
            }
            (KvInput::Cas { key, expected, .. }, out) => {
                if let Some(v) = expected {
                    observed.insert((*key, *v));
                }
                if matches!(out, Some(KvOutput::Cas(false))) {
                    has_failed_cas.insert(*key);
                }
            }
            _ => {}
        }
    }
    let ops = history.iter().enumerate().filter(|(_, op)| match op.input {
        KvInput::Put { key, value } if op.is_pending() => {
            has_failed_cas.contains(&key) || observed.contains(&(key, value))
        }
        _ => true,
    });
    check_partitioned_indexed(&KvModel, ops, KvInput::key, max_steps)
}

/// An operation together with its index in the caller's history.
type IndexedOp<'a, M> = (
    usize,
    &'a Operation<<M as Model>::Input, <M as Model>::Output>,
);

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

struct Frame<S> {
    node: usize,
    prev_state: S,
    candidates: Vec<S>,
    next_alt: usize,
}

fn describe<I: Debug, O: Debug>(idx: usize, op: &Operation<I, O>) -> String {
    let ret = match (op.output.is_some(), op.ret) {
        (false, _) => "pending".to_string(),
        (true, Some(r)) => r.to_string(),
        (true, None) => "inf".to_string(),
    };
    match &op.output {
        Some(out) => format!(
            "#{idx} client {} {:?} -> {:?} [{}, {}]",
            op.client_id, op.input, out, op.call, ret
        ),
        None => format!(
            "#{idx} client {} {:?} -> ? [{}, {}]",
            op.client_id, op.input, op.call, ret
        ),
    }
}

/// Core WGL search over one (sub-)history. `ops[i].0` is the index reported
/// in explanations.
fn check_ops<M: Model>(
    model: &M,
    all_ops: &[IndexedOp<'_, M>],
    max_steps: u64,
    partition: Option<String>,
) -> CheckResult {
    // Drop pending read-only operations: they constrain nothing.
    let ops: Vec<IndexedOp<'_, M>> = all_ops
        .iter()
        .copied()
        .filter(|(_, op)| !(op.is_pending() && model.is_read_only(&op.input)))
        .collect();
    let n = ops.len();
    let n_completed = ops.iter().filter(|(_, op)| !op.is_pending()).count();
    if n_completed == 0 {
        return CheckResult::Ok;
    }

    // Entries: (time, kind: 0 = call / 1 = return, op).
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (k, (idx, op)) in ops.iter().enumerate() {
        events.push((op.call, 0, k));
        if !op.is_pending() {
            let ret = op.ret.unwrap_or(u64::MAX);
            assert!(
                ret >= op.call,
                "operation #{idx} returns ({ret}) before its call ({})",
                op.call
            );
            events.push((ret, 1, k));
        }
    }
    events.sort_unstable();

    // Doubly-linked list; node 0 is the head sentinel, node i+1 is events[i].
    let m = events.len();
    let mut next = vec![NIL; m + 1];
    let mut prev = vec![NIL; m + 1];
    let mut node_op = vec![NIL; m + 1];
    let mut node_is_call = vec![false; m + 1];
    let mut ret_node = vec![NIL; n];
    for (i, &(_, kind, k)) in events.iter().enumerate() {
        let node = i + 1;
        node_op[node] = k;
        node_is_call[node] = kind == 0;
        if kind == 1 {
            ret_node[k] = node;
        }
        prev[node] = i;
        next[i] = node;
    }
    next[m] = NIL;

    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize| {
        let mut unlink = |x: usize| {
            let (p, nx) = (prev[x], next[x]);
            next[p] = nx;
            if nx != NIL {
                prev[nx] = p;
            }
        };
        unlink(call);
        let r = ret_node[node_op[call]];
        if r != NIL {
            unlink(r);
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize| {
        let mut relink = |x: usize| {
            let (p, nx) = (prev[x], next[x]);
            next[p] = x;
            if nx != NIL {
                prev[nx] = x;
            }
        };
        let r = ret_node[node_op[call]];
        if r != NIL {
            relink(r);
        }
        relink(call);
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut linearized_completed = 0usize;
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut state = model.init();

    // Best (deepest) partial linearization, for the explanation.
    let mut best_prefix: Vec<usize> = Vec::new();
    let mut best_state = state.clone();
    let mut best_blocked: Option<usize> = None;
    let mut best_candidates: Vec<usize> = Vec::new();

    // Tries candidate states `from..` for the call node `node`; on success
    // pushes a frame, lifts the node and returns true.
    macro_rules! try_push {
        ($node:expr, $cands:expr, $from:expr, $prev_state:expr) => {{
            let node: usize = $node;
            let cands: Vec<M::State> = $cands;
            let k = node_op[node];
            let (w, b) = (k / 64, 1u64 << (k % 64));
            linearized[w] |= b;
            let mut chosen = None;
            for (alt, cand) in cands.iter().enumerate().skip($from) {
                if cache.insert((linearized.clone(), cand.clone())) {
                    chosen = Some(alt);
                    break;
                }
            }
            match chosen {
                Some(alt) => {
                    state = cands[alt].clone();
                    stack.push(Frame {
                        node,
                        prev_state: $prev_state,
                        candidates: cands,
                        next_alt: alt + 1,
                    });
                    if !ops[k].1.is_pending() {
                        linearized_completed += 1;
                    }
                    lift(&mut next, &mut prev, node);
                    true
                }
                None => {
                    linearized[w] &= !b;
                    false
                }
            }
        }};
    }

    let mut steps: u64 = 0;
    let mut node = next[HEAD];
    loop {
        if linearized_completed == n_completed {
            return CheckResult::Ok;
        }
        if steps >= max_steps {
            return CheckResult::Unknown { steps };
        }
        steps += 1;

        if node != NIL && node_is_call[node] {
            let op = ops[node_op[node]].1;
            let cands = match &op.output {
                Some(out) => model.step(&state, &op.input, out).into_iter().collect(),
                None => model.step_pending(&state, &op.input),
            };
            let prev_state = state.clone();
            if !cands.is_empty() && try_push!(node, cands, 0, prev_state) {
                if stack.len() > best_prefix.len() {
                    best_prefix = stack.iter().map(|f| node_op[f.node]).collect();
                    best_state = state.clone();
                    best_blocked = None;
                    best_candidates.clear();
                }
                node = next[HEAD];
            } else {
                node = next[node];
            }
            continue;
        }

        // A return entry (or the end of the list): backtrack.
        if stack.len() == best_prefix.len() && best_blocked.is_none() && node != NIL {
            best_blocked = Some(node_op[node]);
            let mut x = next[HEAD];
            while x != node && x != NIL {
                if node_is_call[x] {
                    best_candidates.push(node_op[x]);
                }
                x = next[x];
            }
        }
        let Some(frame) = stack.pop() else {
            return illegal(
                &ops,
                partition,
                best_prefix,
                best_state,
                best_blocked,
                best_candidates,
            );
        };
        let k = node_op[frame.node];
        unlift(&mut next, &mut prev, frame.node);
        linearized[k / 64] &= !(1u64 << (k % 64));
        if !ops[k].1.is_pending() {
            linearized_completed -= 1;
        }
        state = frame.prev_state.clone();
        if frame.next_alt < frame.candidates.len()
            && try_push!(
                frame.node,
                frame.candidates,
                frame.next_alt,
                frame.prev_state
            )
        {
            node = next[HEAD];
        } else {
            node = next[frame.node];
        }
    }
}

fn illegal<I: Debug, O: Debug, S: Debug>(
    ops: &[(usize, &Operation<I, O>)],
    partition: Option<String>,
    prefix: Vec<usize>,
    state: S,
    blocked: Option<usize>,
    candidates: Vec<usize>,
) -> CheckResult {
    let mut descriptions = BTreeMap::new();
    for &k in prefix.iter().chain(blocked.iter()).chain(candidates.iter()) {
        let (idx, op) = ops[k];
        descriptions.insert(idx, describe(idx, op));
    }
    let to_idx = |v: Vec<usize>| v.into_iter().map(|k| ops[k].0).collect::<Vec<_>>();
    CheckResult::Illegal(Box::new(Explanation {
        partition,
        longest_prefix: to_idx(prefix),
        state_after_prefix: format!("{state:?}"),
        blocked_op: blocked.map(|k| ops[k].0),
        candidates: to_idx(candidates),
        descriptions,
    }))
}

// ---------------------------------------------------------------------------
// Ready-made key-value / register model.
// ---------------------------------------------------------------------------

/// Input of a key-value operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    Put {
        key: u64,
        value: u64,
    },
    Get {
        key: u64,
    },
    /// Compare-and-set; `expected == None` means "key absent".
    Cas {
        key: u64,
        expected: Option<u64>,
        new: u64,
    },
}

impl KvInput {
    pub fn key(&self) -> u64 {
        match *self {
            KvInput::Put { key, .. } | KvInput::Get { key } | KvInput::Cas { key, .. } => key,
        }
    }
}

/// Output of a key-value operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// Acknowledgement of a `Put`.
    Put,
    /// Value read by a `Get` (`None`: key absent).
    Get(Option<u64>),
    /// Whether a `Cas` succeeded.
    Cas(bool),
}

/// Applies a KV operation to a single register value.
fn register_step(value: Option<u64>, input: &KvInput, output: &KvOutput) -> Option<Option<u64>> {
    match (input, output) {
        (KvInput::Put { value: v, .. }, KvOutput::Put) => Some(Some(*v)),
        (KvInput::Get { .. }, KvOutput::Get(read)) => (*read == value).then_some(value),
        (KvInput::Cas { expected, new, .. }, KvOutput::Cas(ok)) => {
            match (value == *expected, *ok) {
                (true, true) => Some(Some(*new)),
                (false, false) => Some(value),
                _ => None,
            }
        }
        _ => None,
    }
}

fn register_step_pending(value: Option<u64>, input: &KvInput) -> Vec<Option<u64>> {
    match input {
        KvInput::Put { value: v, .. } => vec![Some(*v)],
        KvInput::Get { .. } => Vec::new(),
        // A failed CAS is a no-op, same as never taking effect.
        KvInput::Cas { expected, new, .. } => {
            if value == *expected {
                vec![Some(*new)]
            } else {
                Vec::new()
            }
        }
    }
}

/// Per-key register model: the state is the value of *the* key of the
/// (sub-)history. Only meaningful on histories partitioned by key — use
/// [`check_kv_history`]. For a single register, use one key throughout.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = Option<u64>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, input: &KvInput, output: &KvOutput) -> Option<Option<u64>> {
        register_step(*state, input, output)
    }

    fn step_pending(&self, state: &Option<u64>, input: &KvInput) -> Vec<Option<u64>> {
        register_step_pending(*state, input)
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }
}

/// Whole-map model (no partitioning); slower, useful to cross-check
/// [`check_kv_history`] on small histories.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvMapModel;

impl KvMapModel {
    fn apply(state: &BTreeMap<u64, u64>, key: u64, value: Option<u64>) -> BTreeMap<u64, u64> {
        let mut s = state.clone();
        match value {
            Some(v) => s.insert(key, v),
            None => s.remove(&key),
        };
        s
    }
}

impl Model for KvMapModel {
    type State = BTreeMap<u64, u64>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(&self, state: &Self::State, input: &KvInput, output: &KvOutput) -> Option<Self::State> {
        let key = input.key();
        let cur = state.get(&key).copied();
        register_step(cur, input, output).map(|v| Self::apply(state, key, v))
    }

    fn step_pending(&self, state: &Self::State, input: &KvInput) -> Vec<Self::State> {
        let key = input.key();
        let cur = state.get(&key).copied();
        register_step_pending(cur, input)
            .into_iter()
            .map(|v| Self::apply(state, key, v))
            .collect()
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: u64 = DEFAULT_MAX_STEPS;

    fn put(c: u64, key: u64, value: u64, call: u64, ret: u64) -> Operation<KvInput, KvOutput> {
        Operation::completed(c, KvInput::Put { key, value }, KvOutput::Put, call, ret)
    }
    fn get(
        c: u64,
        key: u64,
        read: Option<u64>,
        call: u64,
        ret: u64,
    ) -> Operation<KvInput, KvOutput> {
        Operation::completed(c, KvInput::Get { key }, KvOutput::Get(read), call, ret)
    }
    fn cas(
        c: u64,
        key: u64,
        expected: Option<u64>,
        new: u64,
        ok: bool,
        call: u64,
        ret: u64,
    ) -> Operation<KvInput, KvOutput> {
        Operation::completed(
            c,
            KvInput::Cas { key, expected, new },
            KvOutput::Cas(ok),
            call,
            ret,
        )
    }
    fn pending_put(c: u64, key: u64, value: u64, call: u64) -> Operation<KvInput, KvOutput> {
        Operation::pending(c, KvInput::Put { key, value }, call)
    }

    fn check(h: &[Operation<KvInput, KvOutput>]) -> CheckResult {
        let r = check_kv_history(h, STEPS);
        // Cross-check with the unpartitioned model on every hand-written case.
        let whole = check_history(&KvMapModel, h, STEPS);
        assert_eq!(
            r.is_ok(),
            whole.is_ok(),
            "partitioned vs whole: {r:?} / {whole:?}"
        );
        r
    }

    #[test]
    fn empty_history_ok() {
        assert!(check(&[]).is_ok());
    }

    #[test]
    fn sequential_history_ok() {
        let h = vec![
            get(0, 1, None, 0, 1),
            put(0, 1, 10, 2, 3),
            get(1, 1, Some(10), 4, 5),
            put(1, 1, 20, 6, 7),
            get(0, 1, Some(20), 8, 9),
            cas(1, 1, Some(20), 30, true, 10, 11),
            get(0, 1, Some(30), 12, 13),
        ];
        check(&h).assert_ok();
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        for seen in [Some(1), Some(2)] {
            let h = vec![
                put(0, 0, 1, 0, 1),
                put(1, 0, 2, 2, 10),
                get(2, 0, seen, 3, 9),
            ];
            check(&h).assert_ok();
        }
    }

    #[test]
    fn read_linearized_before_overlapping_write_ok() {
        // Read returns the initial value while a write is in flight.
        let h = vec![
            put(0, 0, 5, 0, 10),
            get(1, 0, None, 1, 2),
            get(1, 0, Some(5), 3, 4),
        ];
        check(&h).assert_ok();
    }

    #[test]
    fn stale_read_after_completed_write_illegal() {
        let h = vec![
            put(0, 0, 1, 0, 1),
            put(0, 0, 2, 2, 3),
            get(1, 0, Some(1), 4, 5),
        ];
        let r = check(&h);
        let CheckResult::Illegal(e) = &r else {
            panic!("expected illegal, got {r:?}");
        };
        assert_eq!(e.longest_prefix, vec![0, 1]);
        assert_eq!(e.blocked_op, Some(2));
        assert_eq!(e.partition.as_deref(), Some("0"));
        let text = e.to_string();
        assert!(text.contains("#2 client 1 Get"), "{text}");
        assert!(text.contains("state after prefix: Some(2)"), "{text}");
    }

    #[test]
    fn read_of_never_written_value_illegal() {
        let h = vec![put(0, 0, 1, 0, 5), get(1, 0, Some(42), 1, 4)];
        assert!(check(&h).is_illegal());
        let h = vec![get(1, 7, Some(42), 1, 4)];
        assert!(check(&h).is_illegal());
    }

    #[test]
    fn read_before_write_call_cannot_see_it() {
        let h = vec![get(1, 0, Some(1), 0, 1), put(0, 0, 1, 2, 3)];
        assert!(check(&h).is_illegal());
    }

    #[test]
    fn pending_write_may_or_may_not_take_effect() {
        // Took effect (observed later).
        let h = vec![
            put(0, 0, 1, 0, 1),
            pending_put(1, 0, 2, 2),
            get(2, 0, Some(2), 10, 11),
        ];
        check(&h).assert_ok();
        // Never took effect.
        let h = vec![
            put(0, 0, 1, 0, 1),
            pending_put(1, 0, 2, 2),
            get(2, 0, Some(1), 10, 11),
        ];
        check(&h).assert_ok();
        // Took effect late: first read sees old value, second sees new.
        let h = vec![
            put(0, 0, 1, 0, 1),
            pending_put(1, 0, 2, 2),
            get(2, 0, Some(1), 10, 11),
            get(2, 0, Some(2), 12, 13),
        ];
        check(&h).assert_ok();
    }

    #[test]
    fn pending_write_cannot_take_effect_before_call_or_twice() {
        // Observed before it was invoked.
        let h = vec![get(2, 0, Some(2), 0, 1), pending_put(1, 0, 2, 5)];
        assert!(check(&h).is_illegal());
        // Once overwritten by a later completed write, it cannot reappear.
        let h = vec![
            pending_put(1, 0, 2, 0),
            get(2, 0, Some(2), 1, 2),
            put(0, 0, 3, 3, 4),
            get(2, 0, Some(2), 5, 6),
        ];
        assert!(check(&h).is_illegal());
    }

    #[test]
    fn pending_reads_are_dropped() {
        let h = vec![
            put(0, 0, 1, 0, 1),
            Operation::pending(1, KvInput::Get { key: 0 }, 2),
            get(2, 0, Some(1), 3, 4),
        ];
        check(&h).assert_ok();
        // A history of only pending ops is trivially linearizable.
        let h = vec![
            pending_put(0, 0, 1, 0),
            Operation::pending(1, KvInput::Get { key: 0 }, 0),
        ];
        check(&h).assert_ok();
    }

    #[test]
    fn ret_none_on_completed_op_means_infinite_return() {
        let mut w = put(0, 0, 1, 0, 0);
        w.ret = None;
        let h = vec![w, get(1, 0, Some(1), 5, 6), get(1, 0, None, 7, 8)];
        // The write (return at +inf) must still be linearized: reading Some(1)
        // and then None is impossible (there is no delete).
        assert!(check(&h).is_illegal());
        let mut w = put(0, 0, 1, 0, 0);
        w.ret = None;
        check(&[w, get(1, 0, None, 5, 6), get(1, 0, Some(1), 7, 8)]).assert_ok();
    }

    #[test]
    fn reads_observing_writes_in_opposite_orders_illegal() {
        // Two concurrent writes; one reader sees 1 then 2, another sees 2 then 1
        // after both writes completed... classic: both readers run after the
        // writes overlap each other, and see different final orders.
        let h = vec![
            put(0, 0, 1, 0, 10),
            put(1, 0, 2, 0, 10),
            get(2, 0, Some(1), 1, 2),
            get(2, 0, Some(2), 3, 4),
            get(3, 0, Some(2), 1, 2),
            get(3, 0, Some(1), 3, 4),
        ];
        assert!(check(&h).is_illegal());
        // Either reader alone is fine.
        check(&h[..4]).assert_ok();
        let mut h2 = h[..2].to_vec();
        h2.extend_from_slice(&h[4..]);
        check(&h2).assert_ok();
    }

    #[test]
    fn cas_cases() {
        // Successful CAS then read.
        check(&[
            put(0, 0, 1, 0, 1),
            cas(1, 0, Some(1), 2, true, 2, 3),
            get(0, 0, Some(2), 4, 5),
        ])
        .assert_ok();
        // CAS on absent key.
        check(&[cas(0, 0, None, 7, true, 0, 1), get(0, 0, Some(7), 2, 3)]).assert_ok();
        // CAS that must have failed but claims success.
        assert!(check(&[put(0, 0, 1, 0, 1), cas(1, 0, Some(9), 2, true, 2, 3)]).is_illegal());
        // CAS that must have succeeded but claims failure.
        assert!(check(&[put(0, 0, 1, 0, 1), cas(1, 0, Some(1), 2, false, 2, 3)]).is_illegal());
        // Two concurrent CAS from the same expected value: only one can win.
        check(&[
            put(0, 0, 1, 0, 1),
            cas(1, 0, Some(1), 2, true, 2, 5),
            cas(2, 0, Some(1), 3, false, 2, 5),
        ])
        .assert_ok();
        assert!(
            check(&[
                put(0, 0, 1, 0, 1),
                cas(1, 0, Some(1), 2, true, 2, 5),
                cas(2, 0, Some(1), 3, true, 2, 5),
            ])
            .is_illegal()
        );
        // Pending CAS may take effect (only if its expectation holds).
        let pc = Operation::pending(
            1,
            KvInput::Cas {
                key: 0,
                expected: Some(1),
                new: 2,
            },
            2,
        );
        check(&[put(0, 0, 1, 0, 1), pc.clone(), get(0, 0, Some(2), 5, 6)]).assert_ok();
        check(&[put(0, 0, 1, 0, 1), pc.clone(), get(0, 0, Some(1), 5, 6)]).assert_ok();
        assert!(check(&[put(0, 0, 3, 0, 1), pc, get(0, 0, Some(2), 5, 6)]).is_illegal());
    }

    #[test]
    fn keys_are_independent() {
        // Per-key fine; the illegal key is reported.
        let h = vec![
            put(0, 1, 1, 0, 1),
            get(1, 1, Some(1), 2, 3),
            put(0, 2, 1, 0, 1),
            put(0, 2, 2, 2, 3),
            get(1, 2, Some(1), 4, 5),
        ];
        let r = check(&h);
        let CheckResult::Illegal(e) = r else {
            panic!("expected illegal")
        };
        assert_eq!(e.partition.as_deref(), Some("2"));
        assert_eq!(e.blocked_op, Some(4));
        assert_eq!(e.longest_prefix, vec![2, 3]);
    }

    #[test]
    fn budget_exhaustion_is_unknown() {
        // 40 mutually concurrent writes followed by a read of a value never
        // written: the search space is exponential.
        let mut h: Vec<_> = (0..40).map(|i| put(i, 0, i, 0, 100)).collect();
        h.push(get(99, 0, Some(1000), 101, 102));
        let r = check_kv_history(&h, 1_000);
        assert!(r.is_unknown(), "{r:?}");
    }

    #[test]
    fn many_unobserved_pending_writes_stay_cheap() {
        // 30 timed-out writes overlapping a stale read: without dropping the
        // unobserved pending writes the search would enumerate their subsets.
        let mut h = vec![put(0, 0, 1, 0, 1), put(0, 0, 2, 2, 3)];
        h.extend((0..30).map(|i| pending_put(10 + i, 0, 100 + i, 4)));
        h.push(get(1, 0, Some(1), 5, 6));
        let r = check_kv_history(&h, 100_000);
        assert!(r.is_illegal(), "{r:?}");
        // The plain (unoptimized) search runs out of budget on it.
        assert!(check_partitioned(&KvModel, &h, KvInput::key, 100_000).is_unknown());
        // Same with one observed pending write: still legal.
        h.pop();
        h.push(get(1, 0, Some(105), 5, 6));
        check_kv_history(&h, 100_000).assert_ok();
        // With a failed CAS on the key, nothing is dropped (the CAS may have
        // observed a pending write) and the history is legal.
        let h = vec![
            put(0, 0, 1, 0, 1),
            pending_put(1, 0, 7, 2),
            cas(2, 0, Some(1), 3, false, 3, 4),
        ];
        check(&h).assert_ok();
    }

    #[test]
    fn recorder_builds_history() {
        let mut rec = HistoryRecorder::new();
        let a = rec.invoke(0, KvInput::Put { key: 0, value: 1 }, 0);
        let b = rec.invoke(1, KvInput::Get { key: 0 }, 1);
        rec.complete(b, KvOutput::Get(Some(1)), 3);
        let _c = rec.invoke(2, KvInput::Put { key: 0, value: 2 }, 4);
        rec.complete(a, KvOutput::Put, 5);
        assert!(rec.history()[2].is_pending());
        check_kv_history(rec.history(), STEPS).assert_ok();
    }

    // ---- randomized tests --------------------------------------------------

    struct SplitMix64(u64);
    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Generates a history from an actual sequential execution: operation i
    /// takes effect at time `lin`, strictly increasing; its call/return are
    /// spread randomly around it. Some operations are left pending (with or
    /// without effect).
    fn gen_history(
        seed: u64,
        n_ops: usize,
        n_keys: u64,
        n_clients: u64,
        spread: u64,
    ) -> Vec<Operation<KvInput, KvOutput>> {
        let mut rng = SplitMix64(seed);
        let mut store: BTreeMap<u64, u64> = BTreeMap::new();
        let mut free_at = vec![0u64; n_clients as usize];
        let mut next_value = 1u64;
        let mut h = Vec::with_capacity(n_ops);
        let mut lin = 0u64;
        while h.len() < n_ops {
            lin += 1 + rng.below(3);
            let c = rng.below(n_clients);
            if free_at[c as usize] > lin {
                continue; // client busy
            }
            let call = lin
                .saturating_sub(rng.below(spread + 1))
                .max(free_at[c as usize]);
            let ret = lin + rng.below(spread + 1);
            let key = rng.below(n_keys);
            let cur = store.get(&key).copied();
            let (input, output, new) = match rng.below(10) {
                0..=3 => {
                    let v = next_value;
                    next_value += 1;
                    (KvInput::Put { key, value: v }, KvOutput::Put, Some(v))
                }
                4..=7 => (KvInput::Get { key }, KvOutput::Get(cur), cur),
                _ => {
                    let expected = if rng.below(2) == 0 {
                        cur
                    } else {
                        Some(rng.below(next_value))
                    };
                    let v = next_value;
                    next_value += 1;
                    let ok = expected == cur;
                    let input = KvInput::Cas {
                        key,
                        expected,
                        new: v,
                    };
                    (input, KvOutput::Cas(ok), if ok { Some(v) } else { cur })
                }
            };
            let pending = rng.below(20) == 0;
            if pending {
                // Crashed/timed-out client: the effect may or may not happen.
                if rng.below(2) == 0 {
                    apply(&mut store, key, new);
                }
                h.push(Operation::pending(c, input, call));
            } else {
                apply(&mut store, key, new);
                h.push(Operation::completed(c, input, output, call, ret));
            }
            free_at[c as usize] = ret + 1;
        }
        h
    }

    fn apply(store: &mut BTreeMap<u64, u64>, key: u64, v: Option<u64>) {
        match v {
            Some(v) => store.insert(key, v),
            None => store.remove(&key),
        };
    }

    #[test]
    fn random_sequential_histories_accepted_and_mutations_rejected() {
        for seed in 0..20u64 {
            let h = gen_history(seed, 900, 3, 6, 12);
            check_kv_history(&h, STEPS).assert_ok();

            // Mutate one completed read to a value that was never written.
            let mut rng = SplitMix64(seed ^ 0xDEAD_BEEF);
            let reads: Vec<usize> = (0..h.len())
                .filter(|&i| matches!(h[i].output, Some(KvOutput::Get(_))))
                .collect();
            let victim = reads[rng.below(reads.len() as u64) as usize];
            let mut bad = h.clone();
            bad[victim].output = Some(KvOutput::Get(Some(u64::MAX)));
            let r = check_kv_history(&bad, STEPS);
            let CheckResult::Illegal(e) = &r else {
                panic!("seed {seed}: mutated read #{victim} accepted: {r:?}");
            };
            assert_eq!(e.blocked_op, Some(victim), "seed {seed}\n{e}");
        }
    }

    #[test]
    fn random_small_histories_whole_map_agrees() {
        for seed in 100..130u64 {
            let h = gen_history(seed, 40, 2, 4, 6);
            check_history(&KvMapModel, &h, STEPS).assert_ok();
            check_kv_history(&h, STEPS).assert_ok();
        }
    }

    /// Exhaustive reference: is there an order of a subset of `h` containing
    /// all completed ops, respecting real time, that is legal?
    fn brute_force(h: &[Operation<KvInput, KvOutput>]) -> bool {
        fn go(
            h: &[Operation<KvInput, KvOutput>],
            placed: &mut Vec<bool>,
            state: Option<u64>,
        ) -> bool {
            if (0..h.len()).all(|i| placed[i] || h[i].is_pending()) {
                return true;
            }
            for x in 0..h.len() {
                if placed[x] {
                    continue;
                }
                // x can go next iff no unplaced completed op returned before x's call.
                let blocked = (0..h.len()).any(|y| {
                    y != x
                        && !placed[y]
                        && !h[y].is_pending()
                        && h[y].ret.unwrap_or(u64::MAX) < h[x].call
                });
                if blocked {
                    continue;
                }
                let nexts: Vec<Option<u64>> = match &h[x].output {
                    Some(o) => register_step(state, &h[x].input, o).into_iter().collect(),
                    None => register_step_pending(state, &h[x].input),
                };
                for s in nexts {
                    placed[x] = true;
                    if go(h, placed, s) {
                        placed[x] = false;
                        return true;
                    }
                    placed[x] = false;
                }
            }
            false
        }
        go(h, &mut vec![false; h.len()], None)
    }

    #[test]
    fn random_tiny_histories_match_brute_force() {
        let mut rng = SplitMix64(7);
        let (mut legal, mut illegal_count) = (0, 0);
        for _ in 0..3000 {
            let n = 1 + rng.below(6) as usize;
            let h: Vec<_> = (0..n)
                .map(|i| {
                    let call = rng.below(8);
                    let ret = call + rng.below(4);
                    let val = |rng: &mut SplitMix64| match rng.below(3) {
                        0 => None,
                        v => Some(v),
                    };
                    let (input, output) = match rng.below(3) {
                        0 => (
                            KvInput::Put {
                                key: 0,
                                value: 1 + rng.below(2),
                            },
                            KvOutput::Put,
                        ),
                        1 => (KvInput::Get { key: 0 }, KvOutput::Get(val(&mut rng))),
                        _ => (
                            KvInput::Cas {
                                key: 0,
                                expected: val(&mut rng),
                                new: 1 + rng.below(2),
                            },
                            KvOutput::Cas(rng.below(2) == 0),
                        ),
                    };
                    if rng.below(6) == 0 {
                        Operation::pending(i as u64, input, call)
                    } else {
                        Operation::completed(i as u64, input, output, call, ret)
                    }
                })
                .collect();
            let expected = brute_force(&h);
            let got = check_kv_history(&h, STEPS);
            assert!(!got.is_unknown());
            assert_eq!(got.is_ok(), expected, "history {h:#?}\nresult {got:?}");
            if expected {
                legal += 1;
            } else {
                illegal_count += 1;
            }
        }
        // Make sure both outcomes were exercised.
        assert!(
            legal > 300 && illegal_count > 300,
            "{legal} / {illegal_count}"
        );
    }

    #[test]
    fn large_per_key_history_is_fast() {
        // ~600 ops on a single key with heavy overlap.
        let h = gen_history(4242, 600, 1, 8, 20);
        check_kv_history(&h, STEPS).assert_ok();
    }
}
