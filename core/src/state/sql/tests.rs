use super::*;

fn ctx(index: u64) -> ApplyContext {
    ApplyContext {
        index,
        term: 1,
        timestamp_ms: 1_700_000_000_000 + index,
    }
}

fn st(sql: &str, params: Vec<SqlValue>) -> SqlStatement {
    SqlStatement::new(sql, params)
}

fn exec(
    m: &mut SqlMachine,
    index: u64,
    statements: &[SqlStatement],
) -> Result<ExecuteResult, StateError> {
    m.apply(&ctx(index), &encode_execute(statements))
        .and_then(|b| decode_execute_result(&b))
}

fn select(m: &SqlMachine, sql: &str, params: Vec<SqlValue>) -> Result<QueryResult, StateError> {
    m.query(&encode_query(&st(sql, params)))
        .and_then(|b| decode_query_result(&b))
}

fn schema(m: &mut SqlMachine) {
    let r = exec(
        m,
        1,
        &[
            st("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, data BLOB, at INTEGER)", vec![]),
            st("INSERT INTO t (name, score, data, at) VALUES (?1, ?2, ?3, :jk_timestamp_ms)", vec![
                SqlValue::Text("a".into()), SqlValue::Real(1.5), SqlValue::Blob(vec![0, 255]),
            ]),
            st("INSERT INTO t (name, score) VALUES (?, ?)", vec![SqlValue::Text("b".into()), SqlValue::Null]),
            st("UPDATE t SET score = coalesce(score, 0) + 1", vec![]),
        ],
    )
    .unwrap();
    assert_eq!(
        r,
        ExecuteResult {
            rows_affected: 4,
            last_insert_id: 2
        }
    );
}

#[test]
fn a_batch_applies_whole_and_queries_return_typed_values() {
    let mut m = SqlMachine::new().unwrap();
    schema(&mut m);
    let q = select(
        &m,
        "SELECT id, name, score, data, at FROM t ORDER BY id",
        vec![],
    )
    .unwrap();
    assert_eq!(q.columns, ["id", "name", "score", "data", "at"]);
    assert_eq!(
        q.rows,
        vec![
            vec![
                SqlValue::Integer(1),
                SqlValue::Text("a".into()),
                SqlValue::Real(2.5),
                SqlValue::Blob(vec![0, 255]),
                SqlValue::Integer(1_700_000_000_001),
            ],
            vec![
                SqlValue::Integer(2),
                SqlValue::Text("b".into()),
                SqlValue::Real(1.0),
                SqlValue::Null,
                SqlValue::Null
            ],
        ]
    );
}

#[test]
fn a_failing_statement_rolls_the_whole_batch_back() {
    let mut m = SqlMachine::new().unwrap();
    schema(&mut m);
    let e = exec(
        &mut m,
        2,
        &[
            st("INSERT INTO t (name) VALUES ('c')", vec![]),
            st("INSERT INTO t (name) VALUES ('a')", vec![]),
        ],
    )
    .unwrap_err();
    match e {
        StateError::Rejected(msg) => assert!(
            msg.starts_with("statement 2") && msg.contains("UNIQUE"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    let q = select(&m, "SELECT count(*) FROM t", vec![]).unwrap();
    assert_eq!(q.rows, vec![vec![SqlValue::Integer(2)]]);
    // The machine still works after a refusal.
    exec(
        &mut m,
        3,
        &[st("INSERT INTO t (name) VALUES ('c')", vec![])],
    )
    .unwrap();
}

#[test]
fn functions_that_differ_between_replicas_are_refused_by_name() {
    let mut m = SqlMachine::new().unwrap();
    schema(&mut m);
    for (sql, name) in [
        ("INSERT INTO t (name) VALUES (random())", "random()"),
        (
            "INSERT INTO t (name, data) VALUES ('r', randomblob(4))",
            "randomblob()",
        ),
        (
            "INSERT INTO t (name, at) VALUES ('d', datetime('now'))",
            "datetime()",
        ),
        (
            "INSERT INTO t (name, at) VALUES ('e', CURRENT_TIMESTAMP)",
            "current_timestamp()",
        ),
        (
            "INSERT INTO t (name, at) VALUES ('f', changes())",
            "changes()",
        ),
        (
            "INSERT INTO t (name, at) VALUES ('g', last_insert_rowid())",
            "last_insert_rowid()",
        ),
        (
            "INSERT INTO t (name) VALUES (sqlite_version())",
            "sqlite_version()",
        ),
    ] {
        match exec(&mut m, 5, &[st(sql, vec![])]) {
            Err(StateError::Rejected(msg)) => assert!(
                msg.contains(name) && msg.contains("refused"),
                "{sql}: {msg}"
            ),
            other => panic!("{sql}: {other:?}"),
        }
    }
    let e = exec(
        &mut m,
        5,
        &[st(
            "INSERT INTO t (name, at) VALUES ('h', unixepoch('now'))",
            vec![],
        )],
    )
    .unwrap_err();
    assert!(e.to_string().contains(":jk_timestamp_ms"), "{e}");
    for sql in [
        "PRAGMA journal_mode = OFF",
        "ATTACH DATABASE 'x.db' AS x",
        "BEGIN",
        "COMMIT",
        "SAVEPOINT s",
    ] {
        assert!(
            matches!(
                exec(&mut m, 6, &[st(sql, vec![])]),
                Err(StateError::Rejected(_))
            ),
            "{sql}"
        );
    }
    assert!(matches!(
        select(&m, "SELECT random()", vec![]),
        Err(StateError::Rejected(_))
    ));
    let q = select(&m, "SELECT count(*) FROM t", vec![]).unwrap();
    assert_eq!(
        q.rows,
        vec![vec![SqlValue::Integer(2)]],
        "nothing refused changed anything"
    );
}

#[test]
fn queries_do_not_write_and_bounds_are_named() {
    let mut m = SqlMachine::new().unwrap();
    schema(&mut m);
    assert!(matches!(
        select(&m, "DELETE FROM t", vec![]),
        Err(StateError::Rejected(_))
    ));
    assert!(matches!(
        select(&m, "SELECT 1; SELECT 2", vec![]),
        Err(StateError::Rejected(_))
    ));
    assert!(matches!(
        select(&m, "SELECT ?1", vec![]),
        Err(StateError::Rejected(_))
    ));
    assert!(matches!(
        exec(&mut m, 2, &[]),
        Err(StateError::InvalidArgument(_))
    ));
    let long = st(&"x".repeat(MAX_SQL_BYTES + 1), vec![]);
    assert!(matches!(
        exec(&mut m, 2, &[long]),
        Err(StateError::InvalidArgument(_))
    ));
    assert_eq!(
        select(&m, "SELECT count(*) FROM t", vec![]).unwrap().rows,
        vec![vec![SqlValue::Integer(2)]]
    );
}

#[test]
fn replicas_agree_and_a_snapshot_restores_an_equal_database() {
    let mut a = SqlMachine::new().unwrap();
    let mut b = SqlMachine::new().unwrap();
    schema(&mut a);
    schema(&mut b);
    let all = "SELECT * FROM t ORDER BY id";
    assert_eq!(
        a.query(&encode_query(&st(all, vec![]))).unwrap(),
        b.query(&encode_query(&st(all, vec![]))).unwrap()
    );

    let mut snap = Vec::new();
    a.snapshot(&mut snap).unwrap();
    let mut fresh = SqlMachine::new().unwrap();
    fresh.restore(&mut &snap[..]).unwrap();
    assert_eq!(
        select(&fresh, all, vec![]).unwrap(),
        select(&a, all, vec![]).unwrap()
    );
    // The restored database keeps refusing what the guard refuses.
    assert!(
        exec(
            &mut fresh,
            9,
            &[st("INSERT INTO t (name) VALUES (random())", vec![])]
        )
        .is_err()
    );

    assert!(
        fresh
            .restore(&mut &b"not a database at all, surely"[..])
            .is_err()
    );
    assert_eq!(
        select(&fresh, all, vec![]).unwrap(),
        select(&a, all, vec![]).unwrap(),
        "garbage changed nothing"
    );

    let mut empty = Vec::new();
    SqlMachine::new().unwrap().snapshot(&mut empty).unwrap();
    fresh.restore(&mut &empty[..]).unwrap();
    assert!(select(&fresh, all, vec![]).is_err(), "the table is gone");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let mut m = SqlMachine::new().unwrap();
        let _ = m.apply(&ctx(1), &data);
        let _ = m.query(&data);
    }
}

fn refused(r: Result<ExecuteResult, StateError>, needle: &str) {
    match r {
        Err(StateError::Rejected(m)) => assert!(m.contains(needle), "{needle:?} not in {m:?}"),
        other => panic!("expected a refusal naming {needle:?}, got {other:?}"),
    }
}

fn one(m: &mut SqlMachine, index: u64, sql: &str) -> Result<ExecuteResult, StateError> {
    exec(m, index, &[st(sql, vec![])])
}

#[test]
fn state_outside_the_snapshot_and_schema_smuggling_are_refused() {
    let mut m = SqlMachine::new().unwrap();
    refused(one(&mut m, 1, "CREATE TEMP TABLE tt (x)"), "temp");
    refused(one(&mut m, 2, "CREATE TABLE temp.tt (x)"), "temp");
    refused(
        one(&mut m, 3, "SELECT * FROM temp.jk_last_insert_reset"),
        "temp schema",
    );
    refused(
        one(&mut m, 4, "INSERT INTO jk_last_insert_reset VALUES (1)"),
        "",
    );
    refused(one(&mut m, 5, "CREATE VIRTUAL TABLE v USING fts5(x)"), "");
    refused(
        one(&mut m, 6, "CREATE TABLE d (x DEFAULT (random()))"),
        "random()",
    );
    refused(
        one(&mut m, 7, "CREATE TABLE d (x DEFAULT CURRENT_TIMESTAMP)"),
        "current_timestamp()",
    );
    refused(one(&mut m, 8, "VACUUM"), "");
    // A view or trigger may be created; using it compiles its body under the same guard.
    one(&mut m, 9, "CREATE VIEW v AS SELECT random() AS r").unwrap();
    refused(
        one(&mut m, 10, "CREATE TABLE vv AS SELECT * FROM v"),
        "random()",
    );
    one(&mut m, 11, "CREATE TABLE tr (x)").unwrap();
    one(
        &mut m,
        12,
        "CREATE TRIGGER g AFTER INSERT ON tr BEGIN UPDATE tr SET x = random(); END",
    )
    .unwrap();
    refused(one(&mut m, 13, "INSERT INTO tr VALUES (1)"), "random()");
    assert!(
        select(&m, "SELECT * FROM tr", vec![])
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn a_runaway_statement_is_refused_by_the_instruction_budget_and_changes_nothing() {
    let mut m = SqlMachine::with_budget(2_000_000).unwrap();
    one(&mut m, 1, "CREATE TABLE e (x)").unwrap();
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) ";
    refused(
        one(
            &mut m,
            2,
            &format!("{endless} INSERT INTO e SELECT x FROM c"),
        ),
        "MAX_VM_INSTRUCTIONS",
    );
    assert_eq!(
        select(&m, "SELECT count(*) FROM e", vec![]).unwrap().rows,
        vec![vec![SqlValue::Integer(0)]]
    );
    match select(&m, &format!("{endless} SELECT count(*) FROM c"), vec![]) {
        Err(StateError::Rejected(e)) => assert!(e.contains("MAX_VM_INSTRUCTIONS"), "{e}"),
        other => panic!("{other:?}"),
    }
    // The budget is per execute: bounded work of the same shape passes, and keeps passing.
    for i in 0..3 {
        let r = one(
            &mut m,
            3 + i,
            &format!("{endless} INSERT INTO e SELECT x FROM c LIMIT 100"),
        );
        assert_eq!(r.unwrap().rows_affected, 100);
    }
}

#[test]
fn last_insert_id_counts_only_the_batch_so_a_restored_replica_answers_the_same() {
    let mut m = SqlMachine::new().unwrap();
    one(&mut m, 1, "CREATE TABLE t (id INTEGER PRIMARY KEY, n)").unwrap();
    assert_eq!(
        one(&mut m, 2, "INSERT INTO t (n) VALUES (1)")
            .unwrap()
            .last_insert_id,
        1
    );
    let mut snap = Vec::new();
    m.snapshot(&mut snap).unwrap();
    let mut restored = SqlMachine::new().unwrap();
    restored.restore(&mut snap.as_slice()).unwrap();
    for machine in [&mut m, &mut restored] {
        let r = one(machine, 3, "UPDATE t SET n = n + 1").unwrap();
        assert_eq!(
            r,
            ExecuteResult {
                rows_affected: 1,
                last_insert_id: 0
            }
        );
        // A DDL statement after a DML one does not count the DML twice.
        let r = exec(
            machine,
            4,
            &[
                st("INSERT INTO t (n) VALUES (5)", vec![]),
                st("CREATE INDEX i ON t (n)", vec![]),
            ],
        );
        assert_eq!(
            r.unwrap(),
            ExecuteResult {
                rows_affected: 1,
                last_insert_id: 2
            }
        );
    }
}

#[test]
fn no_table_may_reach_the_rowid_after_which_sqlite_picks_at_random() {
    let mut m = SqlMachine::new().unwrap();
    one(&mut m, 1, "CREATE TABLE r (a)").unwrap();
    one(&mut m, 2, "CREATE TABLE k (id INTEGER PRIMARY KEY, a)").unwrap();
    one(
        &mut m,
        3,
        "CREATE TABLE w (id INTEGER PRIMARY KEY, a) WITHOUT ROWID",
    )
    .unwrap();
    let max = i64::MAX;
    refused(
        one(
            &mut m,
            4,
            &format!("INSERT INTO r (rowid, a) VALUES ({max}, 1)"),
        ),
        "rowid",
    );
    refused(
        one(&mut m, 5, &format!("INSERT INTO k VALUES ({max}, 1)")),
        "rowid",
    );
    one(&mut m, 6, &format!("INSERT INTO k VALUES ({}, 1)", max - 1)).unwrap();
    refused(one(&mut m, 7, "UPDATE k SET id = id + 1"), "rowid");
    one(&mut m, 8, &format!("INSERT INTO w VALUES ({max}, 1)")).unwrap();
    assert_eq!(
        select(&m, "SELECT id FROM k", vec![]).unwrap().rows,
        vec![vec![SqlValue::Integer(max - 1)]]
    );
}

#[test]
fn foreign_keys_are_enforced_and_a_failed_deferred_check_rolls_back() {
    let mut m = SqlMachine::new().unwrap();
    exec(
        &mut m,
        1,
        &[
            st("CREATE TABLE p (id INTEGER PRIMARY KEY)", vec![]),
            st("CREATE TABLE c (p INTEGER REFERENCES p (id))", vec![]),
            st(
                "CREATE TABLE d (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
                vec![],
            ),
        ],
    )
    .unwrap();
    refused(one(&mut m, 2, "INSERT INTO c VALUES (7)"), "FOREIGN KEY");
    // RETURNING rows are stepped through; the result is what changed.
    let r = one(&mut m, 2, "INSERT INTO p VALUES (3) RETURNING id").unwrap();
    assert_eq!(
        r,
        ExecuteResult {
            rows_affected: 1,
            last_insert_id: 3
        }
    );
    refused(one(&mut m, 3, "INSERT INTO d VALUES (7)"), "commit");
    // The deferred violation is fixed inside the batch: it commits.
    let ok = exec(
        &mut m,
        4,
        &[
            st("INSERT INTO d VALUES (7)", vec![]),
            st("INSERT INTO p VALUES (7)", vec![]),
        ],
    );
    assert_eq!(ok.unwrap().rows_affected, 2);
    assert_eq!(
        select(&m, "SELECT count(*) FROM d", vec![]).unwrap().rows,
        vec![vec![SqlValue::Integer(1)]]
    );
}
