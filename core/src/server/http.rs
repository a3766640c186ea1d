//! [`HttpEndpoint`]: the node's optional HTTP monitoring port (`ServerConfig::http_listen`),
//! served with hyper 1.x (HTTP/1.1 only).
//!
//! - `GET /status`: the detailed status ([`crate::client::status_detail::status_json`]).
//! - `GET /metrics`: the Prometheus / OpenMetrics text of [`Metrics`], its state gauges set
//!   from a fresh detailed status.
//! - `GET /health`: `200` when the node is a member that knows a leader, else `503` with the
//!   reason ([`health`]).
//! - Any other path `404`; any other method `405`.
//!
//! Owns: the HTTP bounds below and the mapping of the node's state to these answers. Never
//! does: anything that changes the node; it asks the driver for a status over a bounded
//! channel and reads the published [`ServerStatus`]. A bad request ends only its connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::driver::StatusQuery;
use super::metrics::Metrics;
use super::{ServerStatus, Standing};
use crate::api::{Error, ErrorKind};
use crate::client::protocol::NodeStatus;
use crate::client::status_detail::status_json;
use crate::raft::Role;

/// Most HTTP connections served at once; more are closed at accept.
pub const MAX_HTTP_CONNECTIONS: usize = 64;
/// A request's head must arrive within this.
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection (keep-alive included) is closed after this.
pub const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Largest request head (hyper's read buffer; its minimum is 8 KiB).
pub const HTTP_MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a request waits for the driver's status before answering `503`.
pub const HTTP_STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Status asks queued to the driver at once (one per connection at most).
pub(crate) const STATUS_QUERY_DEPTH: usize = MAX_HTTP_CONNECTIONS;

/// What the endpoint reads.
pub(crate) struct HttpContext {
    pub status: watch::Receiver<ServerStatus>,
    pub queries: mpsc::Sender<StatusQuery>,
    pub metrics: Arc<Metrics>,
}

/// A running HTTP endpoint; [`HttpEndpoint::shutdown`] closes it and every connection.
pub(crate) struct HttpEndpoint {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpEndpoint {
    /// Binds `addr` (port 0: pick one) and starts serving.
    pub async fn start(addr: SocketAddr, ctx: HttpContext) -> Result<HttpEndpoint, Error> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on http_listen {addr}: {e}"),
            )
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, format!("http_listen {addr}: {e}")))?;
        let task = tokio::spawn(accept_loop(listener, Arc::new(ctx)));
        Ok(HttpEndpoint { addr, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends every connection; the port is released on return.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<HttpContext>) {
    let limit = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    // Dropped with this task: aborting it aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(reason = %e, "http connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, max = MAX_HTTP_CONNECTIONS, "too many http connections: closing");
                        continue;
                    };
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        serve(stream, peer, ctx).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off briefly instead of spinning.
                    tracing::warn!(reason = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, ctx: Arc<HttpContext>) {
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(&ctx, &req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_TIMEOUT)
        .max_buf_size(HTTP_MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(HTTP_CONNECTION_LIFETIME, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, reason = %e, "http connection closed"),
        Err(_) => tracing::debug!(%peer, "http connection closed at its lifetime"),
    }
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

async fn handle(ctx: &HttpContext, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET is served\n".into(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    match req.uri().path() {
        "/health" => {
            let status = ctx.status.borrow().clone();
            match health(&status) {
                Ok(why) => respond(StatusCode::OK, TEXT, format!("ok: {why}\n")),
                Err(why) => respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
            }
        }
        "/status" => match detailed_status(ctx).await {
            Ok(s) => respond(
                StatusCode::OK,
                "application/json",
                status_json(&s).to_string(),
            ),
            Err(why) => respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        "/metrics" => {
            let status = detailed_status(ctx).await.ok();
            respond(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ctx.metrics.encode(status.as_ref()),
            )
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: GET /status, /metrics or /health\n".into(),
        ),
    }
}

async fn detailed_status(ctx: &HttpContext) -> Result<NodeStatus, &'static str> {
    let (tx, rx) = oneshot::channel();
    ctx.queries
        .try_send(tx)
        .map_err(|_| "the node is not answering (stopped or busy)")?;
    match tokio::time::timeout(HTTP_STATUS_TIMEOUT, rx).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(_)) => Err("the node stopped"),
        Err(_) => Err("the node did not answer in time"),
    }
}

/// Whether the node is healthy: started, not failed, a member, and following a known leader
/// (or leading). `Ok` says who leads, `Err` why not.
pub(crate) fn health(s: &ServerStatus) -> Result<String, String> {
    let Some(role) = s.role else {
        return Err("not running".into());
    };
    if s.failed {
        return Err(
            "stopped serving after a storage failure or a state machine crash (see the log)".into(),
        );
    }
    match s.standing {
        Standing::Joining => return Err("not a member yet (joining)".into()),
        Standing::Removed => return Err("removed from the cluster".into()),
        Standing::Observer => return Ok(format!("observer, applied {}", s.applied_index)),
        Standing::Member => {}
    }
    match (role, s.leader) {
        (Role::Leader, _) => Ok(format!("leader, term {}", s.term)),
        (Role::Follower, Some(l)) => Ok(format!("following leader {l}, term {}", s.term)),
        (Role::PreCandidate | Role::Candidate, _) => {
            Err(format!("no leader: election in progress (term {})", s.term))
        }
        (Role::Follower, None) => Err(format!("no known leader (term {})", s.term)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_a_running_member_that_knows_a_leader() {
        let ok = ServerStatus {
            node_id: 2,
            role: Some(Role::Follower),
            leader: Some(1),
            term: 4,
            ..ServerStatus::default()
        };
        assert_eq!(health(&ok).unwrap(), "following leader 1, term 4");
        let leader = ServerStatus {
            role: Some(Role::Leader),
            leader: Some(2),
            ..ok.clone()
        };
        assert_eq!(health(&leader).unwrap(), "leader, term 4");
        let cases: [(ServerStatus, &str); 6] = [
            (
                ServerStatus {
                    role: None,
                    ..ok.clone()
                },
                "not running",
            ),
            (
                ServerStatus {
                    failed: true,
                    ..ok.clone()
                },
                "storage failure",
            ),
            (
                ServerStatus {
                    standing: Standing::Joining,
                    ..ok.clone()
                },
                "joining",
            ),
            (
                ServerStatus {
                    standing: Standing::Removed,
                    ..ok.clone()
                },
                "removed",
            ),
            (
                ServerStatus {
                    role: Some(Role::PreCandidate),
                    leader: None,
                    ..ok.clone()
                },
                "election in progress",
            ),
            (
                ServerStatus {
                    leader: None,
                    ..ok.clone()
                },
                "no known leader",
            ),
        ];
        for (s, says) in cases {
            let e = health(&s).unwrap_err();
            assert!(e.contains(says), "{s:?}: {e}");
        }
    }
}
