//! The bounds a caller can hit, as header constants (`JK_MAX_*`). They are literals because
//! cbindgen copies literals; the test below compares each with the core's, so they cannot
//! drift. Crossing one gives `JK_STATUS_INVALID_ARGUMENT` with a message naming it.

/// Most entries in one `jk_journal_append` / `jk_journal_append_async` batch.
pub const JK_MAX_APPEND_ENTRIES: usize = 4096;
/// Largest payload of one journal entry, in bytes (4 MiB).
pub const JK_MAX_ENTRY_BYTES: usize = 4194304;
/// Largest sum of the payloads of one append call, in bytes (8 MiB).
pub const JK_MAX_APPEND_BYTES: usize = 8388608;
/// Largest `max_entries` of one `jk_journal_get` (a reply may hold fewer, to fit a frame).
pub const JK_MAX_GET_ENTRIES: u32 = 4096;
/// Most partitions in one `jk_journal_scale_partitions` set.
pub const JK_MAX_PARTITIONS: usize = 4096;
/// Longest KV key, in bytes of UTF-8 (the servers' default limit).
pub const JK_MAX_KEY_BYTES: usize = 4096;
/// Largest KV value, in bytes (1 MiB; the servers' default limit).
pub const JK_MAX_VALUE_BYTES: usize = 1048576;
/// Most voters of one `jk_admin_update_voters` (the new set).
pub const JK_MAX_VOTERS: usize = 64;
/// Longest `timeout_ms` of an admin change (`jk_admin_update_voters`, `jk_admin_add_voter`,
/// `jk_admin_remove_voter`, `jk_admin_transfer_leader`): 10 minutes.
pub const JK_MAX_ADMIN_TIMEOUT_MS: u64 = 600000;
/// Most statements in one `jk_sql_execute`.
pub const JK_SQL_MAX_STATEMENTS: usize = 1024;
/// Longest SQL text of one statement, in bytes (64 KiB).
pub const JK_SQL_MAX_SQL_BYTES: usize = 65536;
/// Most positional parameters of one SQL statement.
pub const JK_SQL_MAX_PARAMS: usize = 999;

#[cfg(test)]
mod tests {
    use journalkeeper::client::protocol as p;

    #[test]
    fn header_bounds_are_the_cores() {
        assert_eq!(super::JK_MAX_APPEND_ENTRIES, p::MAX_APPEND_ENTRIES);
        assert_eq!(super::JK_MAX_ENTRY_BYTES, p::MAX_ENTRY_BYTES);
        assert_eq!(super::JK_MAX_APPEND_BYTES, p::MAX_APPEND_BYTES);
        assert_eq!(super::JK_MAX_GET_ENTRIES, p::MAX_GET_ENTRIES);
        assert_eq!(super::JK_MAX_PARTITIONS, p::MAX_PARTITIONS);
        assert_eq!(super::JK_MAX_KEY_BYTES, p::MAX_KEY_BYTES);
        assert_eq!(super::JK_MAX_VALUE_BYTES, p::MAX_VALUE_BYTES);
        assert_eq!(super::JK_MAX_VOTERS, p::MAX_VOTERS);
        assert_eq!(super::JK_MAX_ADMIN_TIMEOUT_MS, p::MAX_ADMIN_TIMEOUT_MS);
        use journalkeeper::state::sql;
        assert_eq!(super::JK_SQL_MAX_STATEMENTS, sql::MAX_STATEMENTS);
        assert_eq!(super::JK_SQL_MAX_SQL_BYTES, sql::MAX_SQL_BYTES);
        assert_eq!(super::JK_SQL_MAX_PARAMS, sql::MAX_PARAMS);
    }
}
