//! The cluster's built-in SQL database (`Client::sql`): `jk_sql_execute` (statements through
//! the log, in one transaction; what they changed in a `jk_sql_outcome`), `jk_sql_query` (one
//! read-only statement at a consistency level; columns and typed rows in a `jk_sql_rows` view
//! freed with `jk_sql_rows_free`). Values in both directions are `jk_sql_value`s tagged with a
//! `jk_sql_type`.
//!
//! Thin: each call is one `Sql` call; the core checks the statements, the guard refuses
//! non-deterministic SQL (`JK_STATUS_REJECTED`). Only the counts of the C arrays are bounded
//! here, before anything is copied.

use std::ffi::{CString, c_char};

use journalkeeper::state::sql::{MAX_PARAMS, MAX_STATEMENTS, QueryResult, SqlStatement, SqlValue};

use crate::args::{consistency_arg, out_arg, slice_arg, str_arg};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{Failure, jk_error, jk_status, lossy_cstring};
use crate::runtime::block_on;

/// The type of a `jk_sql_value` (its `kind`, a `uint32_t`; any other value:
/// `JK_STATUS_INVALID_ARGUMENT`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_sql_type {
    /// SQL NULL; no field is read.
    Null = 0,
    /// A 64-bit signed integer in `integer`.
    Integer = 1,
    /// A double in `real`.
    Real = 2,
    /// UTF-8 text in `data` / `len` (`len` bytes; may hold NULs).
    Text = 3,
    /// Bytes in `data` / `len`.
    Blob = 4,
}

/// One SQL value: a statement's parameter (passed in, borrowed for the call) or a value of a
/// `jk_sql_rows` row (owned by the rows). Only the fields of its `kind` mean anything; zero
/// the others, e.g. `(jk_sql_value){.kind = JK_SQL_TYPE_INTEGER, .integer = 7}`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_sql_value {
    /// A `jk_sql_type`.
    pub kind: u32,
    /// `JK_SQL_TYPE_INTEGER`: the value.
    pub integer: i64,
    /// `JK_SQL_TYPE_REAL`: the value.
    pub real: f64,
    /// `JK_SQL_TYPE_TEXT` / `JK_SQL_TYPE_BLOB`: the bytes. As a parameter it may be NULL only
    /// when `len` is 0; in rows it is never NULL for these kinds, and a text is followed by a
    /// NUL (not counted in `len`), so it can be printed as a C string when it holds no NUL.
    /// NULL for the other kinds in rows.
    pub data: *const u8,
    /// The number of bytes at `data`.
    pub len: usize,
}

/// One statement of a `jk_sql_execute`: NUL-terminated UTF-8 SQL and its positional
/// parameters (`?1`, `?2`, … or `?`), borrowed for the call. `params` may be NULL when
/// `params_len` is 0. The named parameter `:jk_timestamp_ms` is not counted in `params`:
/// every node binds it to the leader's time of the log entry (ms since the epoch).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jk_sql_statement {
    pub sql: *const c_char,
    pub params: *const jk_sql_value,
    /// At most `JK_SQL_MAX_PARAMS`.
    pub params_len: usize,
}

/// What a `jk_sql_execute` changed.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct jk_sql_outcome {
    /// Rows inserted, updated or deleted by the statements (and their triggers).
    pub rows_affected: u64,
    /// The rowid of the last row the statements inserted (0 when they inserted none).
    pub last_insert_id: i64,
}

/// The answer of `jk_sql_query`: column names and rows of values. The value of row `r`,
/// column `c` is `values[r * columns_len + c]`. Owned by the caller; free with
/// `jk_sql_rows_free`. Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_sql_rows {
    /// `columns_len` NUL-terminated column names, in select order.
    pub columns: *const *const c_char,
    pub columns_len: usize,
    /// `rows_len * columns_len` values, row after row (NULL when there are none).
    pub values: *const jk_sql_value,
    pub rows_len: usize,
}

/// The names, the bytes of each text / blob (a text with a NUL appended) and the views.
type RowsStorage = (
    Vec<CString>,
    Vec<*const c_char>,
    Vec<Vec<u8>>,
    Vec<jk_sql_value>,
);

/// One parameter from C, copied.
fn value_arg(v: &jk_sql_value, what: &str) -> Result<SqlValue, Failure> {
    let bytes = || slice_arg(v.data, v.len, &format!("{what}.data"));
    Ok(match v.kind {
        k if k == jk_sql_type::Null as u32 => SqlValue::Null,
        k if k == jk_sql_type::Integer as u32 => SqlValue::Integer(v.integer),
        k if k == jk_sql_type::Real as u32 => SqlValue::Real(v.real),
        k if k == jk_sql_type::Text as u32 => {
            let text = std::str::from_utf8(bytes()?)
                .map_err(|e| Failure::invalid(format!("{what}.data is not valid UTF-8: {e}")))?;
            SqlValue::Text(text.to_string())
        }
        k if k == jk_sql_type::Blob as u32 => SqlValue::Blob(bytes()?.to_vec()),
        other => {
            return Err(Failure::invalid(format!(
                "{what}.kind {other} is not a jk_sql_type"
            )));
        }
    })
}

/// The `n` parameters at `params`, copied; `n` is bounded before anything is read.
fn params_arg(params: *const jk_sql_value, n: usize, what: &str) -> Result<Vec<SqlValue>, Failure> {
    if n > MAX_PARAMS {
        return Err(Failure::invalid(format!(
            "{what}: {n} parameters exceed JK_SQL_MAX_PARAMS ({MAX_PARAMS})"
        )));
    }
    slice_arg(params, n, what)?
        .iter()
        .enumerate()
        .map(|(i, v)| value_arg(v, &format!("{what}[{i}]")))
        .collect()
}

fn statement_arg(s: &jk_sql_statement, what: &str) -> Result<SqlStatement, Failure> {
    let sql = str_arg(s.sql, &format!("{what}.sql"))?;
    let params = params_arg(s.params, s.params_len, &format!("{what}.params"))?;
    Ok(SqlStatement::new(sql, params))
}

/// Runs the `n` statements of `statements` (copied; 1 to `JK_SQL_MAX_STATEMENTS`) in order,
/// in one transaction, once committed on a majority (`REPLICATION`), and stores what they
/// changed into `*outcome_out`. All or nothing: a statement SQLite or the guard refuses gives
/// `JK_STATUS_REJECTED` with a message naming it (`statement 2 ("…"): …`) and nothing changes
/// — also for SQL whose result could differ between replicas (`random()`, `datetime('now')`,
/// …, the function named). Rows a statement returns (`RETURNING`) are dropped. A retried call
/// applies once. Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sql_execute(
    client: *const jk_client,
    statements: *const jk_sql_statement,
    n: usize,
    outcome_out: *mut jk_sql_outcome,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(outcome_out, "outcome_out")?;
        let client = client_arg(client)?;
        if n > MAX_STATEMENTS {
            return Err(Failure::invalid(format!(
                "statements: {n} statements exceed JK_SQL_MAX_STATEMENTS ({MAX_STATEMENTS})"
            )));
        }
        let statements = slice_arg(statements, n, "statements")?
            .iter()
            .enumerate()
            .map(|(i, s)| statement_arg(s, &format!("statements[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let r = block_on(client.sql().execute(statements))??;
        out.set(jk_sql_outcome { rows_affected: r.rows_affected, last_insert_id: r.last_insert_id });
        Ok(())
    }
}

/// Runs one read-only statement `sql` (NUL-terminated UTF-8) with the `n_params` positional
/// parameters of `params` (copied; NULL when 0), read at `consistency` (a
/// `jk_query_consistency`). On success `*rows_out` is a new `jk_sql_rows` for
/// `jk_sql_rows_free`. A statement that writes, fails or is refused by the guard gives
/// `JK_STATUS_REJECTED` with SQLite's or the guard's message; `:jk_timestamp_ms` is known only
/// in `jk_sql_execute`. An answer over 8 MiB gives `JK_STATUS_INVALID_ARGUMENT` (add a LIMIT).
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sql_query(
    client: *const jk_client,
    sql: *const c_char,
    params: *const jk_sql_value,
    n_params: usize,
    consistency: u32,
    rows_out: *mut *mut jk_sql_rows,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(rows_out, "rows_out")?;
        let client = client_arg(client)?;
        let sql = str_arg(sql, "sql")?;
        let params = params_arg(params, n_params, "params")?;
        let consistency = consistency_arg(consistency)?;
        let answer = block_on(client.sql().query(sql, params, consistency))??;
        out.set(rows(answer));
        Ok(())
    }
}

/// A heap `jk_sql_rows` owning `answer`.
fn rows(answer: QueryResult) -> *mut jk_sql_rows {
    let names: Vec<CString> = answer.columns.into_iter().map(lossy_cstring).collect();
    let name_ptrs: Vec<*const c_char> = names.iter().map(|c| c.as_ptr()).collect();
    let rows_len = answer.rows.len();
    let mut kinds = Vec::with_capacity(rows_len * name_ptrs.len());
    let mut bytes = Vec::new();
    for v in answer.rows.into_iter().flatten() {
        kinds.push(match v {
            SqlValue::Null => (jk_sql_type::Null, 0, 0.0, None),
            SqlValue::Integer(i) => (jk_sql_type::Integer, i, 0.0, None),
            SqlValue::Real(f) => (jk_sql_type::Real, 0, f, None),
            SqlValue::Text(t) => {
                let len = t.len();
                let mut b = t.into_bytes();
                b.push(0);
                bytes.push(b);
                (jk_sql_type::Text, 0, 0.0, Some((bytes.len() - 1, len)))
            }
            SqlValue::Blob(b) => {
                let len = b.len();
                bytes.push(b);
                (jk_sql_type::Blob, 0, 0.0, Some((bytes.len() - 1, len)))
            }
        });
    }
    // The views point into `bytes`' heap buffers, which stay put when the storage moves.
    let values: Vec<jk_sql_value> = kinds
        .into_iter()
        .map(|(kind, integer, real, data)| {
            let (data, len) =
                data.map_or((std::ptr::null(), 0), |(i, len)| (bytes[i].as_ptr(), len));
            jk_sql_value {
                kind: kind as u32,
                integer,
                real,
                data,
                len,
            }
        })
        .collect();
    to_owned_view::<jk_sql_rows, RowsStorage>((names, name_ptrs, bytes, values), |(_, n, _, v)| {
        jk_sql_rows {
            columns: n.as_ptr(),
            columns_len: n.len(),
            values: if v.is_empty() {
                std::ptr::null()
            } else {
                v.as_ptr()
            },
            rows_len,
        }
    })
}

/// Frees rows returned by `jk_sql_query`. NULL is allowed. Do not use `rows` afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sql_rows_free(rows: *mut jk_sql_rows) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_sql_rows, RowsStorage>(rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> jk_sql_value {
        jk_sql_value {
            kind: jk_sql_type::Text as u32,
            integer: 0,
            real: 0.0,
            data: s.as_ptr(),
            len: s.len(),
        }
    }

    #[test]
    fn parameters_convert_by_kind_and_bad_ones_are_named() {
        let mut v = text("héllo");
        assert_eq!(value_arg(&v, "p").unwrap(), SqlValue::Text("héllo".into()));
        v.kind = jk_sql_type::Blob as u32;
        assert_eq!(
            value_arg(&v, "p").unwrap(),
            SqlValue::Blob("héllo".as_bytes().to_vec())
        );
        v.kind = 9;
        let e = value_arg(&v, "params[3]").unwrap_err();
        assert_eq!(e.status, jk_status::InvalidArgument);
        assert!(e.message.contains("params[3].kind 9"), "{}", e.message);
        let bad = [0xffu8, 0xfe];
        let v = jk_sql_value {
            data: bad.as_ptr(),
            len: 2,
            ..text("")
        };
        assert!(value_arg(&v, "p").unwrap_err().message.contains("UTF-8"));
        let v = jk_sql_value {
            data: std::ptr::null(),
            len: 1,
            ..text("")
        };
        assert_eq!(
            value_arg(&v, "p").unwrap_err().status,
            jk_status::NullArgument
        );
        let e = params_arg(std::ptr::null(), MAX_PARAMS + 1, "params").unwrap_err();
        assert!(e.message.contains("JK_SQL_MAX_PARAMS"), "{}", e.message);
    }

    #[test]
    fn rows_own_their_values_until_freed() {
        let answer = QueryResult {
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec![SqlValue::Text("x\0y".into()), SqlValue::Blob(vec![])],
                vec![SqlValue::Integer(-5), SqlValue::Null],
            ],
        };
        let r = rows(answer);
        // SAFETY: `r` is a live view made above.
        let view = unsafe { &*r };
        assert_eq!((view.columns_len, view.rows_len), (2, 2));
        // SAFETY: `values` points to rows_len * columns_len values owned by `r`.
        let values = unsafe { std::slice::from_raw_parts(view.values, 4) };
        assert_eq!(values[0].len, 3);
        // SAFETY: a text's data holds len bytes and a NUL.
        let text = unsafe { std::slice::from_raw_parts(values[0].data, 4) };
        assert_eq!(text, b"x\0y\0");
        assert!(!values[1].data.is_null() && values[1].len == 0);
        assert_eq!(
            (values[2].kind, values[2].integer),
            (jk_sql_type::Integer as u32, -5)
        );
        assert!(values[3].data.is_null());
        jk_sql_rows_free(r);
        jk_sql_rows_free(std::ptr::null_mut());
    }
}
