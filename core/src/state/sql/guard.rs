//! What SQL the replicated database accepts: an authorizer that SQLite consults while it
//! prepares each statement.
//!
//! Why an allow-list: every replica must compute the same state from the same statements, so a
//! function is allowed only when its result depends on its arguments alone. Clock, randomness,
//! connection state (`changes()`, `last_insert_rowid()`) and build details (`sqlite_version()`)
//! are refused at prepare time, with the function named, and so are the transcendental math
//! functions (`exp`, `ln`, `pow`, `sin`, …: the C library's results may differ in the last bit
//! between machines; `sqrt` is exact by IEEE 754 and stays); so are the date and time functions
//! (they read the wall clock for `'now'`): the leader's time is the parameter
//! `:jk_timestamp_ms`. `ATTACH`, `DETACH`, `PRAGMA` and the caller's own `BEGIN` / `COMMIT` /
//! `SAVEPOINT` are refused too; the machine runs each batch in its own savepoint. So are
//! temporary objects and the `temp` schema (a snapshot holds only `main`) and virtual tables.
//!
//! The guard also records which `main` tables a statement may write (directly or through its
//! triggers), so the machine can check their rowids after it ran.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Functions whose result is a pure function of their arguments (lower case).
const DETERMINISTIC: &[&str] = &[
    "abs",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "format",
    "glob",
    "hex",
    "ifnull",
    "iif",
    "if",
    "instr",
    "length",
    "like",
    "likelihood",
    "likely",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "octet_length",
    "printf",
    "quote",
    "replace",
    "round",
    "rtrim",
    "sign",
    "soundex",
    "substr",
    "substring",
    "trim",
    "typeof",
    "unhex",
    "unicode",
    "unlikely",
    "upper",
    "zeroblob",
    "avg",
    "count",
    "group_concat",
    "string_agg",
    "sum",
    "total",
    "ceil",
    "ceiling",
    "floor",
    "mod",
    "sqrt",
    "trunc",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    "json",
    "jsonb",
    "json_array",
    "json_array_length",
    "json_error_position",
    "json_extract",
    "json_insert",
    "json_object",
    "json_patch",
    "json_pretty",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_type",
    "json_valid",
    "json_group_array",
    "json_group_object",
    "->",
    "->>",
];

const DATE_TIME: &[&str] = &[
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
];

/// The authorizer's state, shared with the machine.
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// The machine's own statements (its savepoints) pass.
    pub internal: bool,
    /// Why the last statement was refused, for the error the caller gets.
    pub refused: Option<String>,
    /// The `main` tables the statements prepared since the last `take_written` may write.
    pub written: BTreeSet<String>,
}

pub(super) type SharedGuard = Arc<Mutex<Guard>>;

/// Installs the authorizer on `conn`.
pub(super) fn install(conn: &mut rusqlite::Connection, guard: SharedGuard) -> rusqlite::Result<()> {
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let mut g = guard.lock().unwrap_or_else(|p| p.into_inner());
        if g.internal {
            return Authorization::Allow;
        }
        let temp = ctx.database_name == Some("temp") && !temp_schema_table(&ctx.action);
        let refused = if temp {
            Some("the temp schema is refused: a snapshot holds only the main database".into())
        } else {
            refusal(&ctx.action)
        };
        match refused {
            None => {
                if let AuthAction::Insert { table_name } | AuthAction::Update { table_name, .. } =
                    ctx.action
                {
                    g.written.insert(table_name.to_string());
                }
                Authorization::Allow
            }
            Some(reason) => {
                g.refused = Some(reason);
                Authorization::Deny
            }
        }
    }))
}

fn refusal(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            if DETERMINISTIC.contains(&name.as_str()) {
                None
            } else if DATE_TIME.contains(&name.as_str()) {
                Some(format!(
                    "{name}() is refused: it can read the wall clock, which differs between \
                     replicas; use the leader's time, the parameter :jk_timestamp_ms \
                     (milliseconds since the epoch)"
                ))
            } else {
                Some(format!(
                    "{name}() is refused: its result is not a function of its arguments alone \
                     (it would differ between replicas)"
                ))
            }
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Some("ATTACH and DETACH are refused: the database is the replicated one".into())
        }
        AuthAction::Pragma { pragma_name, .. } => Some(format!(
            "PRAGMA {pragma_name} is refused: it could change how replicas behave"
        )),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => {
            Some("temporary objects are refused: a snapshot holds only the main database".into())
        }
        AuthAction::CreateVtable { .. } | AuthAction::DropVtable { .. } => {
            Some("virtual tables are refused: their modules keep state outside the database".into())
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(
            "transaction control is refused: each execute runs in one transaction of its own"
                .into(),
        ),
        _ => None,
    }
}

/// SQLite's own look at the `temp` schema table (ALTER TABLE searches it for temp triggers):
/// it holds only the machine's scratch table, the same on every replica.
fn temp_schema_table(action: &AuthAction<'_>) -> bool {
    let (AuthAction::Read { table_name, .. } | AuthAction::Update { table_name, .. }) = action
    else {
        return false;
    };
    [
        "sqlite_master",
        "sqlite_temp_master",
        "sqlite_schema",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| table_name.eq_ignore_ascii_case(t))
}
