use super::*;

fn ctx(index: u64) -> ApplyContext {
    ApplyContext {
        index,
        term: 1,
        timestamp_ms: 0,
    }
}

fn req(command: TxnCommand) -> TxnRequest {
    TxnRequest { id: None, command }
}

fn apply(t: &mut Transactions, index: u64, command: TxnCommand) -> Result<TxnOutcome, StateError> {
    t.apply_request(&ctx(index), &req(command), |p| p < 10)
}

fn create(t: &mut Transactions, index: u64) -> u64 {
    match apply(
        t,
        index,
        TxnCommand::Create {
            context: BTreeMap::from([("k".into(), "v".into())]),
            timeout_ms: 1000,
        },
    ) {
        Ok(TxnOutcome::Created { tx }) => tx,
        other => panic!("{other:?}"),
    }
}

fn batch(partition: u16, tx: u64, payloads: &[&str]) -> TxnCommand {
    TxnCommand::Append {
        tx,
        partition,
        entries: payloads
            .iter()
            .map(|p| serde_bytes::ByteBuf::from(p.as_bytes().to_vec()))
            .collect(),
    }
}

#[test]
fn batches_are_kept_in_append_order_until_published() {
    let mut t = Transactions::default();
    let tx = create(&mut t, 5);
    assert_eq!(tx, 5);
    assert_eq!(
        apply(&mut t, 6, batch(2, tx, &["a", "b"])),
        Ok(TxnOutcome::Appended { entries: 2 })
    );
    assert_eq!(
        apply(&mut t, 7, batch(1, tx, &["c"])),
        Ok(TxnOutcome::Appended { entries: 3 })
    );
    apply(&mut t, 8, batch(2, tx, &["d"])).unwrap();
    let open = t.get(tx).unwrap();
    let order: Vec<(u16, usize)> = open
        .batches
        .iter()
        .map(|b| (b.partition, b.entries.len()))
        .collect();
    assert_eq!(order, [(2, 2), (1, 1), (2, 1)]);
    assert_eq!(
        apply(&mut t, 9, TxnCommand::Complete { tx, commit: true }),
        Ok(TxnOutcome::Committing { tx })
    );
    // Decided: no more appends, no abort, no expiry.
    assert!(matches!(
        apply(&mut t, 10, batch(2, tx, &["late"])),
        Err(StateError::Rejected(_))
    ));
    assert!(apply(&mut t, 11, TxnCommand::Complete { tx, commit: false }).is_err());
    assert_eq!(
        apply(&mut t, 12, TxnCommand::Expire { tx }),
        Ok(TxnOutcome::Aborted { existed: false })
    );
    assert_eq!(t.get(tx).unwrap().phase, TxnPhase::Committing);
    assert!(t.published(tx));
    assert!(t.get(tx).is_none());
    assert!(!t.published(tx), "a second publish changes nothing");
    assert_eq!(t.open_bytes, 0);
}

#[test]
fn abort_and_expiry_leave_nothing_and_free_the_bytes() {
    let mut t = Transactions::default();
    let a = create(&mut t, 1);
    let b = create(&mut t, 2);
    apply(&mut t, 3, batch(0, a, &["xx"])).unwrap();
    apply(&mut t, 4, batch(0, b, &["yyy"])).unwrap();
    assert_eq!(t.open_bytes, 5);
    assert_eq!(
        apply(
            &mut t,
            5,
            TxnCommand::Complete {
                tx: a,
                commit: false
            }
        ),
        Ok(TxnOutcome::Aborted { existed: true })
    );
    assert_eq!(
        apply(&mut t, 6, TxnCommand::Expire { tx: b }),
        Ok(TxnOutcome::Aborted { existed: true })
    );
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.open_bytes, 0);
    assert!(matches!(
        apply(&mut t, 7, batch(0, a, &["z"])),
        Err(StateError::Rejected(_))
    ));
    assert_eq!(
        apply(
            &mut t,
            8,
            TxnCommand::Complete {
                tx: a,
                commit: false
            }
        ),
        Ok(TxnOutcome::Aborted { existed: false })
    );
    assert!(
        apply(
            &mut t,
            9,
            TxnCommand::Complete {
                tx: a,
                commit: true
            }
        )
        .is_err()
    );
}

#[test]
fn every_bound_is_checked_with_a_clear_error() {
    let limits = TxnLimits {
        max_open: 2,
        max_bytes_per_txn: 10,
        max_open_bytes: 15,
        max_entries_per_txn: 3,
        max_context_entries: 1,
        max_context_bytes: 8,
        ..TxnLimits::default()
    };
    let mut t = Transactions::new(limits);
    let a = create(&mut t, 1);
    let b = create(&mut t, 2);
    let msg = |r: Result<TxnOutcome, StateError>| r.unwrap_err().to_string();
    assert!(
        msg(apply(
            &mut t,
            3,
            TxnCommand::Create {
                context: BTreeMap::new(),
                timeout_ms: 1000
            }
        ))
        .contains("2 transactions are open")
    );
    assert!(msg(apply(&mut t, 3, batch(0, a, &["a", "b", "c", "d"]))).contains("at most 3"));
    assert!(msg(apply(&mut t, 3, batch(0, a, &["0123456789x"]))).contains("at most 10"));
    apply(&mut t, 3, batch(0, a, &["0123456789"])).unwrap();
    assert!(msg(apply(&mut t, 4, batch(0, b, &["012345"]))).contains("together"));
    assert!(msg(apply(&mut t, 4, batch(42, b, &["x"]))).contains("no such partition: 42"));
    assert!(msg(apply(&mut t, 4, batch(0, b, &[]))).contains("at least one entry"));
    apply(&mut t, 5, TxnCommand::Expire { tx: b }).unwrap();
    let big = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "2".into())]);
    assert!(
        msg(apply(
            &mut t,
            6,
            TxnCommand::Create {
                context: big,
                timeout_ms: 1000
            }
        ))
        .contains("1 pairs")
    );
    let long = BTreeMap::from([("key".to_string(), "value-too-long".to_string())]);
    assert!(
        msg(apply(
            &mut t,
            6,
            TxnCommand::Create {
                context: long,
                timeout_ms: 1000
            }
        ))
        .contains("8 bytes")
    );
    assert!(
        msg(apply(
            &mut t,
            6,
            TxnCommand::Create {
                context: BTreeMap::new(),
                timeout_ms: 1
            }
        ))
        .contains("timeout")
    );
}

#[test]
fn a_retried_request_applies_once() {
    let mut t = Transactions::default();
    let tx = create(&mut t, 1);
    let id = RequestId {
        client_id: 7,
        seq: 1,
        first_unacked: 1,
    };
    let append = TxnRequest {
        id: Some(id),
        command: batch(0, tx, &["once"]),
    };
    let first = t.apply_request(&ctx(2), &append, |_| true);
    let again = t.apply_request(&ctx(3), &append, |_| true);
    assert_eq!(first, again);
    assert_eq!(t.get(tx).unwrap().entries, 1);
}

#[test]
fn the_state_survives_a_snapshot_round_trip() {
    let mut t = Transactions::default();
    let tx = create(&mut t, 1);
    apply(&mut t, 2, batch(3, tx, &["p", "q"])).unwrap();
    let bytes = postcard::to_allocvec(&t).unwrap();
    let back: Transactions = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, t);
}
