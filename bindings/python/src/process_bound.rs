//! [`ProcessBound`]: a value made in one process that a forked child must neither use nor drop.
//!
//! A child of `os.fork()` has a copy of the parent's memory but none of its threads. A client,
//! watch or node belongs to the parent's tokio runtime, whose locks a parent thread may have
//! held at the instant of the fork; in the child nobody will ever release them. So in a child
//! such a value is never touched: using it fails with `ClosedError`, and dropping it (the
//! child's garbage collector may) leaks it, because its destructor would wake tasks of the
//! parent's runtime and could wait forever on one of those locks.

use journalkeeper::api::{Error, ErrorKind};
use pyo3::PyResult;

use crate::errors::to_py_err;
use crate::runtime::check_process;

/// `T`, usable and droppable only in the process that made it.
pub struct ProcessBound<T> {
    pid: u32,
    /// `Some` until dropped.
    value: Option<T>,
}

impl<T> ProcessBound<T> {
    pub fn new(value: T) -> Self {
        ProcessBound {
            pid: std::process::id(),
            value: Some(value),
        }
    }

    /// The value, in the process that made it; `None` in a forked child.
    pub fn local(&self) -> Option<&T> {
        if self.pid == std::process::id() {
            self.value.as_ref()
        } else {
            None
        }
    }

    /// The value; in a forked child `ClosedError` saying that this `what` (e.g. "Client")
    /// belongs to the parent.
    pub fn get(&self, what: &str) -> PyResult<&T> {
        check_process(self.pid, what)?;
        self.value.as_ref().ok_or_else(|| {
            to_py_err(Error::new(
                ErrorKind::Closed,
                format!("this {what} is gone"),
            ))
        })
    }
}

impl<T> Drop for ProcessBound<T> {
    fn drop(&mut self) {
        if self.pid != std::process::id()
            && let Some(parents) = self.value.take()
        {
            std::mem::forget(parents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its drops, to tell a drop from a leak.
    struct Counted(std::rc::Rc<std::cell::Cell<u32>>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn a_value_made_here_is_usable_and_dropped() {
        let drops = std::rc::Rc::new(std::cell::Cell::new(0));
        let bound = ProcessBound::new(Counted(drops.clone()));
        assert!(bound.local().is_some());
        drop(bound);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn a_value_from_another_process_is_neither_usable_nor_dropped() {
        let drops = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut bound = ProcessBound::new(Counted(drops.clone()));
        bound.pid = std::process::id().wrapping_add(1); // as a forked child sees it
        assert!(bound.local().is_none());
        drop(bound);
        assert_eq!(drops.get(), 0, "dropped in a process that did not make it");
    }
}
