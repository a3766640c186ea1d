//! Python bindings (pyo3, built by maturin) — thin translation of the core's API. Issue #5.

/// The version the Python package reports; it is the core's.
pub fn version() -> &'static str {
    journalkeeper::VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_version_is_the_core_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
