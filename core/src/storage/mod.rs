//! Durable storage: segmented journal, partition indices, metadata, snapshot directories.
//!
//! Everything here does blocking file I/O and is `Send + Sync`; nothing here knows Raft's rules
//! beyond "indices are contiguous and terms never decrease". See `ARCHITECTURE-storage.md`.
//!
//! ```
//! use journalkeeper::storage::{Journal, JournalOptions, Record};
//!
//! let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path(), JournalOptions::default())?;
//! let batch: Vec<Record> = (1..=3)
//!     .map(|index| Record { term: 1, index, payload: b"hello".to_vec(), ..Record::default() })
//!     .collect();
//! journal.append(&batch)?; // written, not yet durable
//! assert_eq!(journal.sync()?, 3); // group commit: durable up to 3
//! assert_eq!(journal.read(2, 10, 1 << 20)?, batch[1..].to_vec());
//! journal.truncate_suffix(3)?; // a Raft conflict at index 3
//! journal.compact_prefix(1)?; // first_index becomes 2; term_at(1) still answers
//! assert_eq!((journal.first_index(), journal.last_index(), journal.term_at(1)?), (2, 2, 1));
//! journal.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
pub use journal::{DetachedSegments, Journal, JournalOptions};
pub use metadata::{Metadata, MetadataStore};
pub use partition_index::{PartitionIndex, PendingCheckpoint, Placer, own_partition};
pub use record::{HEADER_LEN, Record};
pub use snapshot_store::SnapshotStore;
