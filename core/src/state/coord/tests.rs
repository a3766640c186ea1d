use super::*;
use crate::state::kv::{KvCommand, KvLimits, KvQuery, KvQueryResult, KvRequest};
use crate::state::watch::WatchFilter;

struct World {
    coord: Coordination,
    kv: KvStore,
    index: u64,
}

impl World {
    fn new() -> Self {
        World {
            coord: Coordination::default(),
            kv: KvStore::new(KvLimits::default()),
            index: 0,
        }
    }

    fn apply(&mut self, command: CoordCommand) -> Result<CoordOutcome, StateError> {
        self.apply_with(None, command)
    }

    fn apply_with(
        &mut self,
        id: Option<RequestId>,
        command: CoordCommand,
    ) -> Result<CoordOutcome, StateError> {
        self.index += 1;
        let ctx = ApplyContext {
            index: self.index,
            term: 1,
            timestamp_ms: 0,
        };
        self.coord
            .apply_request(&ctx, &CoordRequest { id, command }, &mut self.kv)
    }

    fn grant(&mut self) -> u64 {
        match self.apply(CoordCommand::Grant { ttl_ms: 1_000 }).unwrap() {
            CoordOutcome::Granted { lease, .. } => lease,
            other => panic!("{other:?}"),
        }
    }

    fn lock(&mut self, name: &str, lease: u64) -> CoordOutcome {
        self.apply(CoordCommand::Acquire {
            kind: QueueKind::Lock,
            name: name.into(),
            lease,
            value: Vec::new(),
        })
        .unwrap()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.kv.read(&KvQuery::Get { key: key.into() }).unwrap() {
            KvQueryResult::Value(v) => v,
            other => panic!("{other:?}"),
        }
    }

    fn holder(&self, kind: QueueKind, name: &str) -> Option<Holder> {
        self.get(&holder_key(kind, name))
            .map(|v| Holder::decode(&v).unwrap())
    }
}

#[test]
fn a_lock_is_served_in_order_with_strictly_increasing_tokens() {
    let mut w = World::new();
    let (a, b, c) = (w.grant(), w.grant(), w.grant());
    let CoordOutcome::Acquired { token: t1 } = w.lock("db", a) else {
        panic!("a free lock is held at once")
    };
    assert!(matches!(
        w.lock("db", b),
        CoordOutcome::Queued { ahead: 1, .. }
    ));
    assert!(matches!(
        w.lock("db", c),
        CoordOutcome::Queued { ahead: 2, .. }
    ));
    assert_eq!(
        w.lock("db", a),
        CoordOutcome::Acquired { token: t1 },
        "asking again answers where it stands"
    );
    assert_eq!(w.holder(QueueKind::Lock, "db").unwrap().lease, a);
    let release = |w: &mut World, lease| {
        w.apply(CoordCommand::Release {
            kind: QueueKind::Lock,
            name: "db".into(),
            lease,
        })
        .unwrap()
    };
    assert_eq!(release(&mut w, a), CoordOutcome::Released { held: true });
    let h = w.holder(QueueKind::Lock, "db").unwrap();
    assert_eq!(h.lease, b, "the first waiter holds it next");
    assert!(h.token > t1);
    assert_eq!(release(&mut w, b), CoordOutcome::Released { held: true });
    let h2 = w.holder(QueueKind::Lock, "db").unwrap();
    assert_eq!(h2.lease, c);
    assert!(h2.token > h.token);
    assert_eq!(release(&mut w, c), CoordOutcome::Released { held: true });
    assert_eq!(
        w.holder(QueueKind::Lock, "db"),
        None,
        "a free lock has no key"
    );
    assert_eq!(release(&mut w, c), CoordOutcome::Released { held: false });
    // A lock taken again after it was free still gets a higher token.
    let CoordOutcome::Acquired { token } = w.lock("db", a) else {
        panic!()
    };
    assert!(token > h2.token);
}

#[test]
fn ending_a_lease_releases_everything_it_held() {
    let mut w = World::new();
    let (a, b) = (w.grant(), w.grant());
    w.lock("l", a);
    w.lock("l", b);
    w.apply(CoordCommand::Acquire {
        kind: QueueKind::Election,
        name: "e".into(),
        lease: a,
        value: b"node-a".to_vec(),
    })
    .unwrap();
    w.apply(CoordCommand::Put {
        key: "svc/a".into(),
        value: b"up".to_vec(),
        lease: a,
    })
    .unwrap();
    w.apply(CoordCommand::Register {
        group: "workers".into(),
        member: "a".into(),
        lease: a,
        info: b"10.0.0.1".to_vec(),
    })
    .unwrap();
    assert_eq!(w.coord.lease(a).unwrap().holdings(), 4);
    let leader = w.holder(QueueKind::Election, "e").unwrap();
    assert_eq!(leader.value, b"node-a");
    assert!(w.get(&member_key("workers", "a")).is_some());
    let expired_at = w.index + 1;
    assert_eq!(
        w.apply(CoordCommand::Expire { lease: a }).unwrap(),
        CoordOutcome::Revoked { existed: true }
    );
    assert_eq!(w.get("svc/a"), None, "the attached key is gone");
    assert_eq!(w.get(&member_key("workers", "a")), None);
    assert_eq!(w.holder(QueueKind::Election, "e"), None);
    let h = w.holder(QueueKind::Lock, "l").unwrap();
    assert_eq!(
        (h.lease, h.token),
        (b, expired_at),
        "the waiter holds it from the expiry"
    );
    // Watchers see each removal at the expiry's index.
    let events = w.kv.events_at(expired_at);
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"svc/a"));
    assert_eq!(events.len(), 4, "{keys:?}");
    // Anything asked under the ended lease fails with LeaseExpired.
    assert_eq!(
        w.apply(CoordCommand::Acquire {
            kind: QueueKind::Lock,
            name: "l".into(),
            lease: a,
            value: vec![],
        }),
        Err(StateError::LeaseExpired(a))
    );
    assert_eq!(
        w.apply(CoordCommand::Put {
            key: "k".into(),
            value: vec![],
            lease: a
        }),
        Err(StateError::LeaseExpired(a))
    );
    assert_eq!(
        w.apply(CoordCommand::Revoke { lease: a }).unwrap(),
        CoordOutcome::Revoked { existed: false }
    );
}

#[test]
fn a_plain_write_detaches_a_key_from_its_lease() {
    let mut w = World::new();
    let a = w.grant();
    w.apply(CoordCommand::Put {
        key: "k".into(),
        value: b"1".to_vec(),
        lease: a,
    })
    .unwrap();
    w.coord.key_written("k");
    w.apply(CoordCommand::Revoke { lease: a }).unwrap();
    assert_eq!(w.get("k"), Some(b"1".to_vec()));
}

#[test]
fn ids_are_contiguous_ranges_and_bounded() {
    let mut w = World::new();
    let ids = |w: &mut World, count| {
        w.apply(CoordCommand::NextIds {
            name: "orders".into(),
            count,
        })
    };
    assert_eq!(
        ids(&mut w, 1).unwrap(),
        CoordOutcome::Ids { first: 1, count: 1 }
    );
    assert_eq!(
        ids(&mut w, 10).unwrap(),
        CoordOutcome::Ids {
            first: 2,
            count: 10
        }
    );
    assert_eq!(
        ids(&mut w, 1).unwrap(),
        CoordOutcome::Ids {
            first: 12,
            count: 1
        }
    );
    assert!(matches!(
        ids(&mut w, 0),
        Err(StateError::InvalidArgument(_))
    ));
    assert!(matches!(
        ids(&mut w, 1_000_001),
        Err(StateError::InvalidArgument(_))
    ));
    // A retried call (same session) hands out the same range, not a new one.
    let id = RequestId {
        client_id: 5,
        seq: 1,
        first_unacked: 1,
    };
    let cmd = CoordCommand::NextIds {
        name: "orders".into(),
        count: 3,
    };
    let first = w.apply_with(Some(id), cmd.clone()).unwrap();
    let retry = w.apply_with(Some(id), cmd).unwrap();
    assert_eq!(first, retry);
    assert_eq!(
        ids(&mut w, 1).unwrap(),
        CoordOutcome::Ids {
            first: 16,
            count: 1
        }
    );
}

#[test]
fn bounds_are_errors_with_names() {
    let mut w = World::new();
    assert!(matches!(
        w.apply(CoordCommand::Grant { ttl_ms: 1 }),
        Err(StateError::InvalidArgument(m)) if m.contains("ttl")
    ));
    let a = w.grant();
    assert!(matches!(
        w.apply(CoordCommand::Acquire {
            kind: QueueKind::Lock,
            name: String::new(),
            lease: a,
            value: vec![],
        }),
        Err(StateError::InvalidArgument(_))
    ));
    assert!(matches!(
        w.apply(CoordCommand::Register {
            group: "a/b".into(),
            member: "m".into(),
            lease: a,
            info: vec![],
        }),
        Err(StateError::InvalidArgument(m)) if m.contains('/')
    ));
    assert!(matches!(
        w.apply(CoordCommand::Put {
            key: holder_key(QueueKind::Lock, "x"),
            value: vec![],
            lease: a,
        }),
        Err(StateError::InvalidArgument(m)) if m.contains("reserved")
    ));
}

#[test]
fn clients_cannot_write_reserved_keys_and_do_not_see_them_by_default() {
    let mut w = World::new();
    let a = w.grant();
    w.lock("x", a);
    w.index += 1;
    let ctx = ApplyContext {
        index: w.index,
        term: 1,
        timestamp_ms: 0,
    };
    let forged = KvRequest {
        id: None,
        command: KvCommand::Set {
            key: holder_key(QueueKind::Lock, "x"),
            value: vec![1],
        },
    };
    assert!(matches!(
        w.kv.apply_request(&ctx, &forged),
        Err(StateError::InvalidArgument(m)) if m.contains("reserved")
    ));
    let list = |prefix: &str| match w
        .kv
        .read(&KvQuery::List {
            prefix: prefix.into(),
            start_after: None,
            limit: 100,
        })
        .unwrap()
    {
        KvQueryResult::Entries(e) => e.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(list(""), 0, "an ordinary listing hides the recipes' keys");
    assert_eq!(list(RESERVED_PREFIX), 1);
    assert!(!WatchFilter::Prefix(String::new()).matches(&holder_key(QueueKind::Lock, "x")));
    assert!(
        WatchFilter::Key(holder_key(QueueKind::Lock, "x"))
            .matches(&holder_key(QueueKind::Lock, "x"))
    );
}

#[test]
fn the_state_survives_a_snapshot() {
    let mut w = World::new();
    let (a, b) = (w.grant(), w.grant());
    w.lock("l", a);
    w.lock("l", b);
    w.apply(CoordCommand::NextIds {
        name: "s".into(),
        count: 7,
    })
    .unwrap();
    let bytes = postcard::to_allocvec(&w.coord).unwrap();
    let restored: Coordination = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(restored, w.coord);
    w.coord = restored;
    w.apply(CoordCommand::Revoke { lease: a }).unwrap();
    assert_eq!(w.holder(QueueKind::Lock, "l").unwrap().lease, b);
    assert_eq!(
        w.apply(CoordCommand::NextIds {
            name: "s".into(),
            count: 1
        })
        .unwrap(),
        CoordOutcome::Ids { first: 8, count: 1 }
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for garbage in [&[][..], &[0xff; 9][..], &[1, 2, 3][..]] {
        assert!(Holder::decode(garbage).is_err());
        assert!(postcard::from_bytes::<CoordRequest>(garbage).is_err());
    }
}
