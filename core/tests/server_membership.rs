//! Live administration of an in-process cluster through the public client: a node joins and
//! is added as a voter, the leader is removed (it stops serving and cannot come back with its
//! old data), a change to an unreachable node times out and leaves the voters as they were,
//! leadership is transferred, and the preferred leader takes over (again after a restart).

mod server_support;

use std::collections::BTreeSet;
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::{Client, ClientConfig, Member};
use journalkeeper::server::{Server, Standing};
use server_support::{CLUSTER_ID, Cluster, WAIT, eventually};

async fn client(c: &Cluster) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(c.addrs.clone(), cfg).await.unwrap()
}

async fn voters(client: &Client) -> BTreeSet<u64> {
    let c = client.admin().cluster_configuration().await.unwrap();
    assert!(c.joint_old_voters.is_none(), "{c:?}");
    c.voters.iter().map(|m| m.node_id).collect()
}

async fn append_n(client: &Client, from: usize, n: usize) {
    for i in from..from + n {
        client
            .journal()
            .append(
                0,
                vec![format!("e{i}").into_bytes()],
                ResponseConfig::Replication,
            )
            .await
            .unwrap();
    }
}

/// Every entry `0..n` is in partition 0 of the node at `addr`, once, in order.
async fn holds_all(addr: std::net::SocketAddr, n: usize) {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(10);
    let c = Client::connect([addr], cfg).await.unwrap();
    let got = eventually("the node holds every entry", WAIT, || async {
        let es = c
            .journal()
            .get(0, 0, 4096, QueryConsistency::None)
            .await
            .ok()?;
        (es.len() == n).then_some(es)
    })
    .await;
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.payload, format!("e{i}").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_node_is_added_and_a_removed_leader_stops_for_good() {
    server_support::init_tracing();
    let mut c = Cluster::start(3).await;
    let client = client(&c).await;
    append_n(&client, 0, 20).await;

    let i = c.join_node().await;
    let id = i as u64 + 1;
    let joiner = c.servers[i].as_ref().unwrap();
    assert_eq!(joiner.status().standing, Standing::Joining);
    // A joining node serves no client.
    let mut direct = server_support::TestClient::connect(c.addrs[i]).await;
    let (r, _) = direct
        .call(journalkeeper::client::protocol::RequestBody::MaxIndices {
            read: Default::default(),
        })
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(e.message.contains("joining"), "{e}");

    let admin = client.admin();
    admin
        .add_voter(id, &c.addrs[i].to_string())
        .await
        .expect("the joiner is added");
    assert_eq!(voters(&client).await, BTreeSet::from([1, 2, 3, 4]));
    assert_eq!(
        c.servers[i].as_ref().unwrap().status().standing,
        Standing::Member
    );
    append_n(&client, 20, 5).await;
    holds_all(c.addrs[i], 25).await;

    // Remove the leader itself.
    let l = c.leader().await;
    let lid = l as u64 + 1;
    admin
        .remove_voter(lid)
        .await
        .expect("the leader is removed");
    let expect: BTreeSet<u64> = [1, 2, 3, 4].into_iter().filter(|&n| n != lid).collect();
    assert_eq!(voters(&client).await, expect);
    let removed = c.servers[l].take().unwrap();
    tokio::time::timeout(WAIT, removed.removed())
        .await
        .expect("the removed leader knows it")
        .unwrap();
    assert_eq!(removed.status().standing, Standing::Removed);
    append_n(&client, 25, 5).await;
    for (j, s) in c.servers.iter().enumerate() {
        if s.is_some() {
            holds_all(c.addrs[j], 30).await;
        }
    }
    removed.shutdown().await;
    let e = Server::start(c.config(l)).await.unwrap_err();
    assert!(e.message.contains("was removed from the cluster"), "{e}");

    // A node joins while the leader is one its configuration does not name (node 4): it asks
    // the members it knows for everyone's address, so it can answer the leader.
    admin.transfer_leader(id).await.unwrap();
    let j = c.join_node().await;
    assert!(
        !c.config(j).peers.contains_key(&id),
        "node 5 is not told about node 4"
    );
    admin
        .add_voter(j as u64 + 1, &c.addrs[j].to_string())
        .await
        .expect("added while an unnamed node leads");
    holds_all(c.addrs[j], 30).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_that_cannot_complete_times_out_and_the_voters_stay() {
    let c = Cluster::start(3).await;
    let client = client(&c).await;
    append_n(&client, 0, 3).await;
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let admin = client.admin().with_timeout(Duration::from_millis(1500));
    let e = admin.add_voter(9, &dead).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("did not catch up"), "{e}");
    assert_eq!(voters(&client).await, BTreeSet::from([1, 2, 3]));
    let conf = client.admin().cluster_configuration().await.unwrap();
    assert!(
        conf.observers.iter().all(|m| m.node_id != 9),
        "the learner is removed again: {conf:?}"
    );

    // Refusals name what is wrong.
    let members = |ids: &[u64]| -> Vec<Member> {
        ids.iter()
            .map(|&node_id| Member {
                node_id,
                addr: String::new(),
            })
            .collect()
    };
    let e = admin
        .update_voters(&[1, 2], &members(&[1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("not the current voters"), "{e}");
    let e = admin
        .update_voters(&[1, 2, 3], &members(&[1, 2, 3, 7]))
        .await
        .unwrap_err();
    assert!(e.message.contains("no known address"), "{e}");
    // Idempotent by value: the voters already are `new` (what a retry of a change that took
    // effect sees).
    admin
        .update_voters(&[1, 2], &members(&[1, 2, 3]))
        .await
        .expect("already so");
    let e = client
        .admin()
        .with_timeout(Duration::from_secs(601))
        .remove_voter(1)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("exceeds 600000"), "{e}");
    let e = admin.remove_voter(1).await;
    assert!(e.is_ok(), "a later change is not blocked: {e:?}");
    assert_eq!(voters(&client).await, BTreeSet::from([2, 3]));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_is_transferred_and_the_preferred_leader_takes_over() {
    let mut c = Cluster::start(3).await;
    let client = client(&c).await;
    append_n(&client, 0, 3).await;
    let admin = client.admin();
    for _ in 0..3 {
        let l = c.leader().await;
        let to = ((l + 1) % 3) as u64 + 1;
        admin.transfer_leader(to).await.expect("transferred");
        assert_eq!(c.leader().await as u64 + 1, to);
    }
    let e = admin.transfer_leader(9).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);

    let l = c.leader().await;
    let preferred = ((l + 2) % 3) as u64 + 1;
    admin.set_preferred_leader(Some(preferred)).await.unwrap();
    eventually("the preferred voter leads", WAIT, || async {
        (c.leader().await as u64 + 1 == preferred).then_some(())
    })
    .await;
    let p = preferred as usize - 1;
    c.stop_node(p).await;
    let other = c.leader().await;
    assert_ne!(other, p);
    append_n(&client, 3, 3).await;
    c.start_node(p).await;
    eventually(
        "the preferred voter leads again after its restart",
        WAIT,
        || async { (c.leader().await == p).then_some(()) },
    )
    .await;
    for s in c.servers.iter().flatten() {
        assert_eq!(s.status().preferred_leader, Some(preferred));
    }
    let e = admin.set_preferred_leader(Some(9)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    admin.set_preferred_leader(None).await.unwrap();
    c.shutdown().await;
}

/// Only the leader answers `ClusterConfiguration`: a follower's view can lag behind a committed
/// change, and `add_voter` / `remove_voter` compute the change from the voters they read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_answers_the_cluster_configuration() {
    use journalkeeper::client::protocol::{ReplyBody, RequestBody};
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let (answer, _) = c
        .client(leader)
        .await
        .call(RequestBody::ClusterConfiguration)
        .await;
    match answer {
        Ok(ReplyBody::Configuration(conf)) => assert_eq!(conf.voters.len(), 3, "{conf:?}"),
        other => panic!("the leader answered {other:?}"),
    }
    let (answer, _) = c
        .client(follower)
        .await
        .call(RequestBody::ClusterConfiguration)
        .await;
    let e = answer.expect_err("a follower answered the configuration");
    assert_eq!(e.kind, ErrorKind::NotLeader, "{e}");
    assert_eq!(e.leader_hint, Some(c.addrs[leader].to_string()), "{e}");
    c.shutdown().await;
}
