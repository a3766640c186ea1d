//! User state machines written in C, hosted by an embedded server
//! (`jk_server_start_with_machines`): the `jk_state_machine` callback table, the handles its
//! callbacks write to or read from (`jk_sm_output`, `jk_sm_writer`, `jk_sm_reader`) and
//! [`ForeignMachine`], the core `StateMachine` that calls them.
//!
//! Bytes cross the boundary only as copies made by the library: a callback hands a result to
//! `jk_sm_output_set`, which copies it, so no allocator is shared with C.
//!
//! Failure rules (the core's `StateMachine` contract): `JK_STATUS_OK` is a result,
//! `JK_STATUS_REJECTED` a deterministic refusal (`StateError::Rejected` with the callback's
//! message); any other status from `apply` or `restore_read` is a crash, turned into a panic
//! here that the core catches (fail-stop). Never does: decide what a status means beyond that.

use std::ffi::{c_char, c_void};
use std::io::{self, Read, Write};

use journalkeeper::state::{ApplyContext, StateError, StateMachine};

use crate::args::{slice_arg, str_arg};
use crate::error::{Failure, jk_status};

/// Where in the log the command being applied sits (deterministic inputs only: the same on
/// every node). Borrowed for the `apply` call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_apply_context {
    /// Global log index of the entry.
    pub index: u64,
    /// Term in which the entry was proposed.
    pub term: u64,
    /// The leader's clock when it accepted the entry (milliseconds since the epoch).
    pub timestamp_ms: u64,
}

/// Where a callback puts its result bytes (or, with `JK_STATUS_REJECTED`, its message):
/// `jk_sm_output_set`. Opaque; valid only during the callback it was passed to.
pub struct jk_sm_output {
    _private: [u8; 0],
}

/// Where `snapshot_write` writes the machine's state: `jk_sm_writer_write`. Opaque; valid only
/// during that callback.
pub struct jk_sm_writer {
    _private: [u8; 0],
}

/// Where `restore_read` reads a state written by `snapshot_write`: `jk_sm_reader_read`.
/// Opaque; valid only during that callback.
pub struct jk_sm_reader {
    _private: [u8; 0],
}

/// Applies one committed command. Returns a `jk_status` value as `uint32_t`:
/// `JK_STATUS_OK` (the bytes given to `jk_sm_output_set` are the result; none: empty), or
/// `JK_STATUS_REJECTED` (a deterministic refusal: the state must be unchanged, and the bytes
/// given to `jk_sm_output_set` are the message, UTF-8). Any other value is a crash: the node
/// stops applying (fail-stop; its `jk_server_info.failed` becomes true) and never applies
/// another entry, while the other nodes go on serving. Must be deterministic: no clock,
/// randomness or I/O whose outcome differs between nodes.
pub type jk_sm_apply_fn = Option<
    extern "C" fn(
        user_data: *mut c_void,
        ctx: *const jk_apply_context,
        command: *const u8,
        command_len: usize,
        out: *mut jk_sm_output,
    ) -> u32,
>;

/// Answers a read-only query (must not change the state). Returns `JK_STATUS_OK` (the answer
/// is what was given to `jk_sm_output_set`), `JK_STATUS_REJECTED` (a refusal: the caller gets
/// `JK_STATUS_REJECTED` with that message), or any other value (the caller gets `JK_STATUS_INTERNAL`; the node goes on serving).
pub type jk_sm_query_fn = Option<
    extern "C" fn(
        user_data: *mut c_void,
        query: *const u8,
        query_len: usize,
        out: *mut jk_sm_output,
    ) -> u32,
>;

/// Writes the whole state with `jk_sm_writer_write` (any format `restore_read` reads back).
/// Returns `JK_STATUS_OK`, or any other value when it failed (the snapshot is abandoned; the
/// node goes on and tries again later).
pub type jk_sm_snapshot_write_fn =
    Option<extern "C" fn(user_data: *mut c_void, writer: *mut jk_sm_writer) -> u32>;

/// Replaces the whole state with one written by `snapshot_write`, read with
/// `jk_sm_reader_read`. Returns `JK_STATUS_OK`; any other value is a crash (fail-stop, as
/// for `apply`).
pub type jk_sm_restore_read_fn =
    Option<extern "C" fn(user_data: *mut c_void, reader: *mut jk_sm_reader) -> u32>;

/// Releases `user_data`.
pub type jk_sm_free_fn = Option<extern "C" fn(user_data: *mut c_void)>;

/// A state machine written in C, hosted under `name` by `jk_server_start_with_machines`.
///
/// Threads: `apply`, `snapshot_write` and `restore_read` run on the node's apply thread;
/// `query` runs on one of the library runtime's blocking threads. Never two at once for one
/// node (they run under the node's state lock), so `user_data` needs no lock of its own unless
/// the program touches it elsewhere; but successive calls may come from different threads.
///
/// Callbacks must not call blocking `jk_*` functions of a client or server that wait for this
/// node to apply (a `jk_sm_update`, a write acknowledged at `JK_RESPONSE_CONFIG_REPLICATION`, a
/// `JK_QUERY_CONSISTENCY_SEQUENTIAL` / `STRICT` read served by this node, `jk_server_stop`):
/// the apply thread would wait for itself (deadlock). They may call `jk_sm_output_set`,
/// `jk_sm_writer_write` and `jk_sm_reader_read` on the handle they were given.
///
/// `free` (may be NULL) is called with `user_data` exactly once, after the last callback
/// returned: when the node stops (`jk_server_stop` / `jk_server_free`), or before
/// `jk_server_start_with_machines` returns when the start fails.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_state_machine {
    /// `[A-Za-z0-9_.-]{1,64}`, not starting with `jk.`; every node of the cluster must host the
    /// same names. Copied by `jk_server_start_with_machines`.
    pub name: *const c_char,
    /// Passed to every callback; owned by the library from the start call on (see `free`).
    pub user_data: *mut c_void,
    /// Required.
    pub apply: jk_sm_apply_fn,
    /// Required.
    pub query: jk_sm_query_fn,
    /// Required.
    pub snapshot_write: jk_sm_snapshot_write_fn,
    /// Required.
    pub restore_read: jk_sm_restore_read_fn,
    /// Optional (NULL: nothing to release).
    pub free: jk_sm_free_fn,
}

/// Owns a machine's `user_data`: calls `free` once, when dropped.
struct UserData {
    ptr: *mut c_void,
    free: jk_sm_free_fn,
}

// SAFETY: the header's contract for `jk_state_machine` says its callbacks (and `free`) may run
// on threads other than the one that registered it, never two at once; the core calls them
// under the node's state lock, and `free` after the last of them.
unsafe impl Send for UserData {}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            free(self.ptr);
        }
    }
}

/// A C state machine as the core's [`StateMachine`].
pub(crate) struct ForeignMachine {
    name: String,
    apply: extern "C" fn(
        *mut c_void,
        *const jk_apply_context,
        *const u8,
        usize,
        *mut jk_sm_output,
    ) -> u32,
    query: extern "C" fn(*mut c_void, *const u8, usize, *mut jk_sm_output) -> u32,
    snapshot_write: extern "C" fn(*mut c_void, *mut jk_sm_writer) -> u32,
    restore_read: extern "C" fn(*mut c_void, *mut jk_sm_reader) -> u32,
    data: UserData,
}

impl ForeignMachine {
    /// Takes ownership of `m.user_data` at once (so `free` runs whatever else fails), then
    /// checks the name and the required callbacks.
    pub(crate) fn new(m: &jk_state_machine, what: &str) -> Result<(String, Self), Failure> {
        let data = UserData {
            ptr: m.user_data,
            free: m.free,
        };
        let name = str_arg(m.name, &format!("{what}.name"))?.to_string();
        let missing = |f: &str| Failure::null(&format!("{what}.{f}"));
        let machine = ForeignMachine {
            name: name.clone(),
            apply: m.apply.ok_or_else(|| missing("apply"))?,
            query: m.query.ok_or_else(|| missing("query"))?,
            snapshot_write: m.snapshot_write.ok_or_else(|| missing("snapshot_write"))?,
            restore_read: m.restore_read.ok_or_else(|| missing("restore_read"))?,
            data,
        };
        Ok((name, machine))
    }

    fn status_text(raw: u32) -> String {
        match jk_status::from_raw(raw) {
            Some(s) => format!("{raw} ({})", s.code().to_string_lossy()),
            None => format!("{raw} (not a jk_status)"),
        }
    }
}

fn output_ptr(out: &mut Vec<u8>) -> *mut jk_sm_output {
    std::ptr::from_mut(out).cast::<jk_sm_output>()
}

fn message(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

impl StateMachine for ForeignMachine {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let c = jk_apply_context {
            index: ctx.index,
            term: ctx.term,
            timestamp_ms: ctx.timestamp_ms,
        };
        let mut out = Vec::new();
        let status = (self.apply)(
            self.data.ptr,
            &c,
            command.as_ptr(),
            command.len(),
            output_ptr(&mut out),
        );
        match status {
            s if s == jk_status::Ok as u32 => Ok(out),
            s if s == jk_status::Rejected as u32 => Err(StateError::Rejected(message(out))),
            s => panic!(
                "the C state machine {:?} apply callback returned status {} at index {}: a crash",
                self.name,
                Self::status_text(s),
                ctx.index
            ),
        }
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let mut out = Vec::new();
        let status = (self.query)(
            self.data.ptr,
            query.as_ptr(),
            query.len(),
            output_ptr(&mut out),
        );
        match status {
            s if s == jk_status::Ok as u32 => Ok(out),
            s if s == jk_status::Rejected as u32 => Err(StateError::Rejected(message(out))),
            s => panic!(
                "the C state machine {:?} query callback returned status {}",
                self.name,
                Self::status_text(s)
            ),
        }
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let mut slot = WriterSlot { out, error: None };
        let status = (self.snapshot_write)(
            self.data.ptr,
            std::ptr::from_mut(&mut slot).cast::<jk_sm_writer>(),
        );
        if let Some(e) = slot.error {
            return Err(journalkeeper::state::io_error(
                "a C state machine's snapshot",
                &e,
            ));
        }
        if status != jk_status::Ok as u32 {
            return Err(StateError::Codec {
                what: format!("the snapshot of the C state machine {:?}", self.name),
                reason: format!(
                    "snapshot_write returned status {}",
                    Self::status_text(status)
                ),
            });
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut slot = ReaderSlot { input, error: None };
        let status = (self.restore_read)(
            self.data.ptr,
            std::ptr::from_mut(&mut slot).cast::<jk_sm_reader>(),
        );
        if let Some(e) = slot.error {
            return Err(journalkeeper::state::io_error(
                "a C state machine's snapshot",
                &e,
            ));
        }
        if status != jk_status::Ok as u32 {
            panic!(
                "the C state machine {:?} restore_read callback returned status {}: a crash",
                self.name,
                Self::status_text(status)
            );
        }
        Ok(())
    }
}

/// What a `jk_sm_writer` points to: the core's writer and its first error.
struct WriterSlot<'a> {
    out: &'a mut dyn Write,
    error: Option<io::Error>,
}

/// What a `jk_sm_reader` points to: the core's reader and its first error.
struct ReaderSlot<'a> {
    input: &'a mut dyn Read,
    error: Option<io::Error>,
}

/// Sets the result (or refusal message) of the callback that was given `out` to a copy of
/// `len` bytes at `data` (`data` may be NULL when `len` is 0); a second call replaces the
/// first. `JK_STATUS_NULL_ARGUMENT` for a NULL `out` or `data`. Call only from that callback.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_output_set(
    out: *mut jk_sm_output,
    data: *const u8,
    len: usize,
) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let bytes = slice_arg(data, len, "data")?;
        // SAFETY: a non-NULL `out` is the `jk_sm_output` a callback was given, which points to
        // the `Vec<u8>` of the `ForeignMachine` call still on the stack (the header's contract:
        // only during that callback); nothing else borrows it meanwhile.
        let vec = unsafe { &mut *out.cast::<Vec<u8>>() };
        vec.clear();
        vec.extend_from_slice(bytes);
        Ok(())
    }
}

/// Appends `len` bytes at `data` to the snapshot being written (`data` may be NULL when `len`
/// is 0). `JK_STATUS_IO` when the snapshot cannot be written (the callback should then return
/// that status); `JK_STATUS_NULL_ARGUMENT` for a NULL `writer` or `data`. Call only from the
/// `snapshot_write` callback that was given `writer`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_writer_write(
    writer: *mut jk_sm_writer,
    data: *const u8,
    len: usize,
) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        if writer.is_null() {
            return Err(Failure::null("writer"));
        }
        let bytes = slice_arg(data, len, "data")?;
        // SAFETY: a non-NULL `writer` is the one `snapshot_write` was given: a `WriterSlot` on
        // the stack of `ForeignMachine::snapshot`, alive during that callback only (the
        // header's contract); nothing else borrows it meanwhile.
        let slot = unsafe { &mut *writer.cast::<WriterSlot<'_>>() };
        if slot.error.is_some() {
            return Err(Failure::new(jk_status::Io, "an earlier write to this snapshot failed"));
        }
        if let Err(e) = slot.out.write_all(bytes) {
            let msg = format!("cannot write the snapshot: {e}");
            slot.error = Some(e);
            return Err(Failure::new(jk_status::Io, msg));
        }
        Ok(())
    }
}

/// Reads up to `cap` bytes of the snapshot being restored into `buf` and stores how many into
/// `*read_out`: 0 only at the end of the state `snapshot_write` wrote. `JK_STATUS_IO` when it
/// cannot be read; `JK_STATUS_NULL_ARGUMENT` for a NULL `reader`, `read_out` or (with `cap` >
/// 0) `buf`. Call only from the `restore_read` callback that was given `reader`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_reader_read(
    reader: *mut jk_sm_reader,
    buf: *mut u8,
    cap: usize,
    read_out: *mut usize,
) -> jk_status {
    ffi_boundary! { err_out = std::ptr::null_mut();
        if reader.is_null() {
            return Err(Failure::null("reader"));
        }
        let read_out = crate::args::out_arg(read_out, "read_out")?;
        let dest: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            if buf.is_null() {
                return Err(Failure::null("buf"));
            }
            if cap > isize::MAX as usize {
                return Err(Failure::invalid(format!("cap {cap} is too large")));
            }
            // SAFETY: `buf` is non-NULL and points to `cap` writable bytes for the call (the
            // header's contract); the size was checked above.
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        // SAFETY: a non-NULL `reader` is the one `restore_read` was given: a `ReaderSlot` on
        // the stack of `ForeignMachine::restore`, alive during that callback only (the
        // header's contract); nothing else borrows it meanwhile.
        let slot = unsafe { &mut *reader.cast::<ReaderSlot<'_>>() };
        if slot.error.is_some() {
            return Err(Failure::new(jk_status::Io, "an earlier read of this snapshot failed"));
        }
        loop {
            match slot.input.read(dest) {
                Ok(n) => {
                    read_out.set(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let msg = format!("cannot read the snapshot: {e}");
                    slot.error = Some(e);
                    return Err(Failure::new(jk_status::Io, msg));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Echoes the command; "no" is refused with "refused"; "crash" returns JK_STATUS_IO.
    extern "C" fn apply(
        _: *mut c_void,
        _: *const jk_apply_context,
        cmd: *const u8,
        len: usize,
        out: *mut jk_sm_output,
    ) -> u32 {
        // SAFETY: the library passes `len` readable bytes at `cmd`.
        let cmd = unsafe { std::slice::from_raw_parts(cmd, len) };
        match cmd {
            b"no" => {
                jk_sm_output_set(out, b"refused".as_ptr(), 7);
                jk_status::Rejected as u32
            }
            b"crash" => jk_status::Io as u32,
            _ => {
                jk_sm_output_set(out, cmd.as_ptr(), cmd.len());
                jk_status::Ok as u32
            }
        }
    }
    extern "C" fn query(_: *mut c_void, _: *const u8, _: usize, _: *mut jk_sm_output) -> u32 {
        jk_status::Ok as u32
    }
    extern "C" fn snapshot(_: *mut c_void, w: *mut jk_sm_writer) -> u32 {
        jk_sm_writer_write(w, b"state".as_ptr(), 5) as u32
    }
    extern "C" fn restore(_: *mut c_void, r: *mut jk_sm_reader) -> u32 {
        let mut buf = [0u8; 16];
        let mut n = 0;
        let st = jk_sm_reader_read(r, buf.as_mut_ptr(), buf.len(), &mut n);
        if st != jk_status::Ok || &buf[..n] != b"state" {
            return jk_status::Corruption as u32;
        }
        jk_status::Ok as u32
    }
    /// `user_data` is the test's free counter.
    extern "C" fn free(data: *mut c_void) {
        // SAFETY: every table here points `user_data` at a counter that outlives the machine.
        unsafe { &*data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
    }

    fn table(frees: &AtomicUsize) -> jk_state_machine {
        jk_state_machine {
            name: c"echo".as_ptr(),
            user_data: std::ptr::from_ref(frees).cast_mut().cast::<c_void>(),
            apply: Some(apply),
            query: Some(query),
            snapshot_write: Some(snapshot),
            restore_read: Some(restore),
            free: Some(free),
        }
    }

    const CTX: ApplyContext = ApplyContext {
        index: 1,
        term: 1,
        timestamp_ms: 0,
    };

    #[test]
    fn statuses_map_to_results_refusals_and_crashes_and_free_runs_once() {
        let frees = AtomicUsize::new(0);
        let (name, mut m) = ForeignMachine::new(&table(&frees), "m").unwrap();
        assert_eq!(name, "echo");
        assert_eq!(m.apply(&CTX, b"hi").unwrap(), b"hi");
        assert_eq!(
            m.apply(&CTX, b"no"),
            Err(StateError::Rejected("refused".into()))
        );
        let crash = std::panic::catch_unwind(AssertUnwindSafe(|| m.apply(&CTX, b"crash")));
        let msg = crate::panic::panic_message(&*crash.unwrap_err());
        assert!(msg.contains("returned status 7 (IO)"), "{msg}");
        let mut snap = Vec::new();
        m.snapshot(&mut snap).unwrap();
        assert_eq!(snap, b"state");
        m.restore(&mut &snap[..]).unwrap();
        let bad = std::panic::catch_unwind(AssertUnwindSafe(|| m.restore(&mut &b"other"[..])));
        assert!(bad.is_err(), "a failed restore is a crash");
        drop(m);
        assert_eq!(frees.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_table_missing_a_callback_is_refused_and_its_data_freed() {
        let frees = AtomicUsize::new(0);
        let mut t = table(&frees);
        t.apply = None;
        let e = ForeignMachine::new(&t, "machines[0]").err().unwrap();
        assert_eq!(e.status, jk_status::NullArgument);
        assert!(e.message.contains("machines[0].apply"));
        assert_eq!(frees.load(Ordering::SeqCst), 1);
    }
}
