//! Property test: the partition index agrees with a model computed from the journal's records
//! through random appends, truncations, compactions, reopen and loss of its files.

use std::fs;

use journalkeeper::storage::{Journal, JournalOptions, PartitionIndex, Record};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append { partitions: Vec<u16> },
    Truncate { pct: u8 },
    Compact { pct: u8 },
    Reopen { checkpoint: bool },
    LoseFiles { truncate_only: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec(0u16..4, 1..12).prop_map(|partitions| Op::Append { partitions }),
        2 => any::<u8>().prop_map(|pct| Op::Truncate { pct }),
        1 => any::<u8>().prop_map(|pct| Op::Compact { pct }),
        2 => any::<bool>().prop_map(|checkpoint| Op::Reopen { checkpoint }),
        1 => any::<bool>().prop_map(|truncate_only| Op::LoseFiles { truncate_only }),
    ]
}

/// Model: every record ever kept, with its partition and partition index (indices are assigned
/// in log order and never reused after compaction; a truncation frees them).
#[derive(Default)]
struct Model {
    /// (global index, partition) of records not truncated, compacted ones included.
    all: Vec<(u64, u16)>,
    compacted: u64,
}

impl Model {
    fn expected(&self, p: u16) -> (u64, Vec<u64>) {
        let mine: Vec<u64> = self
            .all
            .iter()
            .filter(|&&(_, q)| q == p)
            .map(|&(g, _)| g)
            .collect();
        let min = mine.iter().filter(|&&g| g <= self.compacted).count() as u64;
        (
            min,
            mine.into_iter().filter(|&g| g > self.compacted).collect(),
        )
    }
}

fn opts() -> JournalOptions {
    JournalOptions {
        max_segment_bytes: 512,
        max_record_bytes: 64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn partition_index_matches_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let (jdir, pdir) = (dir.path().join("j"), dir.path().join("p"));
        let j = Journal::open(&jdir, opts()).unwrap();
        let mut idx = Some(PartitionIndex::open(&pdir, &j).unwrap());
        let mut m = Model::default();
        for op in ops {
            let ix = idx.as_mut().unwrap();
            let last = j.last_index();
            match op {
                Op::Append { partitions } => {
                    let recs: Vec<Record> = partitions.iter().enumerate().map(|(i, &p)| Record {
                        term: 1, index: last + 1 + i as u64, partition: p, payload: vec![p as u8], ..Record::default()
                    }).collect();
                    j.append(&recs).unwrap();
                    ix.index_records(&recs).unwrap();
                    m.all.extend(recs.iter().map(|r| (r.index, r.partition)));
                }
                Op::Truncate { pct } => {
                    let first = j.first_index();
                    let from = first + (pct as u64 * (last + 2 - first)) / 256;
                    j.truncate_suffix(from).unwrap();
                    ix.truncate_suffix(&j, from).unwrap();
                    m.all.retain(|&(g, _)| g < from);
                }
                Op::Compact { pct } => {
                    let upto = (pct as u64 * (last + 1)) / 256;
                    if upto > m.compacted {
                        ix.compact_prefix(upto).unwrap();
                        j.compact_prefix(upto).unwrap();
                        m.compacted = upto;
                    }
                }
                Op::Reopen { checkpoint } => {
                    let ix = idx.take().unwrap();
                    if checkpoint { ix.close().unwrap() } else { drop(ix) }
                    idx = Some(PartitionIndex::open(&pdir, &j).unwrap());
                }
                Op::LoseFiles { truncate_only } => {
                    drop(idx.take());
                    for e in fs::read_dir(&pdir).unwrap() {
                        let p = e.unwrap().path();
                        if p.extension().is_some_and(|e| e == "pidx") {
                            if truncate_only {
                                let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
                                let len = f.metadata().unwrap().len();
                                f.set_len(len / 2).unwrap();
                            } else {
                                fs::remove_file(&p).unwrap();
                            }
                        }
                    }
                    idx = Some(PartitionIndex::open(&pdir, &j).unwrap());
                }
            }
            let ix = idx.as_ref().unwrap();
            prop_assert_eq!(ix.indexed_upto(), j.last_index());
            for p in 0..4u16 {
                let (min, globals) = m.expected(p);
                match ix.bounds(p) {
                    None => prop_assert!(globals.is_empty() && min == 0, "partition {} missing", p),
                    Some((got_min, next)) => {
                        prop_assert_eq!(got_min, min, "min of partition {}", p);
                        let got: Vec<u64> = (got_min..next).map(|k| ix.get(p, k).unwrap()).collect();
                        prop_assert_eq!(got, globals, "partition {}", p);
                    }
                }
            }
        }
    }
}
