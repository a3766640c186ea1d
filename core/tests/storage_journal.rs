//! Journal behaviour: recovery from torn tails and corruption, bad arguments, group commit,
//! truncation, compaction and snapshot reset.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use journalkeeper::storage::{Journal, JournalOptions, Record, StorageError};

fn rec(index: u64, term: u64, len: usize) -> Record {
    Record {
        term,
        index,
        partition: (index % 4) as u16,
        batch_size: 1,
        timestamp_ms: 1_700_000_000_000 + index,
        payload: (0..len).map(|i| (i as u64 * 31 + index) as u8).collect(),
    }
}

fn opts(segment: u64) -> JournalOptions {
    JournalOptions {
        max_segment_bytes: segment,
        max_record_bytes: 1024.min(segment as usize - 36),
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn torn_tail_at_every_byte_of_the_final_records_keeps_exactly_the_complete_records() {
    for segment_size in [1 << 20, 700] {
        let src = tempfile::tempdir().unwrap();
        let j = Journal::open(src.path(), opts(segment_size)).unwrap();
        let mut all = Vec::new();
        for batch in 0..8u64 {
            let recs: Vec<_> = (0..3)
                .map(|i| {
                    rec(
                        batch * 3 + i + 1,
                        1 + batch / 3,
                        20 + (batch * 7 + i) as usize,
                    )
                })
                .collect();
            assert_eq!(j.append_durable(&recs).unwrap(), batch * 3 + 3);
            all.extend(recs);
        }
        j.close().unwrap();
        let segs = segments(src.path());
        let last_seg = segs.last().unwrap().clone();
        let bytes = fs::read(&last_seg).unwrap();
        let first_in_last: u64 = last_seg
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // Record boundaries inside the last segment.
        let mut ends = vec![0usize];
        for r in all.iter().filter(|r| r.index >= first_in_last) {
            ends.push(ends.last().unwrap() + r.encoded_len());
        }
        assert_eq!(*ends.last().unwrap(), bytes.len());
        let start_cut = ends[ends.len().saturating_sub(4)];
        for cut in start_cut..bytes.len() {
            let dst = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dst.path());
            fs::write(
                dst.path().join(last_seg.file_name().unwrap()),
                &bytes[..cut],
            )
            .unwrap();
            let complete = ends.iter().filter(|&&e| e <= cut).count() as u64 - 1;
            let expect_last = first_in_last - 1 + complete;
            let j = Journal::open(dst.path(), opts(segment_size))
                .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(j.last_index(), expect_last, "cut {cut}");
            let got = j.read(1, 1000, usize::MAX).unwrap();
            assert_eq!(got, all[..expect_last as usize].to_vec(), "cut {cut}");
            if cut % 5 != 0 {
                continue;
            }
            // The journal continues cleanly after the cut.
            let next = rec(expect_last + 1, 9, 10);
            j.append_durable(std::slice::from_ref(&next)).unwrap();
            drop(j);
            let j = Journal::open(dst.path(), opts(segment_size)).unwrap();
            assert_eq!(j.read(expect_last + 1, 10, usize::MAX).unwrap(), vec![next]);
        }
    }
}

#[test]
fn garbage_in_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(1 << 20)).unwrap();
    let recs: Vec<_> = (1..=5).map(|i| rec(i, 1, 50)).collect();
    j.append_durable(&recs).unwrap();
    j.close().unwrap();
    let seg = &segments(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    fs::write(seg, &bytes).unwrap();
    let j = Journal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(j.last_index(), 4);
    assert_eq!(j.read(1, 10, usize::MAX).unwrap(), recs[..4].to_vec());
}

#[test]
fn a_flipped_byte_before_the_tail_fails_open_naming_file_and_offset() {
    let recs: Vec<_> = (1..=10).map(|i| rec(i, 1, 40)).collect();
    let rec_len = recs[0].encoded_len();
    // Flip a byte in every field of record 3 (of 10): the error must name file and offset.
    for pos in [0, 3, 5, 9, 17, 25, 27, 30, 40, rec_len - 1] {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), opts(1 << 20)).unwrap();
        j.append_durable(&recs).unwrap();
        j.close().unwrap();
        let seg = segments(dir.path())[0].clone();
        let mut bytes = fs::read(&seg).unwrap();
        let offset = 2 * rec_len;
        bytes[offset + pos] ^= 0x04;
        fs::write(&seg, &bytes).unwrap();
        let err = Journal::open(dir.path(), opts(1 << 20)).unwrap_err();
        match &err {
            StorageError::CorruptRecord {
                path, offset: o, ..
            } => {
                assert_eq!(path, &seg);
                assert_eq!(*o, offset as u64, "pos {pos}");
            }
            other => panic!("pos {pos}: unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("00000000000000000001.seg") && msg.contains(&format!("offset {offset}")),
            "{msg}"
        );
    }
}

#[test]
fn corruption_in_a_sealed_segment_is_reported_on_read_and_on_strict_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(600)).unwrap();
    let recs: Vec<_> = (1..=30).map(|i| rec(i, 1, 60)).collect();
    j.append_durable(&recs).unwrap();
    j.close().unwrap();
    let seg = segments(dir.path())[0].clone();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[recs[0].encoded_len() + 50] ^= 1; // inside record 2
    fs::write(&seg, &bytes).unwrap();
    // Sealed segments are trusted through their .idx file at open, and checked on every read.
    let j = Journal::open(dir.path(), opts(600)).unwrap();
    let err = j.read(1, 100, usize::MAX).unwrap_err();
    assert!(
        matches!(err, StorageError::CorruptRecord { ref path, offset, .. } if *path == seg && offset == recs[0].encoded_len() as u64),
        "{err}"
    );
    drop(j);
    // Without the .idx file the segment is rescanned strictly at open.
    fs::remove_file(seg.with_extension("idx")).unwrap();
    let err = Journal::open(dir.path(), opts(600)).unwrap_err();
    assert!(
        matches!(err, StorageError::CorruptRecord { ref path, .. } if *path == seg),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(4096)).unwrap();
    let recs: Vec<_> = (1..=20).map(|i| rec(i, 2, 100)).collect();
    j.append_durable(&recs).unwrap();
    assert!(matches!(
        j.read(22, 1, 100),
        Err(StorageError::OutOfRange {
            index: 22,
            last_index: 20
        })
    ));
    assert_eq!(j.read(21, 1, 100).unwrap(), vec![]);
    assert!(matches!(
        j.read(0, 1, 100),
        Err(StorageError::Compacted {
            index: 0,
            first_index: 1
        })
    ));
    assert!(matches!(
        j.append(&[rec(22, 2, 1)]),
        Err(StorageError::NonContiguous {
            expected: 21,
            got: 22
        })
    ));
    assert!(matches!(
        j.append(&[rec(21, 1, 1)]),
        Err(StorageError::TermRegression { index: 21, .. })
    ));
    assert!(matches!(
        j.append(&[rec(21, 2, 1025)]),
        Err(StorageError::RecordTooLarge {
            index: 21,
            size: 1025,
            max: 1024
        })
    ));
    // A failed batch writes nothing, even if its first records were fine.
    assert!(j.append(&[rec(21, 2, 1), rec(22, 2, 5000)]).is_err());
    assert_eq!(j.last_index(), 20);
    assert!(matches!(
        j.term_at(21),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        j.truncate_suffix(22),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        j.compact_prefix(21),
        Err(StorageError::OutOfRange { .. })
    ));
    j.compact_prefix(10).unwrap();
    assert!(matches!(
        j.truncate_suffix(10),
        Err(StorageError::Compacted {
            index: 10,
            first_index: 11
        })
    ));
    assert!(matches!(
        j.read(5, 1, 100),
        Err(StorageError::Compacted {
            index: 5,
            first_index: 11
        })
    ));
    assert!(matches!(j.term_at(9), Err(StorageError::Compacted { .. })));
    assert_eq!(j.term_at(10).unwrap(), 2);
    let bad = JournalOptions {
        max_segment_bytes: 100,
        max_record_bytes: 1024,
    };
    assert!(matches!(
        Journal::open(tempfile::tempdir().unwrap().path(), bad),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn concurrent_appenders_share_fdatasyncs_and_learn_durable_indices() {
    let dir = tempfile::tempdir().unwrap();
    let j = Arc::new(Journal::open(dir.path(), opts(1 << 16)).unwrap());
    let order = Arc::new(Mutex::new(()));
    let threads = 8;
    let per_thread = 40;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let j = Arc::clone(&j);
            let order = Arc::clone(&order);
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    let last = {
                        let _g = order.lock().unwrap();
                        let next = j.last_index() + 1;
                        j.append(&[rec(next, 1, 100), rec(next + 1, 1, 100)])
                            .unwrap()
                    };
                    let durable = j.sync().unwrap();
                    assert!(durable >= last, "durable {durable} < appended {last}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let appends = (threads * per_thread) as u64;
    assert_eq!(j.last_index(), 2 * appends);
    assert_eq!(j.durable_index(), 2 * appends);
    let syncs = j.syncs_performed();
    assert!(syncs < appends, "{syncs} fdatasyncs for {appends} appends");
    eprintln!("{syncs} fdatasyncs for {appends} appends");
}

#[test]
fn truncate_compact_and_reset_keep_prev_term_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(800)).unwrap();
    let recs: Vec<_> = (1..=60).map(|i| rec(i, 1 + i / 10, 50)).collect();
    j.append_durable(&recs).unwrap();
    let segs_before = j.segment_count();
    j.compact_prefix(25).unwrap();
    assert!(j.segment_count() < segs_before);
    assert_eq!((j.first_index(), j.compacted()), (26, (25, 3)));
    j.truncate_suffix(40).unwrap();
    assert_eq!((j.last_index(), j.durable_index()), (39, 39));
    let more: Vec<_> = (40..=45).map(|i| rec(i, 7, 30)).collect();
    j.append_durable(&more).unwrap();
    j.close().unwrap();
    let j = Journal::open(dir.path(), opts(800)).unwrap();
    assert_eq!(
        (j.first_index(), j.last_index(), j.term_at(25).unwrap()),
        (26, 45, 3)
    );
    let mut expect = recs[25..39].to_vec();
    expect.extend(more);
    assert_eq!(j.read(26, 100, usize::MAX).unwrap(), expect);
    j.reset_to_snapshot(100, 9).unwrap();
    assert_eq!(
        (j.first_index(), j.last_index(), j.term_at(100).unwrap()),
        (101, 100, 9)
    );
    j.append_durable(&[rec(101, 9, 5)]).unwrap();
    drop(j);
    let j = Journal::open(dir.path(), opts(800)).unwrap();
    assert_eq!(
        (j.first_index(), j.last_index(), j.term_at(100).unwrap()),
        (101, 101, 9)
    );
    assert_eq!(j.read(101, 10, usize::MAX).unwrap(), vec![rec(101, 9, 5)]);
}

#[test]
fn reopening_with_a_smaller_record_limit_keeps_existing_large_records() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(1 << 20)).unwrap();
    let recs: Vec<_> = (1..=3).map(|i| rec(i, 1, 1000)).collect();
    j.append_durable(&recs).unwrap();
    j.close().unwrap();
    let smaller = JournalOptions {
        max_segment_bytes: 1 << 20,
        max_record_bytes: 100,
    };
    let j = Journal::open(dir.path(), smaller).unwrap();
    assert_eq!(j.read(1, 10, usize::MAX).unwrap(), recs);
    assert!(matches!(
        j.append(&[rec(4, 1, 101)]),
        Err(StorageError::RecordTooLarge { .. })
    ));
}

#[test]
fn journal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Journal>();
}

#[test]
fn detached_segments_are_deleted_paced_or_by_the_next_open_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), opts(700)).unwrap();
    let all: Vec<Record> = (1..=60).map(|i| rec(i, 1, 40)).collect();
    j.append_durable(&all).unwrap();
    let before = segments(dir.path()).len();
    assert!(before > 4, "{before} segments");

    // Paced removal: files shrink step by step, then go; the journal reads on.
    let files = j.compact_prefix_detached(20).unwrap();
    assert!(!files.is_empty());
    assert_eq!(j.first_index(), 21);
    files
        .remove(Some((64, std::time::Duration::from_millis(0))))
        .unwrap();
    let after_paced = segments(dir.path()).len();
    assert!(after_paced < before);
    assert_eq!(j.read(21, 100, usize::MAX).unwrap(), all[20..].to_vec());

    // "Crash" with detached files left on disk: the next open deletes them.
    let files = j.compact_prefix_detached(45).unwrap();
    assert!(!files.is_empty());
    drop(files);
    assert_eq!(segments(dir.path()).len(), after_paced);
    drop(j);
    let j = Journal::open(dir.path(), opts(700)).unwrap();
    assert_eq!(j.first_index(), 46);
    assert!(segments(dir.path()).len() < after_paced);
    assert_eq!(j.read(46, 100, usize::MAX).unwrap(), all[45..].to_vec());
}
