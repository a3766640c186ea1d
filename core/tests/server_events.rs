//! Cluster events through the public client and the embedded server: a subscription starts with
//! the current state, reports leader, voter, role and journal changes, and after its node stops
//! resumes elsewhere with the latest state.

mod server_support;

use std::time::Duration;

use journalkeeper::api::ResponseConfig;
use journalkeeper::client::protocol::NodeRole;
use journalkeeper::client::{Client, ClientConfig, ClusterEvent, EventStream};
use server_support::{CLUSTER_ID, Cluster, WAIT};

async fn client(c: &Cluster) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(c.addrs.clone(), cfg).await.unwrap()
}

/// Reads events until `want` matches one; returns it.
async fn until(
    events: &mut EventStream,
    what: &str,
    want: impl Fn(&ClusterEvent) -> bool,
) -> ClusterEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.next().await.expect("event");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event: {what}"))
}

fn leader_is(e: &ClusterEvent, id: u64) -> bool {
    matches!(e, ClusterEvent::LeaderChanged { leader: Some(l), .. } if l.node_id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_starts_with_the_state_and_follows_every_kind_of_change() {
    let mut c = Cluster::start(3).await;
    let client = client(&c).await;
    let l = c.leader().await as u64 + 1;
    let mut events = client.events().await.unwrap();
    let mut first = Vec::new();
    for _ in 0..3 + 16 {
        first.push(events.next().await.unwrap());
    }
    assert!(leader_is(&first[0], l), "{first:?}");
    assert!(
        matches!(&first[1], ClusterEvent::VotersChanged { configuration } if configuration.voters.len() == 3),
        "{first:?}"
    );
    assert!(
        matches!(first[2], ClusterEvent::RoleChanged { .. }),
        "{first:?}"
    );
    let partitions: Vec<u16> = first[3..]
        .iter()
        .map(|e| match e {
            ClusterEvent::JournalChanged { partition, .. } => *partition,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(partitions, (0..16).collect::<Vec<_>>());

    client
        .journal()
        .append(3, vec![b"a".to_vec(), b"b".to_vec()], ResponseConfig::All)
        .await
        .unwrap();
    until(&mut events, "partition 3 grows to 2", |e| {
        *e == ClusterEvent::JournalChanged {
            partition: 3,
            min_index: 0,
            max_index: 2,
        }
    })
    .await;

    let to = l % 3 + 1;
    client.admin().transfer_leader(to).await.unwrap();
    until(&mut events, "the new leader", |e| leader_is(e, to)).await;

    let i = c.join_node().await;
    client
        .admin()
        .add_voter(i as u64 + 1, &c.addrs[i].to_string())
        .await
        .unwrap();
    until(&mut events, "four voters", |e| {
        matches!(e, ClusterEvent::VotersChanged { configuration }
            if configuration.voters.len() == 4 && configuration.joint_old_voters.is_none())
    })
    .await;

    // A subscription on one of two followers (a fresh client dials both and starts with the
    // first to answer; its role event names the node): when that node stops, the stream
    // resubscribes on the other and is given the latest state again.
    let leader = c.leader().await;
    let followers: Vec<usize> = (0..4).filter(|&n| n != leader).take(2).collect();
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    let ev_client = Client::connect([c.addrs[followers[0]], c.addrs[followers[1]]], cfg)
        .await
        .unwrap();
    let mut ev = ev_client.events().await.unwrap();
    let lid = leader as u64 + 1;
    until(&mut ev, "the current leader", |e| leader_is(e, lid)).await;
    until(&mut ev, "the current voters", |e| {
        matches!(e, ClusterEvent::VotersChanged { .. })
    })
    .await;
    let ClusterEvent::RoleChanged { node_id, .. } =
        until(&mut ev, "the subscribed node's role", |e| {
            matches!(e, ClusterEvent::RoleChanged { .. })
        })
        .await
    else {
        unreachable!()
    };
    let subscribed = node_id as usize - 1;
    assert!(
        followers.contains(&subscribed),
        "{subscribed} {followers:?}"
    );
    c.stop_node(subscribed).await;
    until(&mut ev, "the leader again, from the next node", |e| {
        leader_is(e, lid)
    })
    .await;
    until(&mut ev, "the voters again", |e| {
        matches!(e, ClusterEvent::VotersChanged { configuration } if configuration.voters.len() == 4)
    })
    .await;
    let other = followers.iter().find(|&&n| n != subscribed).unwrap();
    until(&mut ev, "the role of the node it moved to", |e| {
        matches!(e, ClusterEvent::RoleChanged { node_id, .. } if *node_id as usize == other + 1)
    })
    .await;
    ev_client.close();
    client.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_embedded_server_streams_its_own_events() {
    let c = Cluster::start(3).await;
    let l = c.leader().await;
    let node = (l + 1) % 3;
    let server = c.servers[node].as_ref().unwrap();
    let mut events = server.events();
    let first = tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(leader_is(&first, l as u64 + 1), "{first:?}");
    let role = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ClusterEvent::RoleChanged { node_id, role }) = events.next().await {
                return (node_id, role);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(role, (node as u64 + 1, NodeRole::Follower));
    let client = client(&c).await;
    client
        .admin()
        .transfer_leader(node as u64 + 1)
        .await
        .unwrap();
    let became = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ClusterEvent::RoleChanged { role, .. }) = events.next().await {
                return role;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(became, NodeRole::Leader);
    client.close();
    c.shutdown().await;
}
