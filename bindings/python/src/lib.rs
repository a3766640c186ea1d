//! Python bindings (pyo3, built by maturin into the `journalkeeper` wheel, abi3 for CPython
//! ≥ 3.11). Thin: converts arguments, results and errors and calls the `journalkeeper` core;
//! no logic of its own. See `docs/architecture/bindings-python.md` for the rules (GIL, runtime,
//! fork, errors, asyncio).
//!
//! Files: `runtime.rs` (the tokio runtime, blocking and asyncio waiting, fork), `errors.rs`
//! (core errors → the Python hierarchy of `journalkeeper/errors.py`), `convert.rs` (arguments
//! and status records), `client.rs` (`Client`, `Watch`, `JournalEntry`, `WatchEvent`),
//! `events.rs` (`Events`: cluster events of a client or an embedded server, as the event
//! classes of `journalkeeper/types.py`), `coord.rs` (`Coord`: the coordination recipes, with
//! `KeepAlive`, `Registration`, `ElectionObserver`, `MembersWatch`), `transactions.rs`
//! (`Transactions`: journal transactions), `sql.rs` (`Sql`: the built-in SQL database),
//! `server.rs` (`Server`). The public Python API is
//! the pure-Python package in `python/`.

mod client;
mod convert;
mod coord;
mod errors;
mod events;
mod process_bound;
mod runtime;
mod server;
mod sql;
mod state_machine;
mod status_detail;
mod transactions;

/// The version the Python package reports; it is the core's.
pub fn version() -> &'static str {
    journalkeeper::VERSION
}

/// The native module, imported as `journalkeeper._native` by the pure-Python package.
#[pyo3::pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::client::{PyClient, PyJournalEntry, PyWatch, PyWatchEvent, connect};
    #[pymodule_export]
    use crate::coord::{PyCoord, PyElectionObserver, PyKeepAlive, PyMembersWatch, PyRegistration};
    #[pymodule_export]
    use crate::events::PyEvents;
    #[pymodule_export]
    use crate::server::PyServer;
    #[pymodule_export]
    use crate::sql::PySql;
    #[pymodule_export]
    use crate::state_machine::{PyApplyContext, PySnapshotReader, PySnapshotWriter};
    #[pymodule_export]
    use crate::transactions::PyTransactions;

    /// The library version, e.g. "0.1.0".
    #[pyfunction]
    fn version() -> &'static str {
        super::version()
    }

    /// The canonical names (roles, response levels, read levels, error codes) as a dict of
    /// lists, from the core.
    #[pyfunction]
    fn vocabulary() -> crate::convert::Vocabulary {
        crate::convert::vocabulary()
    }

    /// The bounds a caller can hit (`max_append_entries`, `max_entry_bytes`, …), from the
    /// core's protocol constants.
    #[pyfunction]
    fn limits() -> std::collections::BTreeMap<&'static str, usize> {
        use journalkeeper::client::protocol as p;
        std::collections::BTreeMap::from([
            ("max_append_entries", p::MAX_APPEND_ENTRIES),
            ("max_entry_bytes", p::MAX_ENTRY_BYTES),
            ("max_append_bytes", p::MAX_APPEND_BYTES),
            ("max_get_entries", p::MAX_GET_ENTRIES as usize),
            ("max_partitions", p::MAX_PARTITIONS),
            ("max_key_bytes", p::MAX_KEY_BYTES),
            ("max_value_bytes", p::MAX_VALUE_BYTES),
            ("max_voters", p::MAX_VOTERS),
            ("max_admin_timeout_ms", p::MAX_ADMIN_TIMEOUT_MS as usize),
        ])
    }

    /// Forgets the parent's tokio runtime in a forked child (registered with
    /// `os.register_at_fork(after_in_child=…)`); the next call builds a new one.
    #[pyfunction]
    fn _after_fork_in_child() {
        crate::runtime::after_fork_in_child();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_version_is_the_core_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
