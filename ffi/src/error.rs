//! Status codes and error objects: `jk_status` (one value per `api::ErrorKind`, plus the
//! library's own `NULL_ARGUMENT` and `PANIC`) and `jk_error` (kind, code string, message, leader
//! hint). Never does: decide what is an error (the core does), or keep any global "last error".

use std::ffi::{CStr, CString, c_char};

use journalkeeper::api::{Error, ErrorKind};

use crate::castable::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};

/// The result of every call that can fail. `JK_STATUS_OK` (0) is success; each other value is
/// one error kind (the same kinds in every language binding), see `jk_status_code`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_status {
    /// Success.
    Ok = 0,
    /// The node is not the leader (the error carries a leader hint when known).
    NotLeader = 1,
    /// The operation did not complete in time; it may or may not have taken effect.
    Timeout = 2,
    /// The index is at or beyond the end of the partition.
    IndexOverflow = 3,
    /// The index is before the start (compacted away).
    IndexUnderflow = 4,
    /// An argument is malformed or out of bounds (the message names it).
    InvalidArgument = 5,
    /// The client, server or watch was closed.
    Closed = 6,
    /// An operating-system I/O error.
    Io = 7,
    /// Stored data failed its checks.
    Corruption = 8,
    /// A transaction could not be created, appended to or completed.
    Transaction = 9,
    /// No quorum or no leader could be reached.
    Unavailable = 10,
    /// A bug in the library: an invariant did not hold.
    Internal = 11,
    /// A server refused the connection because its cluster id differs from the client's (a
    /// configuration error; the call fails at once and is not retried).
    WrongCluster = 12,
    /// The lease does not exist: it expired, was revoked or was never granted (what was held
    /// under it is gone too).
    LeaseExpired = 13,
    /// A state machine applied the command and refused it (a deterministic result, the same on
    /// every node); the message is the machine's.
    Rejected = 14,
    /// A required pointer argument was NULL (the message names it).
    NullArgument = 100,
    /// The library panicked (a bug); the call had no effect or an unknown one. The library is
    /// still usable.
    Panic = 101,
}

impl jk_status {
    /// The stable identifier (`"INDEX_OVERFLOW"`, …); for core kinds, `ErrorKind::code()`.
    pub(crate) fn code(self) -> &'static CStr {
        match self {
            jk_status::Ok => c"OK",
            jk_status::NotLeader => c"NOT_LEADER",
            jk_status::Timeout => c"TIMEOUT",
            jk_status::IndexOverflow => c"INDEX_OVERFLOW",
            jk_status::IndexUnderflow => c"INDEX_UNDERFLOW",
            jk_status::InvalidArgument => c"INVALID_ARGUMENT",
            jk_status::Closed => c"CLOSED",
            jk_status::Io => c"IO",
            jk_status::Corruption => c"CORRUPTION",
            jk_status::Transaction => c"TRANSACTION",
            jk_status::Unavailable => c"UNAVAILABLE",
            jk_status::Internal => c"INTERNAL",
            jk_status::WrongCluster => c"WRONG_CLUSTER",
            jk_status::LeaseExpired => c"LEASE_EXPIRED",
            jk_status::Rejected => c"REJECTED",
            jk_status::NullArgument => c"NULL_ARGUMENT",
            jk_status::Panic => c"PANIC",
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<jk_status> {
        const ALL: [jk_status; 17] = [
            jk_status::Ok,
            jk_status::NotLeader,
            jk_status::Timeout,
            jk_status::IndexOverflow,
            jk_status::IndexUnderflow,
            jk_status::InvalidArgument,
            jk_status::Closed,
            jk_status::Io,
            jk_status::Corruption,
            jk_status::Transaction,
            jk_status::Unavailable,
            jk_status::Internal,
            jk_status::WrongCluster,
            jk_status::LeaseExpired,
            jk_status::Rejected,
            jk_status::NullArgument,
            jk_status::Panic,
        ];
        ALL.into_iter().find(|s| *s as u32 == raw)
    }
}

impl From<ErrorKind> for jk_status {
    fn from(kind: ErrorKind) -> Self {
        // Exhaustive: a new core kind does not compile until it has a status.
        match kind {
            ErrorKind::NotLeader => jk_status::NotLeader,
            ErrorKind::Timeout => jk_status::Timeout,
            ErrorKind::IndexOverflow => jk_status::IndexOverflow,
            ErrorKind::IndexUnderflow => jk_status::IndexUnderflow,
            ErrorKind::InvalidArgument => jk_status::InvalidArgument,
            ErrorKind::Closed => jk_status::Closed,
            ErrorKind::Io => jk_status::Io,
            ErrorKind::Corruption => jk_status::Corruption,
            ErrorKind::Transaction => jk_status::Transaction,
            ErrorKind::Unavailable => jk_status::Unavailable,
            ErrorKind::Internal => jk_status::Internal,
            ErrorKind::WrongCluster => jk_status::WrongCluster,
            ErrorKind::LeaseExpired => jk_status::LeaseExpired,
            ErrorKind::Rejected => jk_status::Rejected,
        }
    }
}

/// Why a call failed, before it becomes a `jk_error`.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub status: jk_status,
    pub message: String,
    pub leader_hint: Option<String>,
}

impl Failure {
    pub fn new(status: jk_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            leader_hint: None,
        }
    }

    /// A NULL pointer where `what` was required.
    pub fn null(what: &str) -> Self {
        Failure::new(jk_status::NullArgument, format!("{what} must not be NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(jk_status::InvalidArgument, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            status: e.kind.into(),
            message: e.message,
            leader_hint: e.leader_hint,
        }
    }
}

/// Details of a failed call. Opaque; read it with the `jk_error_*` accessors and free it with
/// `jk_error_free`. Immutable: the accessors may be called from any thread.
pub struct jk_error {
    _private: [u8; 0],
}

pub(crate) struct ErrorObject {
    status: jk_status,
    message: CString,
    leader_hint: Option<CString>,
}

impl Castable for jk_error {
    type Ownership = OwnershipBox;
    type RustType = ErrorObject;
}

/// A C string of `s`, with any interior NUL replaced (messages must never fail to convert).
pub(crate) fn lossy_cstring(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let bytes: Vec<u8> = e
            .into_vec()
            .into_iter()
            .map(|b| if b == 0 { b'?' } else { b })
            .collect();
        CString::new(bytes).unwrap_or_default()
    })
}

impl Failure {
    pub(crate) fn into_error(self) -> *mut jk_error {
        to_boxed_mut_ptr::<jk_error>(ErrorObject {
            status: self.status,
            message: lossy_cstring(self.message),
            leader_hint: self.leader_hint.map(lossy_cstring),
        })
    }
}

/// A `jk_error` that a returned view points to (`jk_node_snapshots.error`): freed with the
/// view's storage, never by the caller.
pub(crate) struct OwnedError(*mut jk_error);

impl OwnedError {
    pub fn new(failure: Failure) -> Self {
        OwnedError(failure.into_error())
    }

    pub fn as_ptr(&self) -> *const jk_error {
        self.0
    }
}

impl Drop for OwnedError {
    fn drop(&mut self) {
        drop(free_box::<jk_error>(self.0));
    }
}

/// Ends a status-returning export (see `ffi_boundary!`): maps the body's outcome to a status
/// and stores the error (or NULL) into `*err_out` when `err_out` is not NULL.
pub(crate) fn report(
    err_out: *mut *mut jk_error,
    outcome: std::thread::Result<Result<(), Failure>>,
) -> jk_status {
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some(f),
        Err(payload) => Some(Failure::new(
            jk_status::Panic,
            crate::panic::panic_message(payload.as_ref()),
        )),
    };
    let status = failure.as_ref().map_or(jk_status::Ok, |f| f.status);
    if !err_out.is_null() {
        let error = failure.map_or(std::ptr::null_mut(), Failure::into_error);
        // SAFETY: a non-NULL `err_out` points to a writable `jk_error *` (the header's contract).
        unsafe { err_out.write(error) };
    }
    status
}

fn error_ref<'a>(error: *const jk_error) -> Option<&'a ErrorObject> {
    crate::castable::try_ref::<jk_error>(error, "error").ok()
}

/// The status of a failed call. `JK_STATUS_NULL_ARGUMENT` for a NULL `error`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_error_status(error: *const jk_error) -> jk_status {
    ffi_boundary! { default = jk_status::Panic;
        error_ref(error).map_or(jk_status::NullArgument, |e| e.status)
    }
}

/// The stable code of the error's status (`"INDEX_OVERFLOW"`, …), as `jk_status_code`. Static;
/// never NULL (`"NULL_ARGUMENT"` for a NULL `error`).
#[unsafe(no_mangle)]
pub extern "C" fn jk_error_code(error: *const jk_error) -> *const c_char {
    ffi_boundary! { default = c"PANIC".as_ptr();
        error_ref(error).map_or(jk_status::NullArgument, |e| e.status).code().as_ptr()
    }
}

/// The message, naming what went wrong. Owned by `error`: valid until `jk_error_free(error)`.
/// NULL for a NULL `error`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_error_message(error: *const jk_error) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        error_ref(error).map_or(std::ptr::null(), |e| e.message.as_ptr())
    }
}

/// For `JK_STATUS_NOT_LEADER`: the leader's address (`"host:port"`) when known, else NULL.
/// Owned by `error`: valid until `jk_error_free(error)`.
#[unsafe(no_mangle)]
pub extern "C" fn jk_error_leader_hint(error: *const jk_error) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        error_ref(error)
            .and_then(|e| e.leader_hint.as_ref())
            .map_or(std::ptr::null(), |h| h.as_ptr())
    }
}

/// Frees an error. NULL is allowed (nothing happens). Do not use `error` afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn jk_error_free(error: *mut jk_error) {
    ffi_boundary! { default = ();
        drop(free_box::<jk_error>(error));
    }
}

/// The stable code of a status (`"OK"`, `"NOT_LEADER"`, `"INDEX_OVERFLOW"`, …; the same strings
/// as the other language bindings). Static; never NULL (`"UNKNOWN"` for a value not in
/// `jk_status`). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_status_code(status: u32) -> *const c_char {
    ffi_boundary! { default = c"PANIC".as_ptr();
        jk_status::from_raw(status).map_or(c"UNKNOWN".as_ptr(), |s| s.code().as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_kind_has_a_status_with_the_same_code() {
        for kind in ErrorKind::ALL {
            let status = jk_status::from(kind);
            assert_eq!(status.code().to_str().unwrap(), kind.code());
            assert_eq!(jk_status::from_raw(status as u32), Some(status));
        }
        assert_eq!(jk_status::from_raw(12345), None);
    }

    #[test]
    fn report_stores_the_error_or_null_and_returns_its_status() {
        let mut err: *mut jk_error = std::ptr::dangling_mut();
        let status = report(&mut err, Ok(Ok(())));
        assert_eq!(status, jk_status::Ok);
        assert!(err.is_null());
        let e = Error::not_leader(Some("127.0.0.1:1".into()));
        let status = report(&mut err, Ok(Err(e.into())));
        assert_eq!(status, jk_status::NotLeader);
        assert_eq!(jk_error_status(err), jk_status::NotLeader);
        // SAFETY: accessors return NUL-terminated strings owned by `err`, alive until freed.
        let hint = unsafe { CStr::from_ptr(jk_error_leader_hint(err)) };
        assert_eq!(hint.to_str().unwrap(), "127.0.0.1:1");
        jk_error_free(err);
    }

    #[test]
    fn a_panic_becomes_the_panic_status_with_its_message() {
        let mut err: *mut jk_error = std::ptr::null_mut();
        let explode = std::hint::black_box(true);
        let status = ffi_boundary! { err_out = &mut err;
            if explode { panic!("boom") }
            Ok(())
        };
        assert_eq!(status, jk_status::Panic);
        // SAFETY: the message is a NUL-terminated string owned by `err`.
        let msg = unsafe { CStr::from_ptr(jk_error_message(err)) };
        assert!(msg.to_str().unwrap().contains("boom"));
        jk_error_free(err);
    }

    #[test]
    fn interior_nuls_do_not_lose_a_message() {
        assert_eq!(lossy_cstring("a\0b".into()).to_str().unwrap(), "a?b");
    }
}
