//! Node.js bindings (napi-rs). Thin: converts arguments and errors and calls the
//! `journalkeeper` core; no logic of its own. The full Promise-based API comes with issue #5.

use napi_derive::napi;

/// The version the Node package reports; it is the core's.
pub fn core_version() -> &'static str {
    journalkeeper::VERSION
}

/// The library version, e.g. "0.1.0".
#[napi]
pub fn version() -> &'static str {
    core_version()
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_version_is_the_core_version() {
        assert_eq!(super::core_version(), env!("CARGO_PKG_VERSION"));
    }
}
