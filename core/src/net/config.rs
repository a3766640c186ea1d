//! [`NetConfig`]: every bound and timeout of the transport, with defaults and validation.

use std::time::Duration;

use crate::net::NetError;

/// Bounds and timeouts of the transport. Build with [`NetConfig::new`], adjust fields, and
/// the transport calls [`NetConfig::validate`] before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Cluster identity checked in the handshake; connections from another cluster are rejected.
    pub cluster_id: u64,
    /// Largest frame payload accepted or sent, in bytes (the 8-byte header is not counted).
    pub max_frame_size: u32,
    /// Largest number of messages in one batch frame.
    pub max_batch_messages: u32,
    /// Outbound queue depth per peer, in messages. A full queue drops new messages.
    pub peer_queue_depth: usize,
    /// Outbound queue depth per client connection, in messages.
    pub client_queue_depth: usize,
    /// Depth of the queue of inbound messages handed to the node. When full, connections
    /// stop reading (TCP back-pressure) rather than dropping.
    pub inbound_queue_depth: usize,
    /// Simultaneous accepted connections; more are closed immediately.
    pub max_connections: usize,
    /// Deadline for a TCP connect.
    pub connect_timeout: Duration,
    /// Deadline for the whole handshake (Hello sent/received, reply received/sent).
    pub handshake_timeout: Duration,
    /// Deadline for writing one frame.
    pub write_timeout: Duration,
    /// A peer connection that delivers no complete frame for this long is closed.
    pub idle_timeout: Duration,
    /// A client connection that delivers no complete frame for this long is closed.
    pub client_idle_timeout: Duration,
    /// An idle outbound peer connection sends an empty batch this often (keepalive).
    pub keepalive_interval: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
    /// The user state machines this node hosts (set by the server). A peer that hosts other
    /// names is refused when this node connects to it (protocol 1.7 on both sides).
    pub state_machines: Vec<String>,
}

/// Smallest `max_frame_size` accepted: room for a handshake and a small message.
pub const MIN_FRAME_SIZE: u32 = 1024;
/// Largest `max_frame_size` accepted (256 MiB).
pub const MAX_FRAME_SIZE_LIMIT: u32 = 256 * 1024 * 1024;

impl NetConfig {
    /// Defaults for the given cluster: 16 MiB frames, 1024 messages a batch, 4096-message
    /// queues, 3 s connect and handshake, 10 s writes, 1 s keepalive, 5 s idle, 50 ms–5 s backoff.
    pub fn new(cluster_id: u64) -> Self {
        NetConfig {
            cluster_id,
            max_frame_size: 16 * 1024 * 1024,
            max_batch_messages: 1024,
            peer_queue_depth: 4096,
            client_queue_depth: 1024,
            inbound_queue_depth: 4096,
            max_connections: 1024,
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            client_idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            state_machines: Vec::new(),
        }
    }

    /// Checks every bound; the error names the first field out of range.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |what: String| Err(NetError::InvalidConfig(what));
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&self.max_frame_size) {
            return bad(format!(
                "max_frame_size {} not in {MIN_FRAME_SIZE}..={MAX_FRAME_SIZE_LIMIT}",
                self.max_frame_size
            ));
        }
        if self.max_batch_messages == 0 {
            return bad("max_batch_messages must be at least 1".into());
        }
        for (name, v) in [
            ("peer_queue_depth", self.peer_queue_depth),
            ("client_queue_depth", self.client_queue_depth),
            ("inbound_queue_depth", self.inbound_queue_depth),
            ("max_connections", self.max_connections),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("write_timeout", self.write_timeout),
            ("idle_timeout", self.idle_timeout),
            ("client_idle_timeout", self.client_idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("backoff_initial", self.backoff_initial),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.keepalive_interval >= self.idle_timeout {
            return bad(format!(
                "keepalive_interval {:?} must be shorter than idle_timeout {:?}",
                self.keepalive_interval, self.idle_timeout
            ));
        }
        if self.backoff_max < self.backoff_initial {
            return bad(format!(
                "backoff_max {:?} is below backoff_initial {:?}",
                self.backoff_max, self.backoff_initial
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NetConfig::new(7).validate().unwrap();
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let mut c = NetConfig::new(7);
        c.max_frame_size = 10;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_frame_size")
        );
        let mut c = NetConfig::new(7);
        c.peer_queue_depth = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("peer_queue_depth")
        );
        let mut c = NetConfig::new(7);
        c.keepalive_interval = c.idle_timeout;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("keepalive_interval")
        );
    }
}
