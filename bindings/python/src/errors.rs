//! The core's [`Error`] as a Python exception of the matching class.
//!
//! The hierarchy itself lives in `journalkeeper/errors.py` (it uses multiple inheritance, e.g.
//! `InvalidArgumentError(JournalKeeperError, ValueError)`); this file only calls its
//! `_from_native(code, message, leader_hint)`. Never does: choosing a kind — the core did.

use journalkeeper::api::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The exception for `error`: `journalkeeper.errors.<Kind>Error(message)` with `.code`,
/// `.kind` and `.leader_hint`.
pub fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| match make(py, &error) {
        Ok(exception) => PyErr::from_value(exception),
        // Only when the pure-Python package is broken; still say what failed.
        Err(e) => PyRuntimeError::new_err(format!("{error} (and mapping it failed: {e})")),
    })
}

fn make<'py>(py: Python<'py>, error: &Error) -> PyResult<Bound<'py, PyAny>> {
    static FROM_NATIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let from_native = FROM_NATIVE.import(py, "journalkeeper.errors", "_from_native")?;
    from_native.call1((
        error.kind.code(),
        error.message.as_str(),
        error.leader_hint.as_deref(),
    ))
}

/// An `InvalidArgumentError` naming the bad argument (for checks of Python-side values such
/// as ranges and enum names, before the core is called).
pub fn invalid(message: impl Into<String>) -> PyErr {
    to_py_err(Error::new(ErrorKind::InvalidArgument, message))
}
