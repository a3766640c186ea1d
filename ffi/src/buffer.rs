//! Bytes in and out: `jk_bytes` (a borrowed input range), `jk_buffer` (bytes the library
//! returns, freed with `jk_buffer_free`) and strings the library returns (`jk_string_free`).

use std::ffi::{CString, c_char};

use crate::castable::{free_owned_view, to_owned_view};
use crate::error::lossy_cstring;

/// A byte range passed *to* the library. Borrowed: the library copies what it keeps before the
/// call returns. `data` may be NULL only when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_bytes {
    pub data: *const u8,
    pub len: usize,
}

/// Bytes returned *by* the library. Owned by the caller once returned; free with
/// `jk_buffer_free` (never `free()`). Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_buffer {
    /// Never NULL (points to no bytes when `len` is 0).
    pub data: *const u8,
    pub len: usize,
}

/// A `jk_buffer` view of `bytes` (data pointing into `bytes`' heap storage).
pub(crate) fn buffer_view(bytes: &[u8]) -> jk_buffer {
    jk_buffer {
        data: bytes.as_ptr(),
        len: bytes.len(),
    }
}

/// A heap `jk_buffer` owning `bytes`, for `jk_buffer_free`.
pub(crate) fn to_buffer(bytes: Vec<u8>) -> *mut jk_buffer {
    to_owned_view(bytes, |b| buffer_view(b))
}

/// An optional heap buffer (NULL for `None`).
pub(crate) fn to_opt_buffer(bytes: Option<Vec<u8>>) -> *mut jk_buffer {
    bytes.map_or(std::ptr::null_mut(), to_buffer)
}

/// Frees a buffer returned by the library. NULL is allowed. Do not use `buffer` afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn jk_buffer_free(buffer: *mut jk_buffer) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_buffer, Vec<u8>>(buffer);
    }
}

/// A string for the caller (`jk_string_free`); interior NULs, which C cannot see, become `?`.
pub(crate) fn to_c_string(s: String) -> *mut c_char {
    lossy_cstring(s).into_raw()
}

/// Frees a string returned by the library. NULL is allowed. Do not use `s` afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn jk_string_free(s: *mut c_char) {
    ffi_boundary! { default = ();
        if !s.is_null() {
            // SAFETY: strings returned to C come from `CString::into_raw` (`to_c_string`) and
            // are freed once (the header's contract).
            drop(unsafe { CString::from_raw(s) });
        }
    }
}

/// A key (any bytes, possibly with NULs) as C sees it: a NUL-terminated copy plus its length.
pub(crate) fn key_bytes(key: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(key.len() + 1);
    v.extend_from_slice(key.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_owns_its_bytes_until_freed() {
        let b = to_buffer(vec![1, 2, 3]);
        // SAFETY: `b` is a live buffer made above.
        let view = unsafe { &*b };
        // SAFETY: `data` points to `len` bytes owned by `b`.
        let bytes = unsafe { std::slice::from_raw_parts(view.data, view.len) };
        assert_eq!(bytes, &[1, 2, 3]);
        jk_buffer_free(b);
        jk_buffer_free(std::ptr::null_mut());
        jk_string_free(std::ptr::null_mut());
        jk_string_free(to_c_string("x\0y".into()));
    }
}
