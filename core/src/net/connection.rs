//! [`Connection`]: a plain client-side connection — connect, handshake, then send and receive
//! messages on the caller's task. No background tasks; used by the cluster client and tests.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::net::codec::{decode_batch, encode_messages_frame};
use crate::net::handshake::{self, Hello, Welcome};
use crate::net::stream::{FrameReader, write_within};
use crate::net::{Message, NetConfig, NetError};

/// A handshaken connection to a node, carrying messages of type `M` both ways.
#[derive(Debug)]
pub struct Connection<M> {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    reader: FrameReader,
    welcome: Welcome,
    config: NetConfig,
    send_max: u32,
    batch_max: u32,
    received: VecDeque<M>,
    out: Vec<u8>,
    _msg: PhantomData<fn(M)>,
}

impl<M: Message> Connection<M> {
    /// Connects to `addr` (under `connect_timeout`) and sends `hello` (under
    /// `handshake_timeout`). A refusal is [`NetError::Rejected`] with the server's reason.
    pub async fn connect(
        addr: SocketAddr,
        hello: Hello,
        config: &NetConfig,
    ) -> Result<Self, NetError> {
        config.validate()?;
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| NetError::Timeout("connecting"))??;
        stream.set_nodelay(true)?;
        let (mut r, mut w) = stream.into_split();
        let mut reader = FrameReader::new(config.max_frame_size);
        let welcome = handshake::connect(&mut reader, &mut r, &mut w, &hello, config).await?;
        Ok(Connection {
            r,
            w,
            reader,
            send_max: config.max_frame_size.min(welcome.max_frame_size),
            batch_max: config.max_batch_messages.min(welcome.max_batch_messages),
            welcome,
            config: config.clone(),
            received: VecDeque::new(),
            out: Vec::new(),
            _msg: PhantomData,
        })
    }

    /// The server's answer to our `Hello`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends one message (one frame), under `write_timeout`.
    pub async fn send(&mut self, msg: &M) -> Result<(), NetError> {
        self.send_batch(std::slice::from_ref(msg)).await
    }

    /// Sends several messages in one batch frame, under `write_timeout`. Fails with
    /// [`NetError::FrameTooLarge`] or [`NetError::BatchTooLarge`] if they do not fit one frame.
    pub async fn send_batch(&mut self, msgs: &[M]) -> Result<(), NetError> {
        if msgs.len() > self.batch_max as usize {
            return Err(NetError::BatchTooLarge {
                count: msgs.len() as u64,
                max: self.batch_max,
            });
        }
        self.out.clear();
        encode_messages_frame(msgs, self.send_max, &mut self.out)?;
        write_within(&mut self.w, &self.out, self.config.write_timeout).await
    }

    /// Receives the next message, waiting as long as it takes; keepalives are skipped.
    /// Cancel safe. End of stream is [`NetError::Closed`].
    pub async fn recv(&mut self) -> Result<M, NetError> {
        loop {
            if let Some(m) = self.received.pop_front() {
                return Ok(m);
            }
            let payload = self.reader.read_frame(&mut self.r).await?;
            self.received
                .extend(decode_batch::<M>(&payload, self.config.max_batch_messages)?);
        }
    }

    /// [`recv`](Self::recv) under a deadline.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<M, NetError> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .unwrap_or(Err(NetError::Timeout("waiting for a message")))
    }
}
