//! Property test: random sequences of append / sync / read / truncate / compact / reset /
//! close+reopen behave exactly like a simple in-memory model of the log.

use journalkeeper::storage::{Journal, JournalOptions, Record, StorageError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        count: usize,
        len: usize,
        term_bump: bool,
    },
    Sync,
    Read {
        from_pct: u8,
        max_records: usize,
        max_bytes: usize,
    },
    Truncate {
        pct: u8,
    },
    Compact {
        pct: u8,
    },
    Reset {
        ahead: u64,
    },
    Reopen,
    /// Drop without `close` (a process crash: written data is in the page cache) and reopen.
    CrashReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..8, 0usize..150, any::<bool>()).prop_map(|(count, len, term_bump)| Op::Append { count, len, term_bump }),
        1 => Just(Op::Sync),
        3 => (any::<u8>(), 1usize..20, 1usize..2000).prop_map(|(from_pct, max_records, max_bytes)| Op::Read { from_pct, max_records, max_bytes }),
        2 => any::<u8>().prop_map(|pct| Op::Truncate { pct }),
        2 => any::<u8>().prop_map(|pct| Op::Compact { pct }),
        1 => (0u64..5).prop_map(|ahead| Op::Reset { ahead }),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashReopen),
    ]
}

/// The model: the retained records and the compaction point.
struct Model {
    compacted: (u64, u64),
    records: Vec<Record>,
}

impl Model {
    fn first(&self) -> u64 {
        self.compacted.0 + 1
    }
    fn last(&self) -> u64 {
        self.compacted.0 + self.records.len() as u64
    }
    fn last_term(&self) -> u64 {
        self.records.last().map_or(self.compacted.1, |r| r.term)
    }
    fn pick(&self, pct: u8) -> u64 {
        // An index in first..=last+1, spread by pct.
        let span = self.records.len() as u64 + 1;
        self.first() + (pct as u64 * span) / 256
    }
}

fn opts() -> JournalOptions {
    JournalOptions {
        max_segment_bytes: 600,
        max_record_bytes: 200,
    }
}

fn check_all(j: &Journal, m: &Model) {
    assert_eq!(j.first_index(), m.first());
    assert_eq!(j.last_index(), m.last());
    assert_eq!(j.compacted(), m.compacted);
    assert_eq!(j.term_at(m.compacted.0).unwrap(), m.compacted.1);
    assert_eq!(
        j.read(m.first(), usize::MAX, usize::MAX).unwrap(),
        m.records
    );
    for r in &m.records {
        assert_eq!(j.term_at(r.index).unwrap(), r.term);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn journal_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), opts()).unwrap();
        let mut m = Model { compacted: (0, 0), records: Vec::new() };
        let mut ts = 0u64;
        for op in ops {
            match op {
                Op::Append { count, len, term_bump } => {
                    let term = m.last_term().max(1) + term_bump as u64;
                    let batch: Vec<Record> = (0..count as u64)
                        .map(|i| {
                            ts += 1;
                            Record {
                                term,
                                index: m.last() + 1 + i,
                                partition: (ts % 3) as u16,
                                batch_size: 1,
                                timestamp_ms: ts,
                                payload: vec![ts as u8; len],
                            }
                        })
                        .collect();
                    prop_assert_eq!(j.append(&batch).unwrap(), m.last() + count as u64);
                    m.records.extend(batch);
                }
                Op::Sync => {
                    prop_assert_eq!(j.sync().unwrap(), m.last());
                    prop_assert_eq!(j.durable_index(), m.last());
                }
                Op::Read { from_pct, max_records, max_bytes } => {
                    let from = m.pick(from_pct);
                    let got = j.read(from, max_records, max_bytes).unwrap();
                    let mut want = Vec::new();
                    let mut bytes = 0;
                    for r in &m.records[(from - m.first()) as usize..] {
                        if want.len() == max_records || (!want.is_empty() && bytes + r.encoded_len() > max_bytes) {
                            break;
                        }
                        bytes += r.encoded_len();
                        want.push(r.clone());
                    }
                    prop_assert_eq!(got, want);
                    let beyond = j.read(m.last() + 2, 1, 1);
                    assert!(matches!(beyond, Err(StorageError::OutOfRange { .. })), "{beyond:?}");
                }
                Op::Truncate { pct } => {
                    let from = m.pick(pct);
                    j.truncate_suffix(from).unwrap();
                    if from <= m.last() {
                        m.records.truncate((from - m.first()) as usize);
                        prop_assert_eq!(j.durable_index(), m.last());
                    }
                    if m.compacted.0 > 0 {
                        let below = j.truncate_suffix(m.compacted.0);
                        assert!(matches!(below, Err(StorageError::Compacted { .. })), "{below:?}");
                    }
                }
                Op::Compact { pct } => {
                    let upto = m.pick(pct).saturating_sub(1).min(m.last());
                    j.compact_prefix(upto).unwrap();
                    if upto > m.compacted.0 {
                        let k = (upto - m.compacted.0) as usize;
                        let term = m.records[k - 1].term;
                        m.records.drain(..k);
                        m.compacted = (upto, term);
                    }
                }
                Op::Reset { ahead } => {
                    let index = m.last() + ahead;
                    let term = m.last_term() + 1;
                    j.reset_to_snapshot(index, term).unwrap();
                    m.records.clear();
                    m.compacted = (index, term);
                }
                Op::CrashReopen => {
                    drop(j);
                    j = Journal::open(dir.path(), opts()).unwrap();
                    prop_assert_eq!(j.durable_index(), m.last());
                }
                Op::Reopen => {
                    j.close().unwrap();
                    j = Journal::open(dir.path(), opts()).unwrap();
                    prop_assert_eq!(j.durable_index(), m.last());
                }
            }
            check_all(&j, &m);
        }
        j.close().unwrap();
        let j = Journal::open(dir.path(), opts()).unwrap();
        check_all(&j, &m);
    }
}
