//! etcd beside our coordination benchmark: a 3-member etcd cluster on loopback (the `etcd`
//! binary on `PATH`, e.g. `apt-get install etcd-server`), its data on the same file system as
//! our nodes, driven through etcd's JSON gateway (`/v3/...`) over HTTP/1.1 keep-alive
//! connections, one per task (as our tasks each have their own calls in flight).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::AnyResult;

/// A running etcd cluster; its members are killed on drop.
pub struct Etcd {
    children: Vec<Child>,
    pub clients: Vec<SocketAddr>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Whether an `etcd` binary is on `PATH`.
pub fn available() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts 3 members with their data under `dir` and waits until they serve writes.
pub async fn start(dir: &Path) -> AnyResult<Etcd> {
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let initial = (0..3)
        .map(|i| format!("e{i}=http://{}", peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut etcd = Etcd {
        children: Vec::new(),
        clients: clients.clone(),
    };
    for i in 0..3 {
        let data = dir.join(format!("etcd{i}"));
        let log = std::fs::File::create(dir.join(format!("etcd{i}.log")))?;
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &format!("http://{}", clients[i])])
            .args(["--advertise-client-urls", &format!("http://{}", clients[i])])
            .args(["--listen-peer-urls", &format!("http://{}", peers[i])])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://{}", peers[i]),
            ])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "jk-bench"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        etcd.children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = Conn::connect(clients[0]).await;
    loop {
        if let Ok(c) = conn.as_mut() {
            let put = json!({"key": b64(b"jk-bench/ready"), "value": b64(b"1")});
            if c.call("/v3/kv/put", &put).await.is_ok() {
                return Ok(etcd);
            }
        }
        if Instant::now() > deadline {
            return Err("etcd did not start within 30 s (see etcd*.log)".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if conn.is_err() {
            conn = Conn::connect(clients[0]).await;
        }
    }
}

/// One keep-alive HTTP/1.1 connection to an etcd member.
pub struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> AnyResult<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { addr, sender })
    }

    /// POSTs `body` to `path`; the JSON answer, or an error with etcd's message.
    pub async fn call(&mut self, path: &str, body: &Value) -> AnyResult<Value> {
        let req = hyper::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes)?;
        if !status.is_success() || value.get("error").is_some() {
            return Err(format!("etcd {path}: {status} {value}").into());
        }
        Ok(value)
    }
}

/// Standard base64 (the JSON gateway's encoding of bytes).
pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(super::b64(b""), "");
        assert_eq!(super::b64(b"f"), "Zg==");
        assert_eq!(super::b64(b"fo"), "Zm8=");
        assert_eq!(super::b64(b"foo"), "Zm9v");
        assert_eq!(super::b64(b"foobar"), "Zm9vYmFy");
    }
}
