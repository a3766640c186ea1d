//! Hostile bytes on a node's port (three `journalkeeper server` processes): garbage, a frame
//! with a bad checksum, a valid frame that is not a handshake, and an oversized length prefix
//! each get their connection closed, and the cluster keeps committing.

mod support {
    pub mod cluster;
}

use std::time::Duration;

use journalkeeper::api::ResponseConfig;
use support::cluster::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `bytes` and waits for the node to close the connection (EOF or reset).
async fn closed_after(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The peer may close before everything is written; that is a close too.
    let _ = s.write_all(bytes).await;
    let mut buf = [0u8; 256];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or(false)
}

fn frame(payload: &[u8], crc: u32) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_le_bytes().to_vec();
    f.extend(crc.to_le_bytes());
    f.extend(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_the_connection_and_the_cluster_keeps_committing() {
    let (c, leader) = started(3).await;
    let client = c.client().await.unwrap();
    let first = client
        .journal()
        .append(0, vec![b"before".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap()
        .unwrap();

    let junk: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
    let not_a_hello = b"definitely not a handshake".to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad checksum", frame(&junk[..24], 0xdead_beef)),
        (
            "valid frame, not a hello",
            frame(&not_a_hello, crc32c::crc32c(&not_a_hello)),
        ),
        ("oversized length (4 GiB)", {
            let mut f = u32::MAX.to_le_bytes().to_vec();
            f.extend(&junk);
            f
        }),
        ("oversized length (64 MiB)", {
            let mut f = (64u32 << 20).to_le_bytes().to_vec();
            f.extend(&junk);
            f
        }),
    ];
    for node in [leader, (leader + 1) % 3] {
        for (what, bytes) in &cases {
            assert!(
                closed_after(&c.addr(node), bytes).await,
                "node {}: {what}: connection not closed",
                node + 1
            );
        }
    }

    // The cluster still commits, and every node still serves.
    let mut last = first;
    for k in 0..20 {
        last = client
            .journal()
            .append(
                0,
                vec![format!("after {k}").into_bytes()],
                ResponseConfig::Replication,
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(last, first + 20);
    let all: Vec<usize> = (0..3).collect();
    let (_, status) = leader_among(&c, &all).await;
    for i in 0..3 {
        c.wait_for_applied(i, status.commit_index, WAIT)
            .await
            .unwrap();
    }
    client.close();
}
