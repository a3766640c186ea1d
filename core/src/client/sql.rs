//! [`Sql`]: the built-in SQL database of the cluster (the `jk.sql` state machine every node
//! hosts). `execute` goes through the log — its statements apply together or not at all —
//! and `query` reads at a [`QueryConsistency`]. Refusals (SQL errors, non-deterministic
//! functions) are `Rejected` with SQLite's or the guard's message.

use super::Client;
use crate::api::{Error, ErrorKind, QueryConsistency};
use crate::state::sql::{self, ExecuteResult, QueryResult, SQL_MACHINE, SqlStatement, SqlValue};

/// The SQL database of the cluster ([`Client::sql`]).
#[derive(Debug, Clone, Copy)]
pub struct Sql<'a> {
    client: &'a Client,
}

impl<'a> Sql<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Sql { client }
    }

    /// Runs `statements` in order, in one transaction, once committed: what they changed.
    /// `:jk_timestamp_ms` in a statement is the leader's time.
    pub async fn execute(&self, statements: Vec<SqlStatement>) -> Result<ExecuteResult, Error> {
        sql::check_statements(&statements).map_err(|e| super::invalid(e.to_string()))?;
        let bytes = self
            .client
            .state_machine(SQL_MACHINE)
            .update(sql::encode_execute(&statements))
            .await?;
        sql::decode_execute_result(&bytes).map_err(corrupt)
    }

    /// One statement: [`execute`](Self::execute) of `[SqlStatement::new(sql, params)]`.
    pub async fn execute_one(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<ExecuteResult, Error> {
        self.execute(vec![SqlStatement::new(sql, params)]).await
    }

    /// Runs one read-only statement at `consistency`: its columns and rows.
    pub async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
        consistency: QueryConsistency,
    ) -> Result<QueryResult, Error> {
        let q = SqlStatement::new(sql, params);
        sql::check_statements(std::slice::from_ref(&q))
            .map_err(|e| super::invalid(e.to_string()))?;
        let bytes = self
            .client
            .state_machine(SQL_MACHINE)
            .query(sql::encode_query(&q), consistency)
            .await?;
        sql::decode_query_result(&bytes).map_err(corrupt)
    }
}

fn corrupt(e: crate::state::StateError) -> Error {
    Error::new(ErrorKind::Corruption, e.to_string())
}
