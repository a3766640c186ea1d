//! The built-in SQL state machine (hosted as `jk.sql` on every node): a replicated SQLite
//! database (rusqlite, SQLite bundled, in memory).
//!
//! `execute` (through the log) runs a batch of statements in one transaction — all or nothing;
//! an SQL error refuses the whole batch (`Rejected`, the statement named) and changes nothing.
//! `query` runs one read-only `SELECT`. Determinism is enforced at prepare time by [`guard`];
//! the leader's timestamp is the named parameter [`LEADER_TIME_PARAM`]. Snapshots are SQLite's
//! online backup, written to a temporary file and streamed from it (and back).
//!
//! What keeps replicas equal beyond the guard: a [`budget`] of SQLite instructions per execute
//! and per query (a runaway statement is refused, not run forever); `last_insert_id` counts only
//! the batch's own inserts (a restored replica has no connection history); no table may reach
//! rowid `i64::MAX` (SQLite then picks new rowids at random). Foreign keys are enforced, and the
//! connection runs in SQLite's defensive mode with an untrusted schema.

mod budget;
mod guard;

pub use budget::MAX_VM_INSTRUCTIONS;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, MAIN_DB, Statement};
use serde::{Deserialize, Serialize};

use super::{ApplyContext, StateError, StateMachine, io_error};

/// The name the SQL machine is hosted under.
pub const SQL_MACHINE: &str = "jk.sql";
/// The named parameter bound to the leader's timestamp (milliseconds since the epoch).
pub const LEADER_TIME_PARAM: &str = ":jk_timestamp_ms";
/// Most statements in one execute.
pub const MAX_STATEMENTS: usize = 1024;
/// Longest statement text.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Most parameters of one statement.
pub const MAX_PARAMS: usize = 999;
/// Largest query answer (its values' sizes summed).
pub const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;

/// A value in a statement's parameters or a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// One statement with its positional parameters (`?1`, `?2`, … or `?`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlStatement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlStatement {
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Self {
        SqlStatement {
            sql: sql.into(),
            params,
        }
    }
}

/// What an execute changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteResult {
    /// Rows inserted, updated or deleted by the batch's statements (and their triggers).
    pub rows_affected: u64,
    /// The rowid of the last row this batch inserted (0 when it inserted none).
    pub last_insert_id: i64,
}

/// The answer to a query: column names and rows of typed values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// An execute as the log carries it.
pub fn encode_execute(statements: &[SqlStatement]) -> Vec<u8> {
    postcard::to_allocvec(statements).unwrap_or_default()
}

/// A query as `SmQuery` carries it.
pub fn encode_query(query: &SqlStatement) -> Vec<u8> {
    postcard::to_allocvec(query).unwrap_or_default()
}

pub fn decode_execute_result(bytes: &[u8]) -> Result<ExecuteResult, StateError> {
    super::decode("SQL execute result", bytes)
}

pub fn decode_query_result(bytes: &[u8]) -> Result<QueryResult, StateError> {
    super::decode("SQL query result", bytes)
}

/// Checks the bounds of statements before they are sent.
pub fn check_statements(statements: &[SqlStatement]) -> Result<(), StateError> {
    if statements.is_empty() || statements.len() > MAX_STATEMENTS {
        return Err(StateError::InvalidArgument(format!(
            "an execute holds 1..={MAX_STATEMENTS} statements, not {}",
            statements.len()
        )));
    }
    statements.iter().try_for_each(check_statement)
}

fn check_statement(s: &SqlStatement) -> Result<(), StateError> {
    if s.sql.len() > MAX_SQL_BYTES {
        return Err(StateError::InvalidArgument(format!(
            "a statement of {} bytes exceeds the limit of {MAX_SQL_BYTES} bytes",
            s.sql.len()
        )));
    }
    if s.params.len() > MAX_PARAMS {
        return Err(StateError::InvalidArgument(format!(
            "{} parameters exceed the limit of {MAX_PARAMS}",
            s.params.len()
        )));
    }
    Ok(())
}

/// The replicated SQLite database.
pub struct SqlMachine {
    conn: Connection,
    guard: guard::SharedGuard,
    budget: budget::Budget,
}

impl std::fmt::Debug for SqlMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlMachine").finish_non_exhaustive()
    }
}

fn sql_error(what: &str, e: rusqlite::Error) -> StateError {
    StateError::Rejected(format!("{what}: {e}"))
}

/// The machine's scratch table (in `temp`, which users cannot reach and snapshots do not hold):
/// inserting rowid 0 into it resets the connection's last inserted rowid before each batch.
const RESET_TABLE: &str = "temp.jk_last_insert_reset";

/// An in-memory database set up the same way on every replica.
fn open(limit: u64) -> Result<SqlMachine, StateError> {
    let setup = |e| sql_error("open", e);
    let mut conn = Connection::open_in_memory().map_err(setup)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(setup)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
        .map_err(setup)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; CREATE TABLE {RESET_TABLE} (x);"
    ))
    .map_err(setup)?;
    let guard = Arc::new(Mutex::new(guard::Guard::default()));
    guard::install(&mut conn, guard.clone()).map_err(|e| sql_error("authorizer", e))?;
    let budget = budget::Budget::new(limit);
    budget.install(&mut conn).map_err(setup)?;
    Ok(SqlMachine {
        conn,
        guard,
        budget,
    })
}

impl SqlMachine {
    pub fn new() -> Result<Self, StateError> {
        open(MAX_VM_INSTRUCTIONS)
    }

    /// A machine with a smaller instruction budget (tests).
    #[cfg(test)]
    fn with_budget(limit: u64) -> Result<Self, StateError> {
        open(limit)
    }

    fn internal(&self, sql: &str) -> Result<(), StateError> {
        self.set_internal(true);
        let r = self.budget.outside(|| self.conn.execute_batch(sql));
        self.set_internal(false);
        r.map_err(|e| sql_error(sql, e))
    }

    fn set_internal(&self, on: bool) {
        self.guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .internal = on;
    }

    /// Prepares `s` under the guard and binds its parameters.
    fn prepare(
        &self,
        s: &SqlStatement,
        timestamp_ms: Option<u64>,
    ) -> Result<Statement<'_>, String> {
        check_statement(s).map_err(|e| e.to_string())?;
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).refused = None;
        let mut stmt = self.conn.prepare(&s.sql).map_err(|e| {
            let refused = self
                .guard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .refused
                .take();
            refused.unwrap_or_else(|| e.to_string())
        })?;
        let time_slot = stmt.parameter_index(LEADER_TIME_PARAM).ok().flatten();
        let slots = stmt.parameter_count() - usize::from(time_slot.is_some());
        if slots != s.params.len() {
            return Err(format!(
                "the statement has {slots} parameters but {} were given",
                s.params.len()
            ));
        }
        let mut params = s.params.iter();
        for slot in 1..=stmt.parameter_count() {
            let bound = if Some(slot) == time_slot {
                match timestamp_ms {
                    Some(ts) => stmt.raw_bind_parameter(slot, ts as i64),
                    None => return Err(format!("{LEADER_TIME_PARAM} is only known in execute")),
                }
            } else {
                match params.next() {
                    Some(v) => stmt.raw_bind_parameter(slot, to_sql(v)),
                    None => return Err("too few parameters".into()),
                }
            };
            bound.map_err(|e| e.to_string())?;
        }
        Ok(stmt)
    }

    fn execute(
        &mut self,
        ctx: &ApplyContext,
        statements: &[SqlStatement],
    ) -> Result<ExecuteResult, StateError> {
        check_statements(statements)?;
        self.internal(&format!(
            "INSERT INTO {RESET_TABLE} (rowid) VALUES (0); DELETE FROM {RESET_TABLE};"
        ))?;
        self.internal("SAVEPOINT jk_execute")?;
        self.budget.refill();
        let mut rows_affected = 0u64;
        let mut failure = None;
        for (i, s) in statements.iter().enumerate() {
            match self.run(s, ctx.timestamp_ms) {
                Ok(n) => rows_affected += n,
                Err(e) => {
                    failure = Some(format!("statement {} ({:?}): {e}", i + 1, s.sql));
                    break;
                }
            }
        }
        if failure.is_none() {
            // Deferred foreign keys are checked when the savepoint is released.
            match self.internal("RELEASE jk_execute") {
                Ok(()) => {
                    return Ok(ExecuteResult {
                        rows_affected,
                        last_insert_id: self.conn.last_insert_rowid(),
                    });
                }
                Err(e) => failure = Some(format!("commit: {e}")),
            }
        }
        // An interrupted statement (the budget) has rolled the whole transaction back already.
        if !self.conn.is_autocommit() {
            self.internal("ROLLBACK TO jk_execute; RELEASE jk_execute")?;
        }
        Err(StateError::Rejected(failure.unwrap_or_default()))
    }

    /// Runs one statement of an execute: its rows changed.
    fn run(&self, s: &SqlStatement, timestamp_ms: u64) -> Result<u64, String> {
        self.guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .written
            .clear();
        let mut stmt = self.prepare(s, Some(timestamp_ms))?;
        // `changes()` keeps the last DML's count through a DDL statement; the total does not.
        let before = self.conn.total_changes();
        // Rows a statement returns (a SELECT, RETURNING) are stepped through and dropped: an
        // execute's result is what it changed.
        let mut rows = stmt.raw_query();
        while rows.next().map_err(|e| self.step_error(e))?.is_some() {}
        drop(rows);
        drop(stmt);
        let n = self.conn.total_changes() - before;
        let written =
            std::mem::take(&mut self.guard.lock().unwrap_or_else(|p| p.into_inner()).written);
        for table in &written {
            self.check_rowid(table)?;
        }
        Ok(n)
    }

    fn step_error(&self, e: rusqlite::Error) -> String {
        if self.budget.exhausted() {
            self.budget.refusal()
        } else {
            e.to_string()
        }
    }

    /// SQLite picks a *random* rowid for a new row once a table holds rowid `i64::MAX`, so no
    /// statement may leave a table there.
    fn check_rowid(&self, table: &str) -> Result<(), String> {
        if table.starts_with("sqlite_") {
            return Ok(());
        }
        self.set_internal(true);
        let max = self.budget.outside(|| self.max_rowid(table));
        self.set_internal(false);
        match max.map_err(|e| e.to_string())? {
            Some(i64::MAX) => Err(format!(
                "table {table} would hold rowid {}, after which SQLite picks new rowids at \
                 random (which would differ between replicas)",
                i64::MAX
            )),
            _ => Ok(()),
        }
    }

    /// The largest rowid of `table` in `main`; `None` for a view, a table without rowids or
    /// one whose columns shadow every rowid alias.
    fn max_rowid(&self, table: &str) -> rusqlite::Result<Option<i64>> {
        let kind: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [table],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if kind != Some(("table".to_string(), 0)) {
            return Ok(None);
        }
        let mut columns = self
            .conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1)")?;
        let columns: Vec<String> = columns
            .query_map([table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let shadowed = |alias: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(alias));
        let Some(alias) = ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|a| !shadowed(a))
        else {
            return Ok(None);
        };
        let quoted = table.replace('"', "\"\"");
        self.conn.query_row(
            &format!("SELECT max({alias}) FROM main.\"{quoted}\""),
            [],
            |r| r.get(0),
        )
    }

    fn select(&self, q: &SqlStatement) -> Result<QueryResult, StateError> {
        let mut stmt = self.prepare(q, None).map_err(StateError::Rejected)?;
        if !stmt.readonly() {
            return Err(StateError::Rejected(
                "a query must not write: use execute".into(),
            ));
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        self.budget.refill();
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor
            .next()
            .map_err(|e| StateError::Rejected(format!("query: {}", self.step_error(e))))?
        {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let v = from_sql(row.get_ref(i).map_err(|e| sql_error("query", e))?);
                bytes += value_size(&v);
                values.push(v);
            }
            if bytes > MAX_RESULT_BYTES {
                return Err(StateError::InvalidArgument(format!(
                    "the answer exceeds {MAX_RESULT_BYTES} bytes: add a LIMIT"
                )));
            }
            rows.push(values);
        }
        Ok(QueryResult { columns, rows })
    }
}

fn to_sql(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(t) => Value::Text(t.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

fn value_size(v: &SqlValue) -> usize {
    match v {
        SqlValue::Text(t) => t.len() + 8,
        SqlValue::Blob(b) => b.len() + 8,
        _ => 9,
    }
}

impl StateMachine for SqlMachine {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let statements: Vec<SqlStatement> = super::decode("SQL execute", command)?;
        let r = self.execute(ctx, &statements)?;
        super::encode("SQL execute result", &r)
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let q: SqlStatement = super::decode("SQL query", query)?;
        super::encode("SQL query result", &self.select(&q)?)
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        let file = tempfile::NamedTempFile::new().map_err(|e| io_error("SQL snapshot", &e))?;
        self.conn
            .backup(MAIN_DB, file.path(), None::<fn(rusqlite::backup::Progress)>)
            .map_err(|e| sql_error("SQL snapshot", e))?;
        let mut input =
            std::fs::File::open(file.path()).map_err(|e| io_error("SQL snapshot", &e))?;
        std::io::copy(&mut input, out).map_err(|e| io_error("SQL snapshot", &e))?;
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| io_error("SQL restore", &e))?;
        std::io::copy(input, &mut file).map_err(|e| io_error("SQL restore", &e))?;
        file.flush().map_err(|e| io_error("SQL restore", &e))?;
        let mut fresh = open(self.budget.limit())?;
        let empty = file
            .as_file()
            .metadata()
            .map(|m| m.len() == 0)
            .unwrap_or(false);
        let codec = |reason: String| StateError::Codec {
            what: "SQL snapshot".into(),
            reason,
        };
        if !empty {
            fresh
                .conn
                .restore(MAIN_DB, file.path(), None::<fn(rusqlite::backup::Progress)>)
                .map_err(|e| codec(e.to_string()))?;
            fresh.set_internal(true);
            let check: rusqlite::Result<String> =
                fresh
                    .conn
                    .query_row("PRAGMA main.quick_check", [], |r| r.get(0));
            fresh.set_internal(false);
            match check {
                Ok(ok) if ok == "ok" => {}
                Ok(problem) => {
                    return Err(codec(format!("the database fails its check: {problem}")));
                }
                Err(e) => return Err(codec(e.to_string())),
            }
        }
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
