//! `_native.Sql`: the cluster's built-in SQL database (`Client::sql()`) — `execute` (statements
//! through the log, in one transaction) and `query` (one read-only statement at a consistency
//! level). Values cross as `None` / `int` / `float` / `str` / `bytes` (`bytearray` and
//! `memoryview` too as parameters; `bool` is an `int`, as in `sqlite3`); rows come back as
//! tuples. `journalkeeper/sql.py` names and types these calls.
//!
//! Every call takes `aio` as in `client.rs`. Never does: checks the core makes itself (the
//! statement bounds, the guard's refusals — `RejectedError`).

use journalkeeper::client::Client;
use journalkeeper::state::sql::{ExecuteResult, QueryResult, SqlStatement, SqlValue};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyMemoryView, PyString, PyTuple};

use crate::convert::consistency;
use crate::errors::invalid;
use crate::process_bound::ProcessBound;
use crate::runtime::call;

/// One parameter from Python.
fn value_arg(what: &str, v: &Bound<'_, PyAny>) -> PyResult<SqlValue> {
    if v.is_none() {
        Ok(SqlValue::Null)
    } else if v.is_instance_of::<PyBool>() || v.is_instance_of::<PyInt>() {
        v.extract::<i64>().map(SqlValue::Integer).map_err(|_| {
            invalid(format!(
                "{what} {} is outside the 64-bit signed integers of SQL",
                v.str().map(|s| s.to_string()).unwrap_or_default()
            ))
        })
    } else if v.is_instance_of::<PyFloat>() {
        v.extract::<f64>().map(SqlValue::Real)
    } else if let Ok(s) = v.cast::<PyString>() {
        Ok(SqlValue::Text(s.to_str()?.to_string()))
    } else if let Ok(b) = v.cast::<PyBytes>() {
        Ok(SqlValue::Blob(b.as_bytes().to_vec()))
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        Ok(SqlValue::Blob(b.to_vec()))
    } else if v.is_instance_of::<PyMemoryView>() {
        Ok(SqlValue::Blob(v.call_method0("tobytes")?.extract()?))
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} must be None, int, float, str or bytes, not {}",
            v.get_type().name()?
        )))
    }
}

/// A sequence of parameters (`params[i]` named in errors).
fn params_arg(what: &str, params: &Bound<'_, PyAny>) -> PyResult<Vec<SqlValue>> {
    if params.is_instance_of::<PyString>() || params.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence of values, not {}",
            params.get_type().name()?
        )));
    }
    params
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a sequence of values, not {}",
                params
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
        .enumerate()
        .map(|(i, v)| value_arg(&format!("{what}[{i}]"), &v?))
        .collect()
}

/// A value for Python.
struct Value(SqlValue);

impl<'py> IntoPyObject<'py> for Value {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Ok(match self.0 {
            SqlValue::Null => py.None().into_bound(py),
            SqlValue::Integer(i) => i.into_pyobject(py)?.into_any(),
            SqlValue::Real(f) => f.into_pyobject(py)?.into_any(),
            SqlValue::Text(t) => PyString::new(py, &t).into_any(),
            SqlValue::Blob(b) => PyBytes::new(py, &b).into_any(),
        })
    }
}

/// A row as a tuple.
struct Row(Vec<SqlValue>);

impl<'py> IntoPyObject<'py> for Row {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        PyTuple::new(py, self.0.into_iter().map(Value))
    }
}

/// `query`'s answer: `(columns, rows)` (`journalkeeper.sql.QueryResult`).
struct Answer(QueryResult);

impl<'py> IntoPyObject<'py> for Answer {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let rows: Vec<Row> = self.0.rows.into_iter().map(Row).collect();
        (self.0.columns, rows).into_pyobject(py)
    }
}

fn outcome(r: ExecuteResult) -> (u64, i64) {
    (r.rows_affected, r.last_insert_id)
}

/// The SQL database of one client (`journalkeeper::client::Sql`).
#[pyclass(frozen, name = "Sql", module = "journalkeeper._native")]
pub struct PySql {
    client: ProcessBound<Client>,
}

impl PySql {
    pub fn new(client: Client) -> Self {
        PySql {
            client: ProcessBound::new(client),
        }
    }

    fn core(&self) -> PyResult<Client> {
        Ok(self.client.get("Client")?.clone())
    }
}

#[pymethods]
impl PySql {
    /// `statements`: an iterable of `(sql, params)` pairs; returns `(rows_affected,
    /// last_insert_id)`.
    #[pyo3(signature = (statements, aio=false))]
    fn execute(
        &self,
        py: Python<'_>,
        statements: &Bound<'_, PyAny>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let statements = statements
            .try_iter()?
            .enumerate()
            .map(|(i, s)| {
                let (sql, params): (String, Bound<'_, PyAny>) = s?.extract()?;
                Ok(SqlStatement::new(
                    sql,
                    params_arg(&format!("statements[{i}] params"), &params)?,
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let c = self.core()?;
        call(py, aio, async move {
            c.sql().execute(statements).await.map(outcome)
        })
    }

    /// Returns `(columns, rows)`, each row a tuple.
    #[pyo3(signature = (sql, params, consistency_name, aio=false))]
    fn query(
        &self,
        py: Python<'_>,
        sql: String,
        params: &Bound<'_, PyAny>,
        consistency_name: &str,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let params = params_arg("params", params)?;
        let level = consistency(consistency_name)?;
        let c = self.core()?;
        call(py, aio, async move {
            c.sql().query(&sql, params, level).await.map(Answer)
        })
    }
}
