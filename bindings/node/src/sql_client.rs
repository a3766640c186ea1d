//! `client.sql()`: the cluster's built-in SQL database (`journalkeeper::client::Sql`) as
//! Promises — `execute` (statements through the log, in one transaction) and `query` (one
//! read-only statement at a consistency level).
//!
//! Values: SQL NULL is `null`; an INTEGER is a `number` when it is a safe integer
//! (`Number.isSafeInteger`), else a `bigint` — the same rule for `lastInsertId`; a REAL is a
//! `number`; TEXT a `string`; a BLOB a `Buffer`. As parameters: `null`, a `boolean` (1 / 0),
//! a `number` (a safe integer binds as INTEGER, any other number as REAL), a `bigint` (must
//! fit 64 signed bits), a `string` or a `Buffer`. Owns only these conversions; refusals of
//! SQLite and of the determinism guard reject with `code` `'REJECTED'`.

use journalkeeper::api::{self, ErrorKind};
use journalkeeper::client::Client as CoreClient;
use journalkeeper::state::sql::{ExecuteResult, QueryResult, SqlStatement, SqlValue};
use napi::bindgen_prelude::{
    BigInt, Buffer, Either, Either5, JsObjectValue, Null, Object, PromiseRaw,
};
use napi::{Env, JsValue, Unknown, ValueType};
use napi_derive::napi;

use crate::args::{self, R};
use crate::client::consistency;
use crate::{MAX_SAFE_INTEGER, promise, to_number};

/// A value of a row as JS sees it.
type JsValueOut = Either5<Null, f64, BigInt, String, Buffer>;
/// An INTEGER as JS sees it.
type JsInteger = Either<f64, BigInt>;

/// What an `execute` changed.
#[napi(object, object_from_js = false)]
pub struct SqlOutcome {
    /// Rows inserted, updated or deleted by the statements (and their triggers).
    pub rows_affected: f64,
    /// The rowid of the last row the statements inserted (0 when they inserted none); a
    /// `bigint` outside the safe integers.
    #[napi(ts_type = "number | bigint")]
    pub last_insert_id: JsInteger,
}

/// The answer of a `query`: column names and rows (arrays in column order).
#[napi(object, object_from_js = false)]
pub struct SqlRows {
    pub columns: Vec<String>,
    #[napi(ts_type = "Array<Array<SqlValue>>")]
    pub rows: Vec<Vec<JsValueOut>>,
}

fn invalid(message: String) -> api::Error {
    api::Error::new(ErrorKind::InvalidArgument, message)
}

fn integer(i: i64) -> JsInteger {
    if i.unsigned_abs() <= MAX_SAFE_INTEGER {
        Either::A(i as f64)
    } else {
        Either::B(BigInt::from(i))
    }
}

fn value_out(v: SqlValue) -> JsValueOut {
    match v {
        SqlValue::Null => Either5::A(Null),
        SqlValue::Integer(i) => match integer(i) {
            Either::A(n) => Either5::B(n),
            Either::B(b) => Either5::C(b),
        },
        SqlValue::Real(f) => Either5::B(f),
        SqlValue::Text(t) => Either5::D(t),
        SqlValue::Blob(b) => Either5::E(Buffer::from(b)),
    }
}

fn rows(answer: QueryResult) -> SqlRows {
    SqlRows {
        columns: answer.columns,
        rows: answer
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value_out).collect())
            .collect(),
    }
}

fn outcome(r: ExecuteResult) -> R<SqlOutcome> {
    Ok(SqlOutcome {
        rows_affected: to_number("rowsAffected", r.rows_affected)?,
        last_insert_id: integer(r.last_insert_id),
    })
}

/// One parameter.
fn value_arg(what: &str, v: Unknown) -> R<SqlValue> {
    Ok(match args::value_type(what, &v)? {
        ValueType::Null => SqlValue::Null,
        ValueType::Boolean => SqlValue::Integer(i64::from(args::convert::<bool>(what, v)?)),
        ValueType::Number => {
            let n: f64 = args::convert(what, v)?;
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 {
                SqlValue::Integer(n as i64)
            } else {
                SqlValue::Real(n)
            }
        }
        ValueType::BigInt => match args::convert::<BigInt>(what, v)?.get_i64() {
            (i, true) => SqlValue::Integer(i),
            _ => {
                return Err(invalid(format!(
                    "{what} is outside the 64-bit signed integers of SQL"
                )));
            }
        },
        ValueType::String => SqlValue::Text(args::convert(what, v)?),
        ValueType::Object if v.is_buffer().map_err(|e| args::internal(what, e))? => {
            SqlValue::Blob(args::buffer(what, v)?)
        }
        _ => {
            return args::expected(
                what,
                "null, a boolean, a number, a bigint, a string or a Buffer",
                &v,
            );
        }
    })
}

/// An optional array of parameters (null / undefined: none).
fn params_arg(what: &str, v: Unknown) -> R<Vec<SqlValue>> {
    if args::is_nullish(what, &v)? {
        return Ok(Vec::new());
    }
    args::array(what, "an array of SQL values", v, value_arg)
}

/// One element of an `execute` batch: the SQL alone, or `{ sql, params }`.
fn statement_arg(what: &str, v: Unknown) -> R<SqlStatement> {
    match args::value_type(what, &v)? {
        ValueType::String => Ok(SqlStatement::new(args::string(what, v)?, Vec::new())),
        ValueType::Object if !v.is_array().map_err(|e| args::internal(what, e))? => {
            let o: Object = args::convert(what, v)?;
            let field = |name: &str| -> R<Unknown> {
                o.get_named_property(name)
                    .map_err(|e| args::internal(&format!("{what}.{name}"), e))
            };
            let sql = args::string(&format!("{what}.sql"), field("sql")?)?;
            let params = params_arg(&format!("{what}.params"), field("params")?)?;
            Ok(SqlStatement::new(sql, params))
        }
        _ => args::expected(what, "a string or a { sql, params } object", &v),
    }
}

/// `execute`'s arguments: one SQL string with `params`, or an array of statements (then
/// `params` must be absent).
fn statements_arg(statements: Unknown, params: Unknown) -> R<Vec<SqlStatement>> {
    if args::value_type("statements", &statements)? == ValueType::String {
        let sql = args::string("statements", statements)?;
        return Ok(vec![SqlStatement::new(sql, params_arg("params", params)?)]);
    }
    if !args::is_nullish("params", &params)? {
        return Err(invalid(
            "params goes with one SQL string: give each statement of an array its own \
             { sql, params }"
                .into(),
        ));
    }
    args::array(
        "statements",
        "a string or an array of statements",
        statements,
        statement_arg,
    )
}

/// The SQL database of the cluster (`client.sql()`).
#[napi]
pub struct Sql {
    inner: CoreClient,
}

impl Sql {
    pub fn new(inner: CoreClient) -> Self {
        Sql { inner }
    }
}

#[napi]
impl Sql {
    /// Runs one statement with `params` (`execute('INSERT … VALUES (?1, ?2)', [1, 'a'])`), or
    /// an array of statements — each a string or `{ sql, params }` — in order, in one
    /// transaction, once committed on a majority (at most 1024 statements of 64 KiB and 999
    /// parameters each). `:jk_timestamp_ms` in a statement is the leader's time (ms since the
    /// epoch). All or nothing: a statement SQLite or the guard refuses (also SQL whose result
    /// could differ between replicas: `random()`, `datetime('now')`, …, the function named)
    /// rejects with `code` `'REJECTED'` and a message naming it (`statement 2 ("…"): …`), and
    /// nothing changed. A retried call applies once.
    #[napi(
        ts_args_type = "statements: string | Array<string | SqlStatement>, params?: Array<SqlParam> | undefined | null",
        ts_return_type = "Promise<SqlOutcome>"
    )]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        statements: Unknown<'env>,
        params: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, SqlOutcome>> {
        let c = self.inner.clone();
        let args = args::checked(|| statements_arg(statements, params));
        promise(env, async move {
            let statements = args?;
            outcome(c.sql().execute(statements).await?)
        })
    }

    /// Runs one read-only statement with `params` at `options.consistency` (default
    /// `STRICT`; `NONE` reads whichever node answers, possibly behind). A statement that
    /// writes, fails or is refused rejects with `code` `'REJECTED'`; `:jk_timestamp_ms` is
    /// known only in `execute`; an answer over 8 MiB rejects with `'INVALID_ARGUMENT'`.
    #[napi(
        ts_args_type = "sql: string, params?: Array<SqlParam> | undefined | null, options?: ReadOptions | undefined | null",
        ts_return_type = "Promise<SqlRows>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        sql: Unknown<'env>,
        params: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, SqlRows>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("sql", sql)?,
                params_arg("params", params)?,
                consistency(options)?,
            ))
        });
        promise(env, async move {
            let (sql, params, level) = args?;
            Ok(rows(c.sql().query(&sql, params, level).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_numbers_only_when_safe() {
        assert!(
            matches!(integer(-(MAX_SAFE_INTEGER as i64)), Either::A(n) if n == -(MAX_SAFE_INTEGER as f64))
        );
        assert!(matches!(integer(MAX_SAFE_INTEGER as i64 + 1), Either::B(_)));
        assert!(matches!(integer(i64::MIN), Either::B(b) if b.get_i64() == (i64::MIN, true)));
    }
}
