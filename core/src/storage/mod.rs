//! Durable storage: segmented journal, partition indices, metadata, snapshot directories.
//!
//! Everything here does blocking file I/O and is `Send + Sync`; nothing here knows Raft's rules
//! beyond "indices are contiguous and terms never decrease". See `ARCHITECTURE-storage.md`.

mod error;
mod fsutil;
mod group_commit;
mod journal;
mod metadata;
mod partition_index;
mod record;
mod segment;
mod snapshot_store;

pub use error::{Result, StorageError};
pub use journal::{Journal, JournalOptions};
pub use metadata::{Metadata, MetadataStore};
pub use partition_index::PartitionIndex;
pub use record::{HEADER_LEN, Record};
pub use snapshot_store::SnapshotStore;
