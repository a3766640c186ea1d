//! `Admin::status` against nodes of older protocol minors, each a hand-written fake that
//! speaks raw frames and decodes only the requests its version knows (an unknown variant
//! fails the test, as it would drop the connection of a real old node): a 1.3 node is asked
//! `StatusWithResources`, a 1.1 node plain `Status`, and the status comes back without the
//! parts they cannot report.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use journalkeeper::client::protocol::{
    ClusterConfiguration, NoPeer, NodeResources, NodeRole, NodeStatus, ReplyBody, RequestBody,
    ServerMessage, Wire,
};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::net::codec::{
    decode_batch, decode_value, encode_messages_frame, encode_value_frame,
};
use journalkeeper::net::frame::FrameDecoder;
use journalkeeper::net::{Hello, HelloReply, ProtocolVersion, Welcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CLUSTER_ID: u64 = 42;
const MAX_FRAME: u32 = 1 << 20;

fn status() -> NodeStatus {
    NodeStatus {
        node_id: 7,
        role: NodeRole::Follower,
        term: 3,
        leader: None,
        commit_index: 5,
        applied_index: 5,
        last_index: 6,
        configuration: ClusterConfiguration::default(),
        resources: None,
        detail: None,
    }
}

/// A node speaking protocol `1.minor`; records the status requests it was sent.
async fn old_node(minor: u16) -> (SocketAddr, Arc<Mutex<Vec<RequestBody>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut dec = FrameDecoder::new(MAX_FRAME);
                let mut buf = vec![0u8; 64 * 1024];
                let mut hello_done = false;
                loop {
                    while let Some(frame) = dec.next_frame().expect("valid frame") {
                        let mut out = Vec::new();
                        if !hello_done {
                            let _: Hello = decode_value(&frame, "hello").expect("a Hello");
                            let welcome = HelloReply::Welcome(Welcome {
                                version: ProtocolVersion { major: 1, minor },
                                node_id: Some(7),
                                max_frame_size: MAX_FRAME,
                                max_batch_messages: 1024,
                            });
                            encode_value_frame(&welcome, "welcome", MAX_FRAME, &mut out).unwrap();
                            hello_done = true;
                        } else {
                            let msgs: Vec<Wire<NoPeer>> =
                                decode_batch(&frame, 1024).expect("batch");
                            let mut replies = Vec::new();
                            for m in msgs {
                                let Wire::Request(req) = m else { continue };
                                let body = match &req.body {
                                    RequestBody::Status => ReplyBody::Status(status()),
                                    RequestBody::StatusWithResources if minor >= 2 => {
                                        ReplyBody::StatusWithResources {
                                            status: Box::new(status()),
                                            resources: NodeResources {
                                                watches: 3,
                                                ..NodeResources::default()
                                            },
                                        }
                                    }
                                    other => panic!("a 1.{minor} node cannot decode {other:?}"),
                                };
                                seen.lock().unwrap().push(req.body.clone());
                                replies.push(Wire::<NoPeer>::Server(ServerMessage::Reply {
                                    id: req.id,
                                    result: Ok(body),
                                    applied_index: 5,
                                }));
                            }
                            encode_messages_frame(&replies, MAX_FRAME, &mut out).unwrap();
                        }
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => dec.extend(&buf[..n]),
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn older_nodes_are_asked_what_their_protocol_knows() {
    for (minor, want) in [
        (3, RequestBody::StatusWithResources),
        (1, RequestBody::Status),
    ] {
        let (addr, seen) = old_node(minor).await;
        let client = Client::connect([addr], ClientConfig::new(CLUSTER_ID))
            .await
            .unwrap();
        let s = tokio::time::timeout(
            Duration::from_secs(10),
            client.admin().status(&addr.to_string()),
        )
        .await
        .expect("in time")
        .expect("a status");
        assert_eq!((s.node_id, s.term), (7, 3));
        assert_eq!(s.detail, None, "1.{minor}: no detail");
        assert_eq!(s.resources.is_some(), minor >= 2, "1.{minor}: {s:?}");
        assert_eq!(*seen.lock().unwrap(), vec![want], "1.{minor}");
        client.close();
    }
}

#[tokio::test]
async fn a_read_at_an_index_is_never_sent_to_a_node_before_1_11() {
    let (addr, seen) = old_node(10).await;
    let client = Client::connect([addr], ClientConfig::new(CLUSTER_ID))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), client.kv().get_at("k", 3))
        .await
        .expect("in time")
        .unwrap_err();
    assert_eq!(
        e.kind,
        journalkeeper::api::ErrorKind::InvalidArgument,
        "{e}"
    );
    assert!(e.message.contains("1.11"), "{e}");
    assert!(seen.lock().unwrap().is_empty());
    client.close();
}
