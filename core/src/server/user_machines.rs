//! The user state machines a server hosts by name (`Server::builder(..).state_machine(..)`),
//! beside the built-in journal store and KV: their log command, their client sessions, the
//! fail-stop rule, and their part of a snapshot.
//!
//! Why the host keeps the sessions: a retried update must apply once, and a user machine should
//! not have to know about retries. One session table serves every user machine of the node
//! (a client numbers all its writes in one sequence); a session's result is the encoded results
//! of the whole batch.
//!
//! Failure rules (the contract of [`StateMachine`]): an `Err` returned by `apply` is a result,
//! delivered to the caller; a panic is a crash — [`UserMachines::apply`] returns `Err(reason)`
//! and the apply thread stops the node (fail-stop), so no replica ever skips an entry.
//!
//! Snapshot section (after the built-in state, see `snapshot_file`): a `u64` LE length and the
//! postcard [`SectionHeader`] (names, sessions), then for each name in that order the
//! machine's own snapshot as a chunk stream ([`ChunkWriter`]): `u32` LE length + bytes, each at
//! most [`MAX_CHUNK`], ended by a zero length. A machine's stream is written and read as it
//! comes, never held whole in memory.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use super::apply::user_error;
use crate::api::{Error, ErrorKind};
use crate::state::session::{Admission, ClientSessions, RequestId, SessionLimits};
use crate::state::{ApplyContext, StateError, StateMachine};

/// Longest state machine name.
pub const MAX_MACHINE_NAME: usize = 64;
/// Names starting with this are the built-in machines' (`jk.sql`).
pub const RESERVED_PREFIX: &str = "jk.";
/// Most commands in one update batch.
pub const MAX_UPDATE_COMMANDS: usize = 4096;
/// Largest sum of command sizes in one update batch (fits the default 16 MiB frame).
pub const MAX_UPDATE_BYTES: usize = 8 * 1024 * 1024;
/// Largest query.
pub const MAX_QUERY_BYTES: usize = 4 * 1024 * 1024;
/// Largest chunk of a machine's snapshot stream.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Largest snapshot section header (names and sessions).
const MAX_SECTION_HEADER: u64 = 1 << 32;

/// One update batch for machine `machine`, as the log carries it (command tag 10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCommand {
    pub machine: String,
    /// The leader's clock when it accepted the batch (never decreasing); every replica applies
    /// with this time.
    pub timestamp_ms: u64,
    /// The client's write session (a retry applies once).
    pub session: Option<RequestId>,
    #[serde(with = "crate::bytes_serde::vec")]
    pub commands: Vec<Vec<u8>>,
}

/// The result of one command: the bytes `apply` returned, or its error.
pub type CommandResult = Result<Vec<u8>, StateError>;

/// Checks a user state machine name: `[A-Za-z0-9_.-]{1,64}`, not starting with `jk.`.
pub fn check_name(name: &str) -> Result<(), Error> {
    check_any_name(name)?;
    if name.starts_with(RESERVED_PREFIX) {
        return Err(invalid(format!(
            "state machine name {name:?} starts with {RESERVED_PREFIX:?}, which is reserved for \
             the built-in machines"
        )));
    }
    Ok(())
}

/// The name rule without the reservation (the built-in machines are named with it).
pub fn check_any_name(name: &str) -> Result<(), Error> {
    let ok = (1..=MAX_MACHINE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "state machine name {name:?} must be 1..={MAX_MACHINE_NAME} characters of \
             [A-Za-z0-9_.-]"
        )))
    }
}

/// Checks the bounds of an update batch.
pub fn check_update(commands: &[Vec<u8>]) -> Result<(), Error> {
    if commands.is_empty() || commands.len() > MAX_UPDATE_COMMANDS {
        return Err(invalid(format!(
            "an update holds 1..={MAX_UPDATE_COMMANDS} commands, not {}",
            commands.len()
        )));
    }
    let bytes: usize = commands.iter().map(Vec::len).sum();
    if bytes > MAX_UPDATE_BYTES {
        return Err(invalid(format!(
            "an update of {bytes} bytes exceeds the limit of {MAX_UPDATE_BYTES} bytes"
        )));
    }
    Ok(())
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

#[derive(Serialize, Deserialize)]
struct SectionHeader {
    names: Vec<String>,
    sessions: ClientSessions,
}

/// One entry of a run given to [`UserMachines::apply_run`].
pub(crate) struct RunEntry<'a> {
    pub index: u64,
    pub term: u64,
    pub cmd: &'a UserCommand,
}

/// What becomes of one entry of a run.
enum Plan {
    /// Known without applying: a refused session, or a retry of an earlier entry.
    Done(Result<Vec<CommandResult>, StateError>),
    /// A retry of the run's entry at this position.
    SameAs(usize),
    /// Applied: its commands are `start..start + len` of the batch.
    Run { start: usize, len: usize },
}

/// The user state machines of one node, by name.
pub(crate) struct UserMachines {
    machines: BTreeMap<String, Box<dyn StateMachine>>,
    sessions: ClientSessions,
    /// Per machine, the log index of the last entry that ran its commands (or replaced its
    /// state: a snapshot restored or recovered) — what `StateChanged` events report.
    changed: BTreeMap<String, u64>,
}

impl UserMachines {
    pub fn new(machines: Vec<(String, Box<dyn StateMachine>)>, limits: SessionLimits) -> Self {
        let machines: BTreeMap<_, _> = machines.into_iter().collect();
        Self {
            changed: machines.keys().map(|n| (n.clone(), 0)).collect(),
            machines,
            sessions: ClientSessions::new(limits),
        }
    }

    /// Per machine, the index its state last changed at (0: never).
    pub fn changed(&self) -> &BTreeMap<String, u64> {
        &self.changed
    }

    /// Every machine's state was replaced at `index` (a snapshot restored or recovered).
    pub fn replaced_at(&mut self, index: u64) {
        self.changed.values_mut().for_each(|i| *i = index);
    }

    /// The hosted names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.machines.keys().cloned().collect()
    }

    /// Applies `cmd` at log `index` / `term`: a run of one entry.
    #[cfg(test)]
    pub fn apply(
        &mut self,
        index: u64,
        term: u64,
        cmd: &UserCommand,
    ) -> Result<Result<Vec<CommandResult>, StateError>, String> {
        let mut r = self.apply_run(&[RunEntry { index, term, cmd }])?;
        Ok(r.pop().unwrap_or(Ok(Vec::new())))
    }

    /// Applies consecutive log entries that all update one machine, with one
    /// [`StateMachine::apply_batch`] call for every command they hold. `Ok`: per entry, one
    /// result per command (or the original results of a retry). `Err`: the node must stop
    /// applying (an unhosted machine, a panic).
    ///
    /// Sessions see what applying one entry after another would: each admitted entry is
    /// recorded in log order before the batch runs (its result filled in after), so a retry
    /// later in the same run is answered with the first one's results.
    pub fn apply_run(
        &mut self,
        run: &[RunEntry<'_>],
    ) -> Result<Vec<Result<Vec<CommandResult>, StateError>>, String> {
        let Some(first) = run.first() else {
            return Ok(Vec::new());
        };
        let name = first.cmd.machine.clone();
        let last_index = run.last().map_or(first.index, |e| e.index);
        if let Some(other) = run.iter().find(|e| e.cmd.machine != name) {
            return Err(format!(
                "entries {}..={last_index} mix state machines {name:?} and {:?} in one run",
                first.index, other.cmd.machine
            ));
        }
        let Some(machine) = self.machines.get_mut(&name) else {
            return Err(format!(
                "entry {} updates state machine {name:?}, which this node does not host \
                 (it hosts {:?}); every node of a cluster must host the same state machines",
                first.index,
                self.machines.keys().collect::<Vec<_>>()
            ));
        };
        let mut plans = Vec::with_capacity(run.len());
        let mut items: Vec<(ApplyContext, &[u8])> = Vec::new();
        let mut in_run: BTreeMap<(u64, u64), usize> = BTreeMap::new();
        for (i, e) in run.iter().enumerate() {
            if let Some(session) = &e.cmd.session {
                let key = (session.client_id, session.seq);
                match self.sessions.admit(session) {
                    Err(err) => {
                        plans.push(Plan::Done(Err(err)));
                        continue;
                    }
                    Ok(Admission::Duplicate(Ok(_))) if in_run.contains_key(&key) => {
                        plans.push(Plan::SameAs(in_run[&key]));
                        continue;
                    }
                    Ok(Admission::Duplicate(r)) => {
                        plans.push(Plan::Done(decode_results(r)));
                        continue;
                    }
                    Ok(Admission::Apply) => {
                        self.sessions.record(session, e.index, Ok(Vec::new()));
                        in_run.insert(key, i);
                    }
                }
            }
            let ctx = ApplyContext {
                index: e.index,
                term: e.term,
                timestamp_ms: e.cmd.timestamp_ms,
            };
            plans.push(Plan::Run {
                start: items.len(),
                len: e.cmd.commands.len(),
            });
            items.extend(e.cmd.commands.iter().map(|c| (ctx, c.as_slice())));
        }
        let results = if items.is_empty() {
            Vec::new()
        } else {
            catch_unwind(AssertUnwindSafe(|| machine.apply_batch(&items))).map_err(|panic| {
                format!(
                    "state machine {name:?} panicked applying entries {}..={last_index}: {}; \
                     this node stops applying (fail-stop) so it never diverges from the others",
                    first.index,
                    panic_message(&*panic)
                )
            })?
        };
        if results.len() != items.len() {
            return Err(format!(
                "state machine {name:?} returned {} results for {} commands (entries \
                 {}..={last_index}); this node stops applying (fail-stop)",
                results.len(),
                items.len(),
                first.index
            ));
        }
        let mut out: Vec<Result<Vec<CommandResult>, StateError>> = Vec::with_capacity(run.len());
        for (e, plan) in run.iter().zip(plans) {
            let r = match plan {
                Plan::Done(r) => r,
                Plan::SameAs(j) => out[j].clone(),
                Plan::Run { start, len } => {
                    let r = results[start..start + len].to_vec();
                    if let Some(session) = &e.cmd.session {
                        let encoded = crate::state::encode("update results", &r);
                        self.sessions.set_result(session, encoded);
                    }
                    if let Some(i) = self.changed.get_mut(&name) {
                        *i = e.index;
                    }
                    Ok(r)
                }
            };
            out.push(r);
        }
        Ok(out)
    }

    /// Answers `query` against machine `name`'s current state.
    pub fn query(&self, name: &str, query: &[u8]) -> Result<Vec<u8>, Error> {
        let machine = self.machines.get(name).ok_or_else(|| {
            invalid(format!(
                "no state machine named {name:?} here (this node hosts {:?})",
                self.names()
            ))
        })?;
        match catch_unwind(AssertUnwindSafe(|| machine.query(query))) {
            Ok(r) => r.map_err(user_error),
            Err(panic) => Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "state machine {name:?} panicked answering a query: {}",
                    panic_message(&*panic)
                ),
            )),
        }
    }

    /// Writes the user section of a snapshot.
    pub fn write_section(&self, out: &mut dyn Write) -> Result<(), String> {
        let header = postcard::to_allocvec(&SectionHeader {
            names: self.names(),
            sessions: self.sessions.clone(),
        })
        .map_err(|e| format!("cannot encode the state machines' sessions: {e}"))?;
        let io = |e: io::Error| format!("cannot write the state machines' snapshot: {e}");
        out.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&header).map_err(io)?;
        for (name, machine) in &self.machines {
            let mut chunks = ChunkWriter::new(&mut *out);
            catch_unwind(AssertUnwindSafe(|| machine.snapshot(&mut chunks)))
                .map_err(|p| {
                    format!(
                        "state machine {name:?} panicked taking a snapshot: {}",
                        panic_message(&*p)
                    )
                })?
                .map_err(|e| format!("state machine {name:?} cannot take a snapshot: {e}"))?;
            chunks.finish().map_err(io)?;
        }
        Ok(())
    }

    /// Replaces every machine's state (and, unless `keep_sessions`, the sessions) with the
    /// user section read from `input`. `Err` when the section names other machines than
    /// this node hosts, or a machine cannot restore it.
    pub fn read_section(
        &mut self,
        input: &mut dyn Read,
        keep_sessions: bool,
    ) -> Result<(), String> {
        let io = |e: io::Error| format!("cannot read the state machines' snapshot: {e}");
        let mut len = [0u8; 8];
        input.read_exact(&mut len).map_err(io)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_SECTION_HEADER {
            return Err(format!(
                "state machine section header of {len} bytes exceeds {MAX_SECTION_HEADER}"
            ));
        }
        let mut header = Vec::new();
        input.take(len).read_to_end(&mut header).map_err(io)?;
        if header.len() as u64 != len {
            return Err("the snapshot ends inside the state machine section".into());
        }
        let header: SectionHeader = postcard::from_bytes(&header)
            .map_err(|e| format!("undecodable state machine section: {e}"))?;
        if header.names != self.names() {
            return Err(format!(
                "the snapshot holds state machines {:?}, but this node hosts {:?}; every node \
                 of a cluster must host the same state machines",
                header.names,
                self.names()
            ));
        }
        for (name, machine) in &mut self.machines {
            let mut chunks = ChunkReader::new(&mut *input);
            catch_unwind(AssertUnwindSafe(|| machine.restore(&mut chunks)))
                .map_err(|p| {
                    format!(
                        "state machine {name:?} panicked restoring a snapshot: {}",
                        panic_message(&*p)
                    )
                })?
                .map_err(|e| format!("state machine {name:?} cannot restore its snapshot: {e}"))?;
            chunks.drain().map_err(io)?;
        }
        if !keep_sessions {
            self.sessions = header.sessions;
        }
        Ok(())
    }
}

fn decode_results(r: Result<Vec<u8>, StateError>) -> Result<Vec<CommandResult>, StateError> {
    r.and_then(|bytes| crate::state::decode("update results", &bytes))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}

/// Writes a stream as chunks of at most [`MAX_CHUNK`] bytes; [`ChunkWriter::finish`] ends it.
pub(crate) struct ChunkWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> ChunkWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(MAX_CHUNK),
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.out.write_all(&(self.buf.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last chunk and the end mark.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush_chunk()?;
        self.out.write_all(&0u32.to_le_bytes())
    }
}

impl<W: Write> Write for ChunkWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(MAX_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == MAX_CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a stream written by [`ChunkWriter`]; end of file at its end mark.
pub(crate) struct ChunkReader<R: Read> {
    input: R,
    left: usize,
    ended: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            left: 0,
            ended: false,
        }
    }

    /// Skips what the reader did not read, up to and including the end mark.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl<R: Read> Read for ChunkReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len)?;
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 {
                self.ended = true;
                return Ok(0);
            }
            if len > MAX_CHUNK {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("snapshot chunk of {len} bytes exceeds {MAX_CHUNK}"),
                ));
            }
            self.left = len;
        }
        let want = buf.len().min(self.left);
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums the little-endian u64 commands it applies; refuses an odd one.
    #[derive(Default)]
    struct Sum(u64);

    impl StateMachine for Sum {
        fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
            let v = u64::from_le_bytes(
                command
                    .try_into()
                    .map_err(|_| StateError::InvalidArgument("8 bytes expected".into()))?,
            );
            if v == 13 {
                panic!("thirteen at {}", ctx.index);
            }
            if v % 2 == 1 {
                return Err(StateError::Rejected(format!("odd {v}")));
            }
            self.0 += v;
            Ok(self.0.to_le_bytes().to_vec())
        }
        fn query(&self, _: &[u8]) -> Result<Vec<u8>, StateError> {
            Ok(self.0.to_le_bytes().to_vec())
        }
        fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
            // Large enough to span several chunks.
            for _ in 0..3 * MAX_CHUNK / 8 {
                out.write_all(&self.0.to_le_bytes())
                    .map_err(|e| crate::state::io_error("sum", &e))?;
            }
            Ok(())
        }
        fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
            let mut b = [0u8; 8];
            input
                .read_exact(&mut b)
                .map_err(|e| crate::state::io_error("sum", &e))?;
            self.0 = u64::from_le_bytes(b);
            Ok(())
        }
    }

    fn host(names: &[&str]) -> UserMachines {
        UserMachines::new(
            names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        Box::new(Sum::default()) as Box<dyn StateMachine>,
                    )
                })
                .collect(),
            SessionLimits::default(),
        )
    }

    fn cmd(machine: &str, session: Option<RequestId>, values: &[u64]) -> UserCommand {
        UserCommand {
            machine: machine.into(),
            timestamp_ms: 5,
            session,
            commands: values.iter().map(|v| v.to_le_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn names_follow_the_rule_and_jk_is_reserved() {
        assert!(check_name("bank").is_ok());
        assert!(check_name("a.b-c_9").is_ok());
        for bad in ["", "has space", "é", &"x".repeat(65), "jk.sql"] {
            assert_eq!(
                check_name(bad).unwrap_err().kind,
                ErrorKind::InvalidArgument
            );
        }
        assert!(check_any_name("jk.sql").is_ok());
    }

    #[test]
    fn each_command_gets_its_result_and_a_retry_gets_the_original() {
        let mut m = host(&["a"]);
        let s = RequestId {
            client_id: 1,
            seq: 1,
            first_unacked: 1,
        };
        let r = m
            .apply(1, 1, &cmd("a", Some(s), &[2, 3, 4]))
            .unwrap()
            .unwrap();
        assert_eq!(r[0], Ok(2u64.to_le_bytes().to_vec()));
        assert_eq!(r[1], Err(StateError::Rejected("odd 3".into())));
        assert_eq!(r[2], Ok(6u64.to_le_bytes().to_vec()));
        let again = m
            .apply(2, 1, &cmd("a", Some(s), &[2, 3, 4]))
            .unwrap()
            .unwrap();
        assert_eq!(again, r);
        assert_eq!(m.query("a", b"").unwrap(), 6u64.to_le_bytes());
    }

    #[test]
    fn a_run_applies_as_entry_after_entry_would_and_a_retry_inside_it_applies_once() {
        let mut m = host(&["a"]);
        let s = RequestId {
            client_id: 1,
            seq: 1,
            first_unacked: 1,
        };
        let (first, retry, plain) = (
            cmd("a", Some(s), &[2, 4]),
            cmd("a", Some(s), &[2, 4]),
            cmd("a", None, &[3, 8]),
        );
        let run = [
            RunEntry {
                index: 1,
                term: 1,
                cmd: &first,
            },
            RunEntry {
                index: 2,
                term: 1,
                cmd: &retry,
            },
            RunEntry {
                index: 3,
                term: 1,
                cmd: &plain,
            },
        ];
        let r = m.apply_run(&run).unwrap();
        let first_results = r[0].as_ref().unwrap();
        assert_eq!(first_results[1], Ok(6u64.to_le_bytes().to_vec()));
        assert_eq!(r[1], r[0], "the retry gets the first one's results");
        assert_eq!(
            r[2].as_ref().unwrap()[1],
            Ok(14u64.to_le_bytes().to_vec()),
            "2 + 4 once, then 8 (3 is refused)"
        );
        assert_eq!(m.changed()["a"], 3);
        // After the run, a retry is answered from the session with the real results.
        let later = m.apply(4, 1, &cmd("a", Some(s), &[2, 4])).unwrap().unwrap();
        assert_eq!(&later, first_results);
        assert_eq!(m.query("a", b"").unwrap(), 14u64.to_le_bytes());
        let mixed = [
            RunEntry {
                index: 5,
                term: 1,
                cmd: &plain,
            },
            RunEntry {
                index: 6,
                term: 1,
                cmd: &cmd("b", None, &[2]),
            },
        ];
        assert!(m.apply_run(&mixed).unwrap_err().contains("mix"));
    }

    #[test]
    fn a_panic_or_an_unhosted_machine_stops_applying() {
        let mut m = host(&["a"]);
        let e = m.apply(7, 1, &cmd("a", None, &[13])).unwrap_err();
        assert!(e.contains("panicked") && e.contains("thirteen at 7"), "{e}");
        let e = m.apply(8, 1, &cmd("b", None, &[2])).unwrap_err();
        assert!(e.contains("does not host"), "{e}");
        assert_eq!(
            m.query("b", b"").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn the_section_round_trips_and_refuses_other_names() {
        let mut m = host(&["a", "b"]);
        m.apply(1, 1, &cmd("a", None, &[10])).unwrap().unwrap();
        m.apply(2, 1, &cmd("b", None, &[20])).unwrap().unwrap();
        let mut out = Vec::new();
        m.write_section(&mut out).unwrap();
        out.extend_from_slice(b"after");

        let mut fresh = host(&["a", "b"]);
        let mut input = &out[..];
        fresh.read_section(&mut input, false).unwrap();
        // Each machine read only its first 8 bytes; the rest of its stream was skipped.
        assert_eq!(input, b"after");
        assert_eq!(fresh.query("a", b"").unwrap(), 10u64.to_le_bytes());
        assert_eq!(fresh.query("b", b"").unwrap(), 20u64.to_le_bytes());

        let e = host(&["a"]).read_section(&mut &out[..], false).unwrap_err();
        assert!(e.contains("must host the same"), "{e}");
        assert!(
            host(&["a", "b"])
                .read_section(&mut &out[..20], false)
                .is_err()
        );
    }

    #[test]
    fn chunk_streams_bound_their_chunks() {
        let mut out = Vec::new();
        let mut w = ChunkWriter::new(&mut out);
        w.write_all(&vec![7u8; MAX_CHUNK + 10]).unwrap();
        w.finish().unwrap();
        assert_eq!(out.len(), 4 + MAX_CHUNK + 4 + 10 + 4);
        let mut back = Vec::new();
        ChunkReader::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, vec![7u8; MAX_CHUNK + 10]);

        let mut big = ((MAX_CHUNK + 1) as u32).to_le_bytes().to_vec();
        big.extend(vec![0; MAX_CHUNK + 1]);
        assert!(
            ChunkReader::new(&big[..])
                .read_to_end(&mut Vec::new())
                .is_err()
        );
        assert!(
            ChunkReader::new(&[5, 0, 0, 0, 1][..])
                .read_to_end(&mut Vec::new())
                .is_err()
        );
    }
}
