//! Async helpers shared by the listener, the peer writers and [`Connection`]: reading whole
//! frames from a socket half, and writing bytes under a deadline.
//!
//! [`Connection`]: crate::net::Connection

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::NetError;
use crate::net::frame::FrameDecoder;

const READ_CHUNK: usize = 64 * 1024;

/// Reads whole frames from a byte stream.
#[derive(Debug)]
pub(crate) struct FrameReader {
    pub(crate) decoder: FrameDecoder,
    chunk: Box<[u8]>,
}

impl FrameReader {
    pub(crate) fn new(max_frame_size: u32) -> Self {
        FrameReader {
            decoder: FrameDecoder::new(max_frame_size),
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The next frame's payload. Cancel safe: bytes already read stay in the decoder.
    /// A clean end of stream between frames is [`NetError::Closed`].
    pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Vec<u8>, NetError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            let n = r.read(&mut self.chunk).await?;
            if n == 0 {
                if self.decoder.buffered() == 0 {
                    return Err(NetError::Closed);
                }
                return Err(NetError::decode(
                    "frame",
                    format_args!(
                        "end of stream inside a frame ({} bytes buffered)",
                        self.decoder.buffered()
                    ),
                ));
            }
            self.decoder.extend(&self.chunk[..n]);
        }
    }

    /// [`read_frame`](Self::read_frame) under a deadline.
    pub(crate) async fn read_frame_within<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Vec<u8>, NetError> {
        match tokio::time::timeout(timeout, self.read_frame(r)).await {
            Ok(res) => res,
            Err(_) => Err(NetError::Timeout(what)),
        }
    }
}

/// Writes all of `bytes` within `timeout`.
pub(crate) async fn write_within<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), NetError> {
    match tokio::time::timeout(timeout, w.write_all(bytes)).await {
        Ok(res) => Ok(res?),
        Err(_) => Err(NetError::Timeout("writing a frame")),
    }
}

/// Builds batch frames from queued pre-encoded messages: one frame per write, bounded by the
/// frame size and the batch count. A message that does not fit the next frame is carried over
/// to the following one, so order is preserved.
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    carry: Option<Vec<u8>>,
    batch: Vec<Vec<u8>>,
    pub(crate) out: Vec<u8>,
}

/// Result of [`Batcher::fill`].
pub(crate) struct Filled {
    /// Messages in the frame now in `Batcher::out` (0: nothing to write).
    pub(crate) messages: usize,
    /// Messages dropped because they exceed the remote end's frame bound.
    pub(crate) oversized: usize,
}

impl Batcher {
    /// A message carried over from the previous frame, if any.
    pub(crate) fn take_carry(&mut self) -> Option<Vec<u8>> {
        self.carry.take()
    }

    /// Starts with `first`, drains more ready messages from `rx` without waiting, and encodes
    /// one batch frame into `self.out`.
    pub(crate) fn fill(
        &mut self,
        first: Vec<u8>,
        rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
        max_frame_size: u32,
        max_batch_messages: u32,
    ) -> Filled {
        use crate::net::codec::{batch_payload_len, encode_batch_frame, max_message_len};
        self.batch.clear();
        self.out.clear();
        let limit = max_message_len(max_frame_size);
        let mut oversized = 0;
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            if msg.len() > limit {
                oversized += 1;
            } else if batch_payload_len(self.batch.len() + 1, bytes + msg.len())
                > max_frame_size as usize
            {
                self.carry = Some(msg);
                break;
            } else {
                bytes += msg.len();
                self.batch.push(msg);
            }
            if self.batch.len() >= max_batch_messages as usize {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !self.batch.is_empty() {
            // Cannot fail: every message fits and the total was checked against the bound.
            let res = encode_batch_frame(&self.batch, max_frame_size, &mut self.out);
            debug_assert!(res.is_ok(), "batch exceeded the frame bound: {res:?}");
        }
        Filled {
            messages: self.batch.len(),
            oversized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::codec::{decode_batch, encode_message};

    #[tokio::test]
    async fn batcher_splits_by_size_and_count_keeping_order() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        for i in 0..1000u32 {
            tx.try_send(encode_message(&(i, vec![0u8; 40]), 1 << 20).unwrap())
                .unwrap();
        }
        let mut b = Batcher::default();
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(first) = b.take_carry().or_else(|| rx.try_recv().ok()) {
            let f = b.fill(first, &mut rx, 1024, 16);
            assert!(f.messages >= 1 && f.messages <= 16);
            let mut reader = FrameReader::new(1024);
            let mut src: &[u8] = &b.out;
            let payload = reader.read_frame(&mut src).await.unwrap();
            let msgs: Vec<(u32, Vec<u8>)> = decode_batch(&payload, 16).unwrap();
            got.extend(msgs.into_iter().map(|m| m.0));
            frames += 1;
        }
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert!(frames >= 1000 / 16);
    }
}
