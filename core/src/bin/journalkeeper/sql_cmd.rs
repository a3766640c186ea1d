//! `sql …`: statements against the cluster's built-in SQL database. Without `--query` the
//! statements run through the log in one transaction (prints rows affected and the last
//! inserted id); with `--query` one read-only statement runs at `--consistency` (prints a
//! header line and tab-separated rows, or one JSON object per row with `--json`).
//! Parameters bind to `?1`, `?2`, … of every statement: an integer, a real, `NULL`, or text.

use clap::Args;
use journalkeeper::api::QueryConsistency;
use journalkeeper::state::sql::{SqlStatement, SqlValue};
use serde_json::json;

use crate::AnyResult;
use crate::client_cmds::ConnArgs;
use crate::coord_cmds::print;

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The statements (several run in order, in one transaction); with --query, one SELECT.
    #[arg(required = true)]
    statements: Vec<String>,
    /// Read instead of write: one read-only statement.
    #[arg(long)]
    query: bool,
    /// A parameter for `?1`, `?2`, … (repeatable, in order).
    #[arg(long = "param")]
    params: Vec<String>,
    #[arg(long, default_value = "STRICT")]
    consistency: QueryConsistency,
}

fn parse_param(text: &str) -> SqlValue {
    if text == "NULL" {
        SqlValue::Null
    } else if let Ok(i) = text.parse::<i64>() {
        SqlValue::Integer(i)
    } else if let Ok(f) = text.parse::<f64>() {
        SqlValue::Real(f)
    } else {
        SqlValue::Text(text.to_string())
    }
}

fn show(v: &SqlValue) -> (serde_json::Value, String) {
    match v {
        SqlValue::Null => (serde_json::Value::Null, "NULL".into()),
        SqlValue::Integer(i) => (json!(i), i.to_string()),
        SqlValue::Real(f) => (json!(f), f.to_string()),
        SqlValue::Text(t) => (json!(t), t.clone()),
        SqlValue::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            (json!(format!("x'{hex}'")), format!("x'{hex}'"))
        }
    }
}

pub async fn run(conn: ConnArgs, args: SqlArgs) -> AnyResult<()> {
    let client = conn.connect().await?;
    let params: Vec<SqlValue> = args.params.iter().map(|p| parse_param(p)).collect();
    let sql = client.sql();
    let j = conn.json;
    let outcome: AnyResult<()> = async {
        if args.query {
            let [statement] = args.statements.as_slice() else {
                return Err("--query takes exactly one statement".into());
            };
            let r = sql.query(statement, params, args.consistency).await?;
            if !j {
                println!("{}", r.columns.join("\t"));
            }
            for row in &r.rows {
                let shown: Vec<_> = row.iter().map(show).collect();
                let object: serde_json::Map<String, serde_json::Value> = r
                    .columns
                    .iter()
                    .cloned()
                    .zip(shown.iter().map(|(v, _)| v.clone()))
                    .collect();
                let text: Vec<&str> = shown.iter().map(|(_, t)| t.as_str()).collect();
                print(j, serde_json::Value::Object(object), text.join("\t"));
            }
        } else {
            let statements = args
                .statements
                .iter()
                .map(|s| SqlStatement::new(s.as_str(), params.clone()))
                .collect();
            let r = sql.execute(statements).await?;
            print(
                j,
                json!({"rows_affected": r.rows_affected, "last_insert_id": r.last_insert_id}),
                format!(
                    "rows affected: {}, last insert id: {}",
                    r.rows_affected, r.last_insert_id
                ),
            );
        }
        Ok(())
    }
    .await;
    client.close();
    outcome
}
