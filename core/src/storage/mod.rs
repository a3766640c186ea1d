//! Durable storage: segmented journal, partition indices, metadata, snapshot directories.
