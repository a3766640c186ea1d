//! Python bindings (pyo3, built by maturin into the `journalkeeper` wheel). Thin: converts
//! arguments and errors and calls the `journalkeeper` core; no logic of its own. The full API
//! (Server, Client, journal, kv, exceptions, asyncio) comes with issue #5.

use pyo3::prelude::*;

/// The version the Python package reports; it is the core's.
pub fn version() -> &'static str {
    journalkeeper::VERSION
}

/// The native module, imported as `journalkeeper._native` by the pure-Python package.
#[pymodule]
mod _native {
    use pyo3::prelude::*;

    /// The library version, e.g. "0.1.0".
    #[pyfunction]
    fn version() -> &'static str {
        super::version()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_version_is_the_core_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
