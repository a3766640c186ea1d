//! The library version: macros in the header (`JK_VERSION_MAJOR/MINOR/PATCH` from the
//! constants here, `JK_VERSION_STRING` built from them by the preprocessor in cbindgen.toml's
//! `after_includes`) and `jk_version()` (the library actually loaded). The constants are
//! literals because cbindgen copies literals; the tests below and `tests/c/version_test.c`
//! compare them with Cargo.toml, so a version bump that forgets them fails `make test`.

use std::ffi::{CStr, c_char};

/// Major version of the library this header describes (Cargo.toml `version`).
pub const JK_VERSION_MAJOR: u32 = 0;
/// Minor version of the library this header describes.
pub const JK_VERSION_MINOR: u32 = 1;
/// Patch version of the library this header describes.
pub const JK_VERSION_PATCH: u32 = 0;

/// NUL-terminated version string, built at compile time from Cargo.toml.
static VERSION_CSTR: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("version string has an interior NUL"),
    };

/// The version of the loaded library as a static NUL-terminated string (e.g. "0.1.0"); equals
/// `JK_VERSION_STRING` when header and library match. Never NULL; owned by the library; do not
/// free. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_version() -> *const c_char {
    ffi_boundary! { default = c"".as_ptr();
        VERSION_CSTR.as_ptr()
    }
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

    #[test]
    fn header_version_macros_match_cargo_toml() {
        assert_eq!(
            JK_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            JK_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            JK_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
    }
}
