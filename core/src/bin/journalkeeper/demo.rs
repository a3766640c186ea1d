//! `journalkeeper demo`: a 3-node cluster of child processes (this binary, `server --config`)
//! on loopback, exercised end to end — appends to several partitions, KV writes with a watch,
//! a two-step read on a follower, SIGKILL of the leader, re-election and further writes, a
//! restart of the killed node and its catch-up — then a short report. The children are killed
//! on every exit path (the `LocalCluster` guard), including errors, panics and Ctrl-C.

use std::time::{Duration, Instant};

use journalkeeper::api::{QueryConsistency, ResponseConfig};
use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::Client;
use journalkeeper::state::watch::{KvEvent, WatchFilter};

use crate::AnyResult;

const WAIT: Duration = Duration::from_secs(15);
const PARTITIONS: u16 = 3;

pub async fn run() -> AnyResult<()> {
    let exe = std::env::current_exe()?;
    let mut cluster = LocalCluster::create(exe, LocalClusterOptions::default())?;
    let outcome = tokio::select! {
        r = demo(&mut cluster) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    if let Err(e) = &outcome {
        eprintln!("demo failed: {e}");
        for i in 0..cluster.len() {
            eprintln!(
                "--- last lines of node {} log ---\n{}",
                i + 1,
                cluster.log_tail(i, 15)
            );
        }
    }
    cluster.kill_all();
    outcome
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Appends `rounds` batches of 4 entries to each partition, concurrently per partition;
/// returns the number of entries written.
async fn write_rounds(client: &Client, tag: &str, rounds: u32) -> AnyResult<u64> {
    let mut tasks = Vec::new();
    for p in 0..PARTITIONS {
        let client = client.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            for r in 0..rounds {
                let batch = (0..4)
                    .map(|k| format!("{tag} p{p} r{r} e{k}").into_bytes())
                    .collect();
                client
                    .journal()
                    .append(p, batch, ResponseConfig::Replication)
                    .await?;
            }
            Ok::<u64, journalkeeper::api::Error>(rounds as u64 * 4)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

async fn next_event(stream: &mut journalkeeper::client::WatchStream) -> AnyResult<KvEvent> {
    Ok(tokio::time::timeout(WAIT, stream.next())
        .await
        .map_err(|_| "no watch event within 15 s")??)
}

fn show(v: &Option<Vec<u8>>) -> String {
    v.as_ref()
        .map_or("-".into(), |b| String::from_utf8_lossy(b).into_owned())
}

async fn demo(cluster: &mut LocalCluster) -> AnyResult<()> {
    let t0 = Instant::now();
    println!(
        "journalkeeper {} demo: a 3-node cluster of child processes in {}",
        journalkeeper::VERSION,
        cluster.root().display()
    );
    cluster.start_all()?;
    let all: Vec<usize> = (0..cluster.len()).collect();
    let (leader, ls) = cluster.wait_for_leader(&all, WAIT).await?;
    let elected = t0.elapsed();
    println!(
        "[{:>5}] nodes {} up; node {} elected leader in term {}",
        ms(elected),
        cluster.addrs().join(", "),
        leader + 1,
        ls.term
    );

    // 1. Journal appends to several partitions.
    let client = cluster.client().await?;
    let t = Instant::now();
    let first_writes = write_rounds(&client, "before", 10).await?;
    let write_time = t.elapsed();
    let maxi = client.journal().max_indices().await?;
    println!(
        "[{:>5}] appended {first_writes} entries (REPLICATION) to partitions 0..{} in {}; \
         next index per partition: {:?}",
        ms(t0.elapsed()),
        PARTITIONS - 1,
        ms(write_time),
        maxi
    );

    // 2. KV with a watch on the prefix.
    let kv = client.kv();
    let mut watch = kv.watch(WatchFilter::Prefix("config/".into()), 0).await?;
    kv.set("config/mode", b"fast".to_vec()).await?;
    kv.set("config/replicas", b"3".to_vec()).await?;
    let cas_ok = kv
        .compare_and_set(
            "config/mode",
            Some(b"fast".to_vec()),
            Some(b"safe".to_vec()),
        )
        .await?;
    let cas_stale = kv
        .compare_and_set(
            "config/mode",
            Some(b"fast".to_vec()),
            Some(b"other".to_vec()),
        )
        .await?;
    kv.remove("config/replicas").await?;
    let listed = kv.list("config/").await?;
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(next_event(&mut watch).await?);
    }
    println!(
        "[{:>5}] KV: set, set, CAS fast->safe ({}), stale CAS ({}), remove; list config/ = {:?}",
        ms(t0.elapsed()),
        if cas_ok.swapped { "swapped" } else { "refused" },
        if cas_stale.swapped {
            "swapped"
        } else {
            "refused"
        },
        listed
            .iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
    );
    for e in &events {
        println!(
            "         watch: index {} {} {} -> {}",
            e.index,
            e.key,
            show(&e.old_value),
            show(&e.new_value)
        );
    }

    // 3. Two-step read on a follower: the leader's applied index, then SEQUENTIAL there.
    let follower = (leader + 1) % cluster.len();
    let fclient = cluster.client_of(follower).await?;
    let floor = fclient.sync().await?;
    let t = Instant::now();
    let entries = fclient
        .journal()
        .get(0, 0, 1000, QueryConsistency::Sequential)
        .await?;
    println!(
        "[{:>5}] two-step read on follower node {}: leader applied index {floor}, then \
         {} entries of partition 0 read there in {} (last: {:?})",
        ms(t0.elapsed()),
        follower + 1,
        entries.len(),
        ms(t.elapsed()),
        entries
            .last()
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
    );
    fclient.close();

    // 4. SIGKILL the leader while writing; measure until the first acknowledged write.
    let before_kill = client.journal().max_indices().await?;
    let killed_at = Instant::now();
    cluster.kill(leader)?;
    println!(
        "[{:>5}] SIGKILL leader node {} (pid gone); writing on",
        ms(t0.elapsed()),
        leader + 1
    );
    let idx = client
        .journal()
        .append(
            0,
            vec![b"first write after the kill".to_vec()],
            ResponseConfig::Replication,
        )
        .await?;
    let failover = killed_at.elapsed();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let (new_leader, ns) = cluster.wait_for_leader(&survivors, WAIT).await?;
    println!(
        "[{:>5}] node {} is the new leader (term {}); first write after the kill acknowledged \
         {} after it, at partition 0 index {}",
        ms(t0.elapsed()),
        new_leader + 1,
        ns.term,
        ms(failover),
        idx.unwrap_or_default()
    );
    let t = Instant::now();
    let more = write_rounds(&client, "after", 5).await?;
    kv.set(
        "config/leader",
        format!("node {}", new_leader + 1).into_bytes(),
    )
    .await?;
    let e = next_event(&mut watch).await?;
    let after_kill = client.journal().max_indices().await?;
    println!(
        "[{:>5}] {more} more entries with one node down in {}; next index per partition {:?} \
         (was {:?}); the watch resumed and saw index {} {} -> {}",
        ms(t0.elapsed()),
        ms(t.elapsed()),
        after_kill,
        before_kill,
        e.index,
        e.key,
        show(&e.new_value)
    );

    // 5. Restart the killed node; it catches up from the new leader.
    let target = cluster.status(new_leader, WAIT).await?.commit_index;
    let t = Instant::now();
    cluster.start(leader)?;
    let caught = cluster.wait_for_applied(leader, target, WAIT).await?;
    let catch_up = t.elapsed();
    let rclient = cluster.client_of(leader).await?;
    let mut same = true;
    let mut compared = 0;
    for p in 0..PARTITIONS {
        let on_leader = client
            .journal()
            .get(p, 0, 4096, QueryConsistency::Strict)
            .await?;
        let on_restarted = rclient
            .journal()
            .get(p, 0, 4096, QueryConsistency::None)
            .await?;
        compared += on_leader.len();
        same &= on_leader == on_restarted;
    }
    rclient.close();
    println!(
        "[{:>5}] restarted node {}: applied index {} (≥ leader's commit {target}) after {}; \
         its {compared} entries in {PARTITIONS} partitions are {} the leader's",
        ms(t0.elapsed()),
        leader + 1,
        caught.applied_index,
        ms(catch_up),
        if same {
            "identical to"
        } else {
            "DIFFERENT FROM"
        }
    );
    client.close();
    drop(watch);
    if !same {
        return Err("the restarted node's journal differs from the leader's".into());
    }

    // 6. Clean shutdown of every node (SIGTERM).
    let mut clean = 0;
    for i in 0..cluster.len() {
        if cluster.stop(i, Duration::from_secs(5))? {
            clean += 1;
        }
    }
    println!(
        "[{:>5}] SIGTERM to every node: {clean}/{} exited cleanly",
        ms(t0.elapsed()),
        cluster.len()
    );
    println!();
    println!("report");
    println!(
        "  cluster            3 child processes (journalkeeper server --config), loopback, fsync on"
    );
    println!(
        "  leader             node {} (term {}) -> SIGKILL -> node {} (term {})",
        leader + 1,
        ls.term,
        new_leader + 1,
        ns.term
    );
    println!(
        "  entries            {} before the kill, {} after ({} partitions); KV: 6 writes, {} \
         watch events",
        first_writes,
        more + 1,
        PARTITIONS,
        events.len() + 1
    );
    println!(
        "  timings            election {}, {first_writes} appends {}, failover to the first \
         acknowledged write {}, catch-up after restart {}, total {}",
        ms(elected),
        ms(write_time),
        ms(failover),
        ms(catch_up),
        ms(t0.elapsed())
    );
    println!(
        "  consistency        restarted node identical to the leader: {same}; follower \
         two-step read at index {floor}"
    );
    Ok(())
}
