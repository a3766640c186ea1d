//! The storage layer's single error type. Every message names the file, offset or index involved.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias for the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Every way a storage operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system I/O error on a named file or directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record that is not the torn tail failed validation.
    #[error("corrupt record in {path} at offset {offset}: {reason}")]
    CorruptRecord {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record inside the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A small file (metadata, partition index state, snapshot marker, ...) failed validation.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A record's payload is larger than the configured maximum.
    #[error("record {index} has a payload of {size} bytes, above the maximum of {max}")]
    RecordTooLarge {
        /// Index of the offending record.
        index: u64,
        /// Its payload size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Appended records must carry `index == last_index + 1`.
    #[error("non-contiguous append: expected index {expected}, got {got}")]
    NonContiguous {
        /// The index the journal expected.
        expected: u64,
        /// The index that was supplied.
        got: u64,
    },
    /// Terms in the log never decrease.
    #[error("record {index} has term {term}, below the previous term {previous}")]
    TermRegression {
        /// Index of the offending record.
        index: u64,
        /// Its term.
        term: u64,
        /// Term of the record before it.
        previous: u64,
    },
    /// The index lies below the first retained index.
    #[error("index {index} is compacted (first index is {first_index})")]
    Compacted {
        /// The requested index.
        index: u64,
        /// The first index still in the journal.
        first_index: u64,
    },
    /// The index lies beyond the end.
    #[error("index {index} is beyond the last index {last_index}")]
    OutOfRange {
        /// The requested index.
        index: u64,
        /// The last index present.
        last_index: u64,
    },
    /// A caller-supplied argument or option is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A named item (snapshot, partition) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The journal was closed.
    #[error("the journal is closed")]
    Closed,
    /// A write failed and could not be rolled back; the journal refuses further work.
    #[error("the journal is unusable after a failed write: {0}")]
    Poisoned(String),
}

impl StorageError {
    /// Wraps an [`io::Error`] with the path it concerns.
    pub fn io(path: &Path, source: io::Error) -> Self {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A corrupt-file error for `path`.
    pub fn corrupt_file(path: &Path, reason: impl Into<String>) -> Self {
        StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Converts the error into [`StorageError::Io`] naming `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
