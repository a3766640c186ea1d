//! Monitoring of an in-process 3-node cluster with `http_listen` on every node: after appends
//! and KV writes, `GET /status` (JSON), `/metrics` (parsed Prometheus text) and `/health`
//! through a real HTTP client (hyper's), the detailed status through the Rust client, bad
//! HTTP input that ends only its connection, and `/health` turning 503 on a node whose cluster
//! lost its leader.

mod server_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use journalkeeper::api::ResponseConfig;
use journalkeeper::client::protocol::NodeRole;
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::server::ServerConfig;
use serde_json::Value;
use server_support::{CLUSTER_ID, Cluster, WAIT, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APPENDS: u64 = 20;
const KV_WRITES: u64 = 10;

fn with_http(cfg: &mut ServerConfig) {
    cfg.http_listen = Some("127.0.0.1:0".parse().unwrap());
}

/// One HTTP/1.1 request on a new connection: `(status code, body)`.
async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http handshake");
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (code, String::from_utf8(body.to_vec()).expect("utf-8 body"))
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("http answer in time")
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path).await
}

async fn status(addr: SocketAddr) -> Value {
    let (code, body) = get(addr, "/status").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON status")
}

/// One sample of the text exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus / OpenMetrics text format (no exemplars, no timestamps): every line
/// is a `# …` comment or `name[{k="v",…}] value`; anything else fails the test.
fn parse_metrics(text: &str) -> Vec<Sample> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "ends with # EOF:\n{text}"
    );
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let labels = inner
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("label k=v");
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        (k.to_string(), v.expect("quoted label value").to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name:?}"
        );
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn http_addr(c: &Cluster, i: usize) -> SocketAddr {
    c.servers[i]
        .as_ref()
        .and_then(|s| s.http_addr())
        .expect("http endpoint on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_metrics_and_health_over_http_on_a_three_node_cluster() {
    server_support::init_tracing();
    let mut c = Cluster::start_tweaked(3, 0, with_http).await;
    let leader = c.leader().await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    let client = Client::connect(c.addrs.clone(), cfg).await.unwrap();
    for i in 0..APPENDS {
        let entry = format!("e{i}").into_bytes();
        client
            .journal()
            .append(3, vec![entry], ResponseConfig::Replication)
            .await
            .unwrap();
    }
    for i in 0..KV_WRITES {
        client
            .kv()
            .set(&format!("k{i}"), b"v".to_vec())
            .await
            .unwrap();
    }
    let leader_http = http_addr(&c, leader);

    // /status on the leader: both followers caught up (lag 0) once replication settles.
    let s = eventually("both followers caught up", WAIT, || async {
        let s = status(leader_http).await;
        let fs = s["detail"]["followers"].as_array()?.clone();
        (fs.len() == 2 && fs.iter().all(|f| f["lag"] == 0)).then_some(s)
    })
    .await;
    assert_eq!(s["role"], "LEADER");
    assert_eq!(s["node_id"], leader as u64 + 1);
    let d = &s["detail"];
    let ids: Vec<u64> = d["followers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["node_id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = followers.iter().map(|&i| i as u64 + 1).collect();
    assert_eq!(ids, want, "{s}");
    for f in d["followers"].as_array().unwrap() {
        assert_eq!(f["match_index"], s["last_index"], "{s}");
        assert_eq!(
            f["next_index"].as_u64(),
            s["last_index"].as_u64().map(|l| l + 1)
        );
        assert!(f["last_heard_ms"].as_u64().unwrap() < 3_000, "{s}");
    }
    assert!(
        d["leader_last_heard_ms"].is_null(),
        "the leader follows nobody: {s}"
    );
    assert!(
        d["durable_index"].as_u64() >= s["commit_index"].as_u64(),
        "{s}"
    );
    assert!(
        d["first_index"].as_u64() <= s["commit_index"].as_u64(),
        "{s}"
    );
    let p3 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == 3)
        .expect("partition 3");
    assert_eq!(
        (p3["min_index"].as_u64(), p3["max_index"].as_u64()),
        (Some(0), Some(APPENDS))
    );
    assert_eq!(
        d["partitions"].as_array().unwrap().len(),
        16,
        "every declared partition"
    );
    let disk = &d["disk"];
    assert!(disk["total_bytes"].as_u64() > Some(0), "{s}");
    assert!(
        disk["free_bytes"].as_u64() <= disk["total_bytes"].as_u64(),
        "{s}"
    );
    assert_eq!(s["configuration"]["joint"], false);
    assert_eq!(s["configuration"]["voters"].as_array().unwrap().len(), 3);
    assert!(
        s["resources"]["client_connections"].as_u64() >= Some(1),
        "{s}"
    );

    // A follower: it heard the leader within the last few heartbeats (30 ms each).
    let fs = status(http_addr(&c, followers[0])).await;
    assert_eq!(fs["role"], "FOLLOWER");
    assert_eq!(fs["leader"]["node_id"], leader as u64 + 1);
    assert!(
        fs["detail"]["leader_last_heard_ms"].as_u64().unwrap() < 3_000,
        "{fs}"
    );
    assert_eq!(fs["detail"]["followers"], serde_json::json!([]));

    // The same detail through the Rust client (protocol 1.4 StatusDetail).
    let rs = client
        .admin()
        .status(&c.addrs[leader].to_string())
        .await
        .unwrap();
    assert_eq!(rs.role, NodeRole::Leader);
    let detail = rs.detail.expect("detail from a 1.4 node");
    assert_eq!(detail.followers.len(), 2);
    assert!(rs.resources.is_some());
    assert_eq!(detail.partitions.len(), 16);

    // /metrics on the leader, parsed.
    let (code, text) = get(leader_http, "/metrics").await;
    assert_eq!(code, 200);
    let m = parse_metrics(&text);
    let requests = |kind| value(&m, "journalkeeper_requests_total", &[("kind", kind)]);
    assert!(requests("append") >= Some(APPENDS as f64), "{text}");
    assert!(requests("kv_write") >= Some(KV_WRITES as f64), "{text}");
    assert!(requests("admin") >= Some(1.0), "the status asks: {text}");
    let commits = value(&m, "journalkeeper_commit_latency_seconds_count", &[]).unwrap();
    assert!(commits >= (APPENDS + KV_WRITES) as f64, "{text}");
    let inf = value(
        &m,
        "journalkeeper_commit_latency_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(
        inf,
        Some(commits),
        "the +Inf bucket holds every observation"
    );
    assert!(value(&m, "journalkeeper_commit_latency_seconds_sum", &[]) > Some(0.0));
    assert!(value(&m, "journalkeeper_fsync_latency_seconds_count", &[]) >= Some(1.0));
    for id in &want {
        let lag = value(
            &m,
            "journalkeeper_follower_lag_entries",
            &[("follower", &id.to_string())],
        );
        assert!(lag.is_some(), "a lag gauge for follower {id}: {text}");
    }
    let term = status(leader_http).await["term"].as_f64();
    assert_eq!(value(&m, "journalkeeper_term", &[]), term, "{text}");
    assert_eq!(value(&m, "journalkeeper_is_leader", &[]), Some(1.0));
    assert!(value(&m, "journalkeeper_leader_changes_total", &[]) >= Some(1.0));
    assert!(value(&m, "journalkeeper_client_connections", &[]) >= Some(1.0));
    assert_eq!(value(&m, "journalkeeper_watches", &[]), Some(0.0));
    // A follower has no lag gauges (it tracks nobody) and counts no appends from us.
    let (_, ftext) = get(http_addr(&c, followers[0]), "/metrics").await;
    let fm = parse_metrics(&ftext);
    assert!(
        !fm.iter()
            .any(|s| s.name == "journalkeeper_follower_lag_entries"),
        "{ftext}"
    );
    assert_eq!(value(&fm, "journalkeeper_is_leader", &[]), Some(0.0));

    // /health everywhere; other paths and methods are refused.
    for i in 0..3 {
        let (code, body) = get(http_addr(&c, i), "/health").await;
        assert_eq!(code, 200, "node {}: {body}", i + 1);
        assert!(body.starts_with("ok: "), "{body}");
    }
    assert_eq!(get(leader_http, "/nope").await.0, 404);
    assert_eq!(request(leader_http, "POST", "/status").await.0, 405);

    // Bad input ends only its connection: garbage, then an oversized head.
    for junk in [b"\x00\xffnot http at all\r\n\r\n".to_vec(), {
        let mut big = b"GET /status HTTP/1.1\r\nx-big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 64 * 1024));
        big
    }] {
        let mut s = tokio::net::TcpStream::connect(leader_http).await.unwrap();
        let _ = s.write_all(&junk).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await;
        let head = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || head.starts_with("HTTP/1.1 4"),
            "a 4xx or a closed connection: {head}"
        );
    }
    assert_eq!(get(leader_http, "/health").await.0, 200, "still serving");

    // Two nodes gone: the last one knows no leader any more.
    let last = followers[1];
    c.stop_node(leader).await;
    c.stop_node(followers[0]).await;
    let last_http = http_addr(&c, last);
    let body = eventually("the last node reports no leader", WAIT, || async {
        let (code, body) = get(last_http, "/health").await;
        (code == 503).then_some(body)
    })
    .await;
    assert!(
        body.contains("no leader") || body.contains("no known leader"),
        "{body}"
    );
    let s = status(last_http).await;
    assert_ne!(s["role"], "LEADER");
    assert!(
        s["detail"]["leader_last_heard_ms"].as_u64().is_some(),
        "it remembers when it last heard the old leader: {s}"
    );
    client.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_is_released_at_shutdown_and_off_by_default() {
    let mut c = Cluster::start_tweaked(1, 0, with_http).await;
    c.leader().await;
    let addr = http_addr(&c, 0);
    assert_eq!(get(addr, "/health").await.0, 200);
    c.stop_node(0).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens once the node stopped"
    );
    let plain = Cluster::start(1).await;
    assert_eq!(plain.servers[0].as_ref().unwrap().http_addr(), None);
    plain.shutdown().await;
    c.shutdown().await;
}
