//! Partition index: lookups, truncation and compaction follow the journal, and the index is
//! rebuilt correctly after its files are deleted or truncated.

use std::fs;
use std::path::Path;

use journalkeeper::storage::{Journal, JournalOptions, PartitionIndex, Record, StorageError};

fn opts() -> JournalOptions {
    JournalOptions {
        max_segment_bytes: 2048,
        max_record_bytes: 256,
    }
}

/// Appends `n` records spread over partitions 0..3 (partition = index*7 % 3) and indexes them.
fn fill(j: &Journal, idx: &mut PartitionIndex, n: u64, term: u64) {
    let start = j.last_index() + 1;
    let recs: Vec<Record> = (start..start + n)
        .map(|i| Record {
            term,
            index: i,
            partition: (i * 7 % 3) as u16,
            batch_size: 1,
            timestamp_ms: i,
            payload: i.to_le_bytes().to_vec(),
        })
        .collect();
    j.append_durable(&recs).unwrap();
    idx.index_records(&recs).unwrap();
}

/// The expected mapping, computed directly from the journal's retained records.
fn expected(j: &Journal) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = vec![Vec::new(); 3];
    for r in j.read(j.first_index(), usize::MAX, usize::MAX).unwrap() {
        out[r.partition as usize].push(r.index);
    }
    out
}

fn assert_matches(idx: &PartitionIndex, j: &Journal, base_counts: [u64; 3]) {
    let want = expected(j);
    for p in 0..3u16 {
        let (min, next) = idx.bounds(p).unwrap();
        assert_eq!(min, base_counts[p as usize], "partition {p} min");
        let globals: Vec<u64> = (min..next).map(|k| idx.get(p, k).unwrap()).collect();
        assert_eq!(globals, want[p as usize], "partition {p}");
    }
    assert_eq!(idx.indexed_upto(), j.last_index());
}

fn pidx_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pidx"))
        .collect();
    v.sort();
    v
}

#[test]
fn lookups_follow_appends_truncation_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    fill(&j, &mut idx, 90, 1);
    assert_matches(&idx, &j, [0; 3]);
    let rec = &idx.read(&j, 1, 5, 2).unwrap();
    assert_eq!(rec.len(), 2);
    assert!(rec.iter().all(|r| r.partition == 1));
    assert!(matches!(
        idx.get(1, 30),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(idx.get(9, 0), Err(StorageError::NotFound(_))));

    j.truncate_suffix(61).unwrap();
    idx.truncate_suffix(&j, 61).unwrap();
    assert_matches(&idx, &j, [0; 3]);
    fill(&j, &mut idx, 10, 2);
    assert_matches(&idx, &j, [0; 3]);

    idx.compact_prefix(30).unwrap();
    j.compact_prefix(30).unwrap();
    assert_matches(&idx, &j, [10, 10, 10]);
    assert!(matches!(
        idx.get(0, 9),
        Err(StorageError::Compacted {
            index: 9,
            first_index: 10
        })
    ));
    idx.close().unwrap();
    j.close().unwrap();

    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    assert_matches(&idx, &j, [10, 10, 10]);
}

#[test]
fn index_catches_up_when_behind_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    fill(&j, &mut idx, 40, 1);
    idx.checkpoint().unwrap();
    fill(&j, &mut idx, 40, 1);
    // Records the index never saw (crash between journal append and indexing).
    let recs: Vec<Record> = (81..=95)
        .map(|i| Record {
            term: 1,
            index: i,
            partition: 2,
            payload: vec![1],
            ..Record::default()
        })
        .collect();
    j.append_durable(&recs).unwrap();
    drop(idx); // no checkpoint: "crash"
    let idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    assert_matches(&idx, &j, [0; 3]);
}

#[test]
fn index_reset_to_a_snapshot_the_journal_never_reached_is_rebuilt_from_the_journal() {
    // The apply thread reset the index to an installed snapshot; the node stopped before the
    // writer reset the log (which still holds 1..=32).
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    fill(&j, &mut idx, 32, 1);
    idx.reset_to_snapshot(158, 2, &[(0, 50), (1, 60)]).unwrap();
    drop(idx);
    let idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    assert_matches(&idx, &j, [0; 3]);
}

#[test]
fn index_is_rebuilt_after_deleting_or_truncating_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("pidx");
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(&pdir, &j).unwrap();
    fill(&j, &mut idx, 120, 1);
    idx.compact_prefix(21).unwrap();
    j.compact_prefix(21).unwrap();
    fill(&j, &mut idx, 30, 2);
    idx.close().unwrap();
    let base = [7, 7, 7];

    // A truncated partition file.
    let files = pidx_files(&pdir);
    assert_eq!(files.len(), 3);
    let len = fs::metadata(&files[1]).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len(len - 12)
        .unwrap();
    let idx = PartitionIndex::open(&pdir, &j).unwrap();
    assert_matches(&idx, &j, base);
    drop(idx);

    // Every partition file deleted.
    for f in pidx_files(&pdir) {
        fs::remove_file(f).unwrap();
    }
    let idx = PartitionIndex::open(&pdir, &j).unwrap();
    assert_matches(&idx, &j, base);
    drop(idx);

    // The whole directory deleted after compaction: numbering is lost, so open says so.
    fs::remove_dir_all(&pdir).unwrap();
    let err = PartitionIndex::open(&pdir, &j).unwrap_err();
    assert!(matches!(err, StorageError::CorruptFile { .. }), "{err}");
}

#[test]
fn index_is_rebuilt_from_scratch_when_its_directory_is_lost_before_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("pidx");
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(&pdir, &j).unwrap();
    fill(&j, &mut idx, 100, 1);
    idx.close().unwrap();
    fs::remove_dir_all(&pdir).unwrap();
    let idx = PartitionIndex::open(&pdir, &j).unwrap();
    assert_matches(&idx, &j, [0; 3]);
}

#[test]
fn index_follows_a_journal_truncated_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("pidx");
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(&pdir, &j).unwrap();
    fill(&j, &mut idx, 60, 1);
    idx.close().unwrap();
    // The journal loses its suffix and gets different entries (new term) while the index is
    // closed: the checkpointed (index, term) no longer matches, so the index is rebuilt.
    j.truncate_suffix(31).unwrap();
    let recs: Vec<Record> = (31..=70)
        .map(|i| Record {
            term: 5,
            index: i,
            partition: 0,
            payload: vec![0],
            ..Record::default()
        })
        .collect();
    j.append_durable(&recs).unwrap();
    let idx = PartitionIndex::open(&pdir, &j).unwrap();
    assert_matches(&idx, &j, [0; 3]);
}

#[test]
fn reset_to_snapshot_continues_each_partition_at_the_snapshots_numbering_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("j"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("p"), &j).unwrap();
    fill(&j, &mut idx, 10, 1);
    // A snapshot at index 100 arrives: the journal restarts after it, partitions 0 and 5
    // continue at 40 and 7; partition 1 is gone.
    j.reset_to_snapshot(100, 3).unwrap();
    idx.reset_to_snapshot(100, 3, &[(0, 40), (5, 7)]).unwrap();
    assert_eq!(idx.indexed_upto(), 100);
    assert_eq!(idx.partitions(), vec![0, 5]);
    assert_eq!(idx.bounds(0), Some((40, 40)));
    assert!(matches!(
        idx.get(0, 39),
        Err(StorageError::Compacted { .. })
    ));
    let recs: Vec<Record> = (101..=102)
        .map(|i| Record {
            term: 3,
            index: i,
            partition: 5,
            batch_size: 1,
            timestamp_ms: i,
            payload: vec![],
        })
        .collect();
    j.append_durable(&recs).unwrap();
    idx.index_records(&recs).unwrap();
    assert_eq!(idx.get(5, 8).unwrap(), 102);
    idx.close().unwrap();
    let idx = PartitionIndex::open(dir.path().join("p"), &j).unwrap();
    assert_eq!(idx.bounds(5), Some((7, 9)));
    assert_eq!(idx.get(5, 7).unwrap(), 101);
    assert_eq!(idx.bounds(0), Some((40, 40)));
}

/// The server's path: checkpoints captured under its lock and written later (while indexing
/// goes on), compaction only after the checkpoint that covers it is durable, then a crash.
#[test]
fn deferred_checkpoints_written_later_survive_a_crash_and_cover_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    fill(&j, &mut idx, 60, 1);
    let early = idx.prepare_checkpoint().unwrap();
    fill(&j, &mut idx, 30, 1);
    // Written after more was indexed: it still describes the state at its capture.
    early.write().unwrap();
    let cp = idx.compact_prefix_deferred(30).unwrap();
    assert!((0..3).all(|p| idx.bounds(p).unwrap().0 == 10));
    fill(&j, &mut idx, 9, 1);
    cp.write().unwrap();
    j.compact_prefix(30).unwrap();
    drop(idx); // "crash": nothing written after the compaction's checkpoint
    drop(j);

    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    assert_matches(&idx, &j, [10, 10, 10]);
    assert_eq!(idx.indexed_upto(), 99);
}

#[test]
fn checkpoint_due_follows_the_records_indexed_since_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open(dir.path().join("pidx"), &j).unwrap();
    assert!(!idx.checkpoint_due());
    let recs: Vec<Record> = (1..=70_000u64)
        .map(|i| Record {
            term: 1,
            index: i,
            partition: 0,
            ..Record::default()
        })
        .collect();
    idx.index_records_deferred(&recs).unwrap();
    assert!(idx.checkpoint_due());
    let _pending = idx.prepare_checkpoint().unwrap();
    assert!(!idx.checkpoint_due());
}

/// A placer for the test: a record of partition 9 holds one entry of partition 0 and two of
/// partition 1 (as a transaction's publish record holds entries of several partitions).
fn spread(r: &Record, out: &mut Vec<u16>) {
    if r.partition == 9 {
        out.extend([0, 1, 1]);
    } else {
        out.push(r.partition);
    }
}

#[test]
fn a_placer_puts_one_record_in_several_partitions_and_a_rebuild_places_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal"), opts()).unwrap();
    let mut idx = PartitionIndex::open_with(dir.path().join("pidx"), &j, spread).unwrap();
    let recs: Vec<Record> = [0u16, 9, 1, 9, 0]
        .iter()
        .zip(1u64..)
        .map(|(&partition, index)| Record {
            term: 1,
            index,
            partition,
            batch_size: 1,
            timestamp_ms: index,
            payload: vec![partition as u8],
        })
        .collect();
    j.append_durable(&recs).unwrap();
    idx.index_records(&recs).unwrap();
    let globals = |idx: &PartitionIndex, p: u16| {
        let (min, next) = idx.bounds(p).unwrap();
        (min..next)
            .map(|k| idx.get(p, k).unwrap())
            .collect::<Vec<u64>>()
    };
    assert_eq!(globals(&idx, 0), [1, 2, 4, 5]);
    assert_eq!(globals(&idx, 1), [2, 2, 3, 4, 4]);
    assert!(
        idx.bounds(9).is_none(),
        "the record itself is in no partition"
    );
    // Truncation removes everything a record placed.
    idx.truncate_suffix(&j, 4).unwrap();
    assert_eq!(globals(&idx, 1), [2, 2, 3]);
    idx.index_records(&recs[3..]).unwrap();
    idx.close().unwrap();
    for f in pidx_files(&dir.path().join("pidx")) {
        fs::remove_file(f).unwrap();
    }
    let idx = PartitionIndex::open_with(dir.path().join("pidx"), &j, spread).unwrap();
    assert_eq!(globals(&idx, 0), [1, 2, 4, 5]);
    assert_eq!(globals(&idx, 1), [2, 2, 3, 4, 4]);
}
