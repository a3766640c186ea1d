//! Observers in process: 3 voters, 2 observers pulling from the voters and 2 pulling from
//! those observers, under concurrent writes; a first-level observer stopped and restarted (its
//! children switch parents); an observer that fell behind compaction catches up by fetching
//! its parent's state; an observer converted to a voter and back. Every observer ends with the
//! leader's journal and KV; SEQUENTIAL reads never go backwards across observers.

mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::{Client, MemberRole};
use journalkeeper::server::{Server, Standing};
use server_support::{Cluster, client_of, eventually, free_addr};

const LONG: Duration = Duration::from_secs(30);

/// The KV and partition 0 of the journal as the node at `addr` serves them (NONE reads).
async fn contents(addr: SocketAddr) -> (Vec<(String, Vec<u8>)>, Vec<Vec<u8>>) {
    let c = client_of(&[addr]).await;
    let kv = c
        .kv()
        .with_consistency(QueryConsistency::None)
        .list("k")
        .await
        .unwrap();
    let min = c
        .journal()
        .with_consistency(QueryConsistency::None)
        .min_indices()
        .await
        .unwrap()
        .get(&0)
        .copied()
        .unwrap_or(0);
    let mut journal = Vec::new();
    loop {
        match c
            .journal()
            .get(0, min + journal.len() as u64, 1000, QueryConsistency::None)
            .await
        {
            Ok(es) if !es.is_empty() => journal.extend(es.into_iter().map(|e| e.payload)),
            Ok(_) => break,
            Err(e) if e.kind == ErrorKind::IndexOverflow => break,
            Err(e) => panic!("journal read from {addr}: {e}"),
        }
    }
    c.close();
    (kv, journal)
}

async fn write_some(c: &Client, tag: &str, n: usize) {
    for i in 0..n {
        c.kv()
            .set(&format!("k{tag}{i:04}"), format!("{tag}{i}").into_bytes())
            .await
            .unwrap();
        c.journal()
            .append(
                0,
                vec![format!("{tag}{i}").into_bytes()],
                ResponseConfig::Replication,
            )
            .await
            .unwrap();
    }
}

async fn caught_up(what: &str, servers: &[&Server], leader: &Server) {
    eventually(what, LONG, || async {
        let target = leader.status().applied_index;
        servers
            .iter()
            .all(|s| s.status().applied_index >= target)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn observers_in_two_levels_follow_the_voters_through_restarts() {
    server_support::init_tracing();
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let voters = c.addrs.clone();
    let (a4, a5, a6, a7) = (free_addr(), free_addr(), free_addr(), free_addr());
    let o4 = Server::start(c.observer_config(4, a4, voters.clone()))
        .await
        .unwrap();
    let o5 = Server::start(c.observer_config(5, a5, voters.clone()))
        .await
        .unwrap();
    let o6 = Server::start(c.observer_config(6, a6, vec![a4, a5]))
        .await
        .unwrap();
    let o7 = Server::start(c.observer_config(7, a7, vec![a5, a4]))
        .await
        .unwrap();
    assert_eq!(o4.status().standing, Standing::Observer);

    // Writes sent to an observer reach the leader.
    let via_observer = client_of(&[a6]).await;
    let writers = [client_of(&voters).await, via_observer];
    tokio::join!(
        write_some(&writers[0], "w0", 60),
        write_some(&writers[1], "w1", 60)
    );

    let lead = c.servers[leader].as_ref().unwrap();
    caught_up("observers caught up", &[&o4, &o5, &o6, &o7], lead).await;
    let want = contents(voters[leader]).await;
    assert_eq!(want.0.len(), 120);
    for a in [a4, a5, a6, a7] {
        assert_eq!(
            contents(a).await,
            want,
            "observer {a} differs from the leader"
        );
    }

    // The observers are in the configuration; none of them votes.
    let admin_client = client_of(&voters).await;
    let config = admin_client.admin().cluster_configuration().await.unwrap();
    let mut observers: Vec<u64> = config.observers.iter().map(|m| m.node_id).collect();
    observers.sort();
    assert_eq!(observers, vec![4, 5, 6, 7]);
    assert_eq!(config.voters.len(), 3);

    // Stop a first-level observer: its children go on through the other parent.
    o4.shutdown().await;
    write_some(&writers[0], "x", 30).await;
    caught_up(
        "children of a stopped parent caught up",
        &[&o5, &o6, &o7],
        lead,
    )
    .await;
    let want = contents(voters[leader]).await;
    assert_eq!(contents(a6).await, want);
    // And it comes back from its own data.
    let o4 = Server::start(c.observer_config(4, a4, voters.clone()))
        .await
        .unwrap();
    caught_up("restarted observer caught up", &[&o4], lead).await;
    assert_eq!(contents(a4).await, want);

    // A STRICT read on an observer is NOT_LEADER (the client follows the hint).
    let only_obs = client_of(&[a7]).await;
    let v = only_obs
        .kv()
        .with_consistency(QueryConsistency::Strict)
        .get("kx0000")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some(&b"x0"[..]));

    for s in [o4, o5, o6, o7] {
        s.shutdown().await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_behind_compaction_fetches_the_state() {
    server_support::init_tracing();
    // Snapshots every 16 entries, 20 retained behind, 5 MiB segments: after 12 MiB of journal a
    // late observer finds the log compacted.
    let c = Cluster::start_tweaked(3, 16, |cfg| cfg.max_segment_bytes = 5 << 20).await;
    let leader = c.leader().await;
    let voters = c.addrs.clone();
    let cl = client_of(&voters).await;
    write_some(&cl, "a", 20).await;
    for _ in 0..200 {
        cl.journal()
            .append(1, vec![vec![7u8; 64 << 10]], ResponseConfig::Replication)
            .await
            .unwrap();
    }
    let lead = c.servers[leader].as_ref().unwrap();
    eventually("the leader compacted", LONG, || async {
        (lead.status().first_index > 1).then_some(())
    })
    .await;
    let a4 = free_addr();
    let o4 = Server::start(c.observer_config(4, a4, voters.clone()))
        .await
        .unwrap();
    caught_up("late observer caught up", &[&o4], lead).await;
    assert!(o4.status().first_index > 1, "it started from a snapshot");
    assert_eq!(contents(a4).await.0, contents(voters[leader]).await.0);
    write_some(&cl, "b", 10).await;
    caught_up("and goes on pulling", &[&o4], lead).await;
    assert_eq!(contents(a4).await.0, contents(voters[leader]).await.0);
    o4.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn convert_an_observer_to_a_voter_and_back_under_writes() {
    server_support::init_tracing();
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let voters = c.addrs.clone();
    let a4 = free_addr();
    let o4 = Server::start(c.observer_config(4, a4, voters.clone()))
        .await
        .unwrap();
    let cl = client_of(&voters).await;
    let admin = client_of(&voters).await;
    eventually("observer registered", LONG, || async {
        let conf = admin.admin().cluster_configuration().await.ok()?;
        conf.observers.iter().any(|m| m.node_id == 4).then_some(())
    })
    .await;

    let writing = write_some(&cl, "c", 150);
    let converting = async {
        admin
            .admin()
            .convert_role(4, MemberRole::Voter)
            .await
            .unwrap();
        let conf = admin.admin().cluster_configuration().await.unwrap();
        let mut ids: Vec<u64> = conf.voters.iter().map(|m| m.node_id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert!(conf.observers.iter().all(|m| m.node_id != 4));
        assert_eq!(o4.status().standing, Standing::Member);
        admin
            .admin()
            .convert_role(4, MemberRole::Observer)
            .await
            .unwrap();
        let conf = admin.admin().cluster_configuration().await.unwrap();
        assert_eq!(conf.voters.len(), 3);
        assert!(conf.observers.iter().any(|m| m.node_id == 4));
    };
    tokio::join!(writing, converting);
    eventually("node 4 is an observer again", LONG, || async {
        (o4.status().standing == Standing::Observer).then_some(())
    })
    .await;
    let lead = c.servers[leader].as_ref().unwrap();
    write_some(&cl, "d", 10).await;
    caught_up("converted observer caught up", &[&o4], lead).await;
    assert_eq!(contents(a4).await, contents(voters[leader]).await);
    assert_eq!(contents(a4).await.0.len(), 160);
    o4.shutdown().await;
    c.shutdown().await;
}
