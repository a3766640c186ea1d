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
