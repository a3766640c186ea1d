//! Arguments from C: strings, byte ranges, arrays, enum values and out-pointers, each checked
//! (NULL → `NullArgument`, malformed → `InvalidArgument`, naming the argument) before any work
//! is done, so a failed call has no effect.

use std::ffi::{CStr, c_char};

use journalkeeper::api::{QueryConsistency, ResponseConfig};

use crate::buffer::jk_bytes;
use crate::client::{jk_query_consistency, jk_response_config};
use crate::error::Failure;

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: a non-NULL string argument points to a NUL-terminated string that stays valid
    // for the call (the header's contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|e| Failure::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// An array argument of `len` elements (`ptr` may be NULL only when `len` is 0).
pub(crate) fn slice_arg<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if len
        .checked_mul(size_of::<T>().max(1))
        .is_none_or(|n| n > isize::MAX as usize)
    {
        return Err(Failure::invalid(format!(
            "{what}: length {len} is too large"
        )));
    }
    // SAFETY: `ptr` is non-NULL and points to `len` initialized elements valid for the call
    // (the header's contract); the total size fits in isize (checked above).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The bytes of a `jk_bytes` argument.
pub(crate) fn bytes_arg<'a>(b: &jk_bytes, what: &str) -> Result<&'a [u8], Failure> {
    slice_arg(b.data, b.len, what)
}

/// An optional pointer-to-struct argument (NULL: `None`).
pub(crate) fn opt_ref_arg<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: a non-NULL pointer argument points to a valid `T` for the call (the header's
    // contract).
    unsafe { ptr.as_ref() }
}

/// A required pointer-to-struct argument.
pub(crate) fn ref_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    opt_ref_arg(ptr).ok_or_else(|| Failure::null(what))
}

/// A place to store a result, checked before the call does anything.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub fn set(self, value: T) {
        // SAFETY: the pointer was checked non-NULL by `out_arg` / `opt_out_arg` and points to
        // writable memory for a `T` (the header's contract). `write`: the old value is not
        // dropped (it is uninitialized or plain data from C).
        unsafe { self.0.write(value) }
    }
}

/// A required out-pointer.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> Result<Out<T>, Failure> {
    if ptr.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(Out(ptr))
    }
}

/// An optional out-pointer (NULL: the caller does not want that result).
pub(crate) fn opt_out_arg<T>(ptr: *mut T) -> Option<Out<T>> {
    (!ptr.is_null()).then_some(Out(ptr))
}

/// A `jk_response_config` value (passed as `uint32_t`: an out-of-range value is an error, not
/// undefined behaviour).
pub(crate) fn response_arg(raw: u32) -> Result<ResponseConfig, Failure> {
    Ok(match raw {
        x if x == jk_response_config::OneWay as u32 => ResponseConfig::OneWay,
        x if x == jk_response_config::Receive as u32 => ResponseConfig::Receive,
        x if x == jk_response_config::Persistence as u32 => ResponseConfig::Persistence,
        x if x == jk_response_config::Replication as u32 => ResponseConfig::Replication,
        x if x == jk_response_config::All as u32 => ResponseConfig::All,
        other => {
            return Err(Failure::invalid(format!(
                "response {other} is not a jk_response_config"
            )));
        }
    })
}

/// A `jk_query_consistency` value (passed as `uint32_t`, like `response_arg`).
pub(crate) fn consistency_arg(raw: u32) -> Result<QueryConsistency, Failure> {
    Ok(match raw {
        x if x == jk_query_consistency::Strict as u32 => QueryConsistency::Strict,
        x if x == jk_query_consistency::Sequential as u32 => QueryConsistency::Sequential,
        x if x == jk_query_consistency::None as u32 => QueryConsistency::None,
        other => {
            return Err(Failure::invalid(format!(
                "consistency {other} is not a jk_query_consistency"
            )));
        }
    })
}
