//! How storage and raft errors reach a client: each maps to one API error kind.

use crate::api::{Error, ErrorKind};
use crate::raft::RaftError;
use crate::storage::StorageError;

pub(crate) fn storage_error(e: StorageError) -> Error {
    let kind = match &e {
        StorageError::Io { .. } => ErrorKind::Io,
        StorageError::CorruptRecord { .. } | StorageError::CorruptFile { .. } => {
            ErrorKind::Corruption
        }
        StorageError::Compacted { .. } => ErrorKind::IndexUnderflow,
        StorageError::OutOfRange { .. } => ErrorKind::IndexOverflow,
        StorageError::InvalidArgument(_) | StorageError::RecordTooLarge { .. } => {
            ErrorKind::InvalidArgument
        }
        StorageError::Closed => ErrorKind::Closed,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, e.to_string())
}

pub(super) fn raft_error(e: RaftError, hint: Option<String>) -> Error {
    match e {
        RaftError::NotLeader { .. } => Error::not_leader(hint),
        RaftError::TransferInProgress(_) | RaftError::ConfChangeInProgress => {
            Error::new(ErrorKind::Unavailable, e.to_string())
        }
        RaftError::TooManyPendingReads => Error::new(ErrorKind::Unavailable, e.to_string()),
        RaftError::InvalidArgument(_) | RaftError::InvalidConfig(_) => {
            Error::new(ErrorKind::InvalidArgument, e.to_string())
        }
        RaftError::SnapshotUnavailable { .. } => Error::new(ErrorKind::Internal, e.to_string()),
    }
}

pub(super) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}
