//! `JsMachine`: a JS state machine hosted by an embedded server (`Server.start(config,
//! { stateMachines: { bank: new Bank() } })`), as the core's [`StateMachine`].
//!
//! Owns: the calls from the core's threads (the node's apply thread; the blocking thread of a
//! query) into JS, and the mapping of their outcomes to the core's failure rules. Never runs
//! JS itself off the JS thread and never interprets the machine's bytes.
//!
//! How a call travels: `machine_dispatcher.js` (evaluated here) wraps the user's machine in
//! one *dispatcher* function that never throws (it turns `machine.apply(ctx, command)` and the others into a
//! [`MachineReply`]); each core call here queues a [`MachineCall`] on a weak, bounded
//! thread-safe function of that dispatcher ([`QUEUE`] calls) and the calling thread waits on a
//! channel for the reply, which the JS thread sends after the call. So:
//! - the event loop must be free for an apply to progress; while JS is busy the apply thread
//!   waits, the leader's bounded pending requests (`maxPendingRequests`) fill and proposers get
//!   `UNAVAILABLE` — memory stays bounded;
//! - the function is weak: it never keeps the process alive, and it is released when the core
//!   drops the machine (the server stopped);
//! - `server.close()` runs on the core's runtime, not on the JS thread, so the JS thread keeps
//!   serving the calls an apply in progress makes while the node shuts down (no deadlock).
//!
//! Outcomes: a reply `rejected` (the machine threw an error whose `code` is `'REJECTED'`) is
//! [`StateError::Rejected`]; `failed` (any other throw, a non-`Buffer` result) in `apply`,
//! `query` or `restore` is a `panic!` with the message — the core's fail-stop path (the node
//! stops applying and its status says `failed`; a query answers with an error). A snapshot
//! that fails is an `Err` (no snapshot is taken; the node goes on). A JS thread that is gone
//! (the process exiting) is a panic too.
//!
//! Snapshots keep the machine's chunks: each is written to the core's stream as a 4-byte
//! little-endian length and its bytes, and `restore(chunk)` receives them one by one, with the
//! same boundaries, between `restoreBegin()` and `restoreEnd()`; no chunk exceeds
//! [`MAX_CHUNK_BYTES`].

use std::io::{Read, Write};
use std::sync::mpsc;

use journalkeeper::api::{self, ErrorKind};
use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use napi::bindgen_prelude::{Buffer, FnArgs, FromNapiValue, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Unknown, ValueType};
use napi_derive::napi;

use crate::MAX_SAFE_INTEGER;
use crate::args::R;

/// Calls queued at once for one machine (the apply thread and the query threads each wait for
/// their own, so the queue holds at most one per waiting thread; a full queue blocks the
/// caller).
pub const QUEUE: usize = 64;

/// The largest snapshot chunk (64 MiB); a larger one fails the snapshot.
pub const MAX_CHUNK_BYTES: usize = 64 << 20;

/// One call of the dispatcher (internal: the shape `machine_dispatcher.js` reads).
#[napi(object, object_from_js = false)]
pub struct MachineCall {
    /// `apply`, `query`, `snapshot`, `snapshotNext`, `restoreBegin`, `restore`, `restoreEnd`.
    pub op: String,
    /// The command, query or chunk.
    pub data: Option<Buffer>,
    pub index: Option<f64>,
    pub term: Option<f64>,
    pub timestamp_ms: Option<f64>,
    /// `applyBatch`: the commands, in log order.
    pub batch: Option<Vec<BatchCommand>>,
}

/// One command of an `applyBatch` call (internal).
#[napi(object, object_from_js = false)]
pub struct BatchCommand {
    pub data: Buffer,
    pub index: f64,
    pub term: f64,
    pub timestamp_ms: f64,
}

/// Most commands in one `applyBatch` call: a longer run of committed commands crosses to the
/// JS thread in several calls, so one call's arrays stay small.
const MAX_BATCH: usize = 1024;

/// What the dispatcher answers (internal): `ok` (a result or chunk), `done` (no more chunks),
/// `rejected` (the machine's message) or `failed` (why the call failed).
#[napi(object, object_to_js = false)]
pub struct MachineReply {
    pub ok: Option<Buffer>,
    pub done: Option<bool>,
    pub rejected: Option<String>,
    pub failed: Option<String>,
    /// `applyBatch`: one reply per command, up to the first failure.
    pub results: Option<Vec<MachineReply>>,
}

/// What the waiting thread receives: the reply's parts as owned data.
enum Outcome {
    Ok(Option<Vec<u8>>),
    Done,
    Rejected(String),
    Failed(String),
    Batch(Vec<Outcome>),
}

impl From<MachineReply> for Outcome {
    fn from(r: MachineReply) -> Self {
        match (r.failed, r.rejected, r.done, r.results, r.ok) {
            (Some(f), ..) => Outcome::Failed(f),
            (None, Some(m), ..) => Outcome::Rejected(m),
            (None, None, Some(true), ..) => Outcome::Done,
            (None, None, _, Some(list), _) => {
                Outcome::Batch(list.into_iter().map(Outcome::from).collect())
            }
            (None, None, _, None, ok) => Outcome::Ok(ok.map(|b| b.to_vec())),
        }
    }
}

type Dispatcher =
    ThreadsafeFunction<MachineCall, MachineReply, MachineCall, Status, false, true, QUEUE>;

/// A JS machine, hosted under `name`.
pub struct JsMachine {
    name: String,
    dispatch: Dispatcher,
}

/// The source of the dispatcher factory (`dispatcher(name, machine)`).
const DISPATCHER: &str = include_str!("machine_dispatcher.js");

/// `machine` (the user's object) hosted as `name`: wrapped in its dispatcher, called through a
/// weak bounded thread-safe function. Runs on the JS thread.
pub(crate) fn js_machine(env: &Env, name: &str, machine: Unknown) -> napi::Result<R<JsMachine>> {
    let factory: Function<FnArgs<(String, Unknown)>, Unknown> = env.run_script(DISPATCHER)?;
    let dispatcher = factory.call((name.to_string(), machine).into())?;
    if dispatcher.get_type()? == ValueType::String {
        let why: String = String::from_unknown(dispatcher)?;
        return Ok(Err(api::Error::new(ErrorKind::InvalidArgument, why)));
    }
    let f: Function<MachineCall, MachineReply> = Function::from_unknown(dispatcher)?;
    let dispatch: Dispatcher = f
        .build_threadsafe_function::<MachineCall>()
        .callee_handled::<false>()
        .weak::<true>()
        .max_queue_size::<QUEUE>()
        .build()?;
    Ok(Ok(JsMachine {
        name: name.to_string(),
        dispatch,
    }))
}

fn call(op: &str) -> MachineCall {
    MachineCall {
        op: op.to_string(),
        data: None,
        index: None,
        term: None,
        timestamp_ms: None,
        batch: None,
    }
}

fn js_number(what: &str, v: u64) -> f64 {
    assert!(
        v <= MAX_SAFE_INTEGER,
        "{what} {v} exceeds Number.MAX_SAFE_INTEGER and cannot reach a JS state machine"
    );
    v as f64
}

impl JsMachine {
    /// Queues `c` and waits for the JS thread's outcome.
    fn run(&self, c: MachineCall) -> Result<Outcome, String> {
        let op = c.op.clone();
        let (tx, rx) = mpsc::sync_channel::<Outcome>(1);
        let status = self.dispatch.call_with_return_value(
            c,
            ThreadsafeFunctionCallMode::Blocking,
            move |reply: napi::Result<MachineReply>, _env| {
                let outcome = match reply {
                    Ok(r) => Outcome::from(r),
                    Err(e) => Outcome::Failed(e.reason),
                };
                // The waiting thread is gone only if it panicked; nothing to tell it then.
                let _ = tx.send(outcome);
                Ok(())
            },
        );
        if status != Status::Ok {
            return Err(format!(
                "state machine {:?}: cannot call JS for {op} ({status}): the JS thread is gone",
                self.name
            ));
        }
        rx.recv().map_err(|_| {
            format!(
                "state machine {:?}: the JS thread dropped the {op} call (the process is exiting)",
                self.name
            )
        })
    }

    /// `run`, where anything but a result or a refusal is the fail-stop panic.
    fn run_or_panic(&self, c: MachineCall) -> Result<Option<Vec<u8>>, StateError> {
        let op = c.op.clone();
        match self.run(c) {
            Ok(Outcome::Ok(v)) => Ok(v),
            Ok(Outcome::Rejected(m)) => Err(StateError::Rejected(m)),
            Ok(Outcome::Done | Outcome::Batch(_)) => {
                panic!("state machine {:?}: {op} answered done", self.name)
            }
            Ok(Outcome::Failed(why)) => panic!("state machine {:?}: {op} failed: {why}", self.name),
            Err(why) => panic!("{why}"),
        }
    }

    fn result(&self, op: &str, v: Option<Vec<u8>>) -> Vec<u8> {
        v.unwrap_or_else(|| panic!("state machine {:?}: {op} returned no Buffer", self.name))
    }
}

fn codec(what: &str, reason: String) -> StateError {
    StateError::Codec {
        what: what.to_string(),
        reason,
    }
}

impl StateMachine for JsMachine {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let mut c = call("apply");
        c.data = Some(command.to_vec().into());
        c.index = Some(js_number("index", ctx.index));
        c.term = Some(js_number("term", ctx.term));
        c.timestamp_ms = Some(js_number("timestampMs", ctx.timestamp_ms));
        let v = self.run_or_panic(c)?;
        Ok(self.result("apply", v))
    }

    /// One crossing to the JS thread per [`MAX_BATCH`] commands instead of one per command.
    fn apply_batch(&mut self, batch: &[(ApplyContext, &[u8])]) -> Vec<Result<Vec<u8>, StateError>> {
        let mut out = Vec::with_capacity(batch.len());
        for part in batch.chunks(MAX_BATCH) {
            let mut c = call("applyBatch");
            c.batch = Some(
                part.iter()
                    .map(|(ctx, command)| BatchCommand {
                        data: command.to_vec().into(),
                        index: js_number("index", ctx.index),
                        term: js_number("term", ctx.term),
                        timestamp_ms: js_number("timestampMs", ctx.timestamp_ms),
                    })
                    .collect(),
            );
            let replies = match self.run(c) {
                Ok(Outcome::Batch(replies)) => replies,
                Ok(Outcome::Failed(why)) => {
                    panic!("state machine {:?}: apply failed: {why}", self.name)
                }
                Ok(_) => panic!(
                    "state machine {:?}: applyBatch answered no results",
                    self.name
                ),
                Err(why) => panic!("{why}"),
            };
            if replies.len() != part.len() && !matches!(replies.last(), Some(Outcome::Failed(_))) {
                panic!(
                    "state machine {:?}: applyBatch answered {} of {} commands",
                    self.name,
                    replies.len(),
                    part.len()
                );
            }
            for reply in replies {
                out.push(match reply {
                    Outcome::Ok(v) => Ok(self.result("apply", v)),
                    Outcome::Rejected(m) => Err(StateError::Rejected(m)),
                    Outcome::Failed(why) => {
                        panic!("state machine {:?}: apply failed: {why}", self.name)
                    }
                    Outcome::Done | Outcome::Batch(_) => {
                        panic!("state machine {:?}: apply answered no result", self.name)
                    }
                });
            }
        }
        out
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let mut c = call("query");
        c.data = Some(query.to_vec().into());
        let v = self.run_or_panic(c)?;
        Ok(self.result("query", v))
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let what = format!("the snapshot of state machine {:?}", self.name);
        let fail = |why: String| codec(&what, why);
        match self.run(call("snapshot")).map_err(fail)? {
            Outcome::Ok(_) | Outcome::Done => {}
            Outcome::Rejected(m) | Outcome::Failed(m) => return Err(fail(m)),
            Outcome::Batch(_) => return Err(fail("snapshot answered a batch".into())),
        }
        loop {
            let chunk = match self.run(call("snapshotNext")).map_err(fail)? {
                Outcome::Done => return Ok(()),
                Outcome::Ok(Some(chunk)) => chunk,
                Outcome::Ok(None) | Outcome::Batch(_) => {
                    return Err(fail("a chunk is not a Buffer".into()));
                }
                Outcome::Rejected(m) | Outcome::Failed(m) => return Err(fail(m)),
            };
            if chunk.len() > MAX_CHUNK_BYTES {
                return Err(fail(format!(
                    "a chunk of {} bytes exceeds {MAX_CHUNK_BYTES}",
                    chunk.len()
                )));
            }
            // Fits: at most MAX_CHUNK_BYTES.
            let len = (chunk.len() as u32).to_le_bytes();
            out.write_all(&len)
                .and_then(|()| out.write_all(&chunk))
                .map_err(|e| io_error(&what, &e))?;
        }
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let what = format!("the snapshot of state machine {:?}", self.name);
        self.run_or_panic(call("restoreBegin"))?;
        loop {
            let mut len = [0u8; 4];
            match read_full(input, &mut len).map_err(|e| io_error(&what, &e))? {
                0 => break,
                4 => {}
                n => {
                    return Err(codec(
                        &what,
                        format!("truncated chunk length ({n} of 4 bytes)"),
                    ));
                }
            }
            let len = u32::from_le_bytes(len) as usize;
            if len > MAX_CHUNK_BYTES {
                return Err(codec(
                    &what,
                    format!("a chunk of {len} bytes exceeds {MAX_CHUNK_BYTES}"),
                ));
            }
            let mut chunk = vec![0u8; len];
            input
                .read_exact(&mut chunk)
                .map_err(|e| io_error(&what, &e))?;
            let mut c = call("restore");
            c.data = Some(chunk.into());
            self.run_or_panic(c)?;
        }
        self.run_or_panic(call("restoreEnd"))?;
        Ok(())
    }
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
