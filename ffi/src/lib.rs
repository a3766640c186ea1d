//! `libjournalkeeper`: the C ABI of JournalKeeper-rs. Thin: every export converts arguments,
//! calls the `journalkeeper` core and converts the result. The full API comes with issue #5.

use std::ffi::{CStr, c_char};

/// NUL-terminated version string, built at compile time from Cargo.toml.
static VERSION_CSTR: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("version string has an interior NUL"),
    };

/// The library version as a static NUL-terminated string (e.g. "0.1.0"). Never NULL; owned by
/// the library; do not free. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_version() -> *const c_char {
    VERSION_CSTR.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_core_and_cargo_toml() {
        // SAFETY: jk_version returns a pointer to a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(jk_version()) };
        assert_eq!(v.to_str().unwrap(), journalkeeper::VERSION);
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
