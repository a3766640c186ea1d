//! The frame format and an incremental decoder. Pure: no I/O, no allocation beyond one frame.
//!
//! A frame is an 8-byte header followed by the payload:
//!
//! | bytes | field                                   |
//! |-------|-----------------------------------------|
//! | 0..4  | payload length `n`, `u32` little endian |
//! | 4..8  | CRC32C (Castagnoli) of the payload, LE  |
//! | 8..8+n| payload                                 |
//!
//! The decoder checks the length against `max_frame_size` as soon as the 4 length bytes
//! arrive — before buffering or allocating the payload — and never panics on any input.
//! After it returns an error the stream is unusable and the connection must be closed.

use crate::net::NetError;

/// Bytes in a frame header (length + CRC32C).
pub const HEADER_LEN: usize = 8;

/// An idle decoder whose buffer grew past this (after a large frame) gives the memory back.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// Appends one frame carrying `payload` to `out`.
///
/// Fails with [`NetError::FrameTooLarge`] when `payload` exceeds `max_frame_size`.
pub fn encode_frame(
    payload: &[u8],
    max_frame_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), NetError> {
    check_len(payload.len(), max_frame_size)?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Starts a frame whose payload will be written in place: pushes a placeholder header and
/// returns its offset, to be completed by [`finish_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    at
}

/// Completes the frame started at `at` by [`begin_frame`]: everything after its header is the
/// payload. On error `out` is truncated back to `at`.
pub fn finish_frame(out: &mut Vec<u8>, at: usize, max_frame_size: u32) -> Result<(), NetError> {
    let start = at + HEADER_LEN;
    debug_assert!(out.len() >= start, "finish_frame without begin_frame");
    let len = out.len() - start;
    if let Err(e) = check_len(len, max_frame_size) {
        out.truncate(at);
        return Err(e);
    }
    let crc = crc32c::crc32c(&out[start..]);
    out[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[at + 4..start].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn check_len(len: usize, max_frame_size: u32) -> Result<(), NetError> {
    if len > max_frame_size as usize {
        return Err(NetError::FrameTooLarge {
            len: len as u64,
            max: max_frame_size,
        });
    }
    Ok(())
}

/// Incremental frame decoder: feed it bytes as they arrive with [`extend`](Self::extend) and
/// take complete frames with [`next_frame`](Self::next_frame).
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte in `buf`.
    start: usize,
    max_frame_size: u32,
}

impl FrameDecoder {
    /// A decoder that rejects any frame whose payload exceeds `max_frame_size` bytes.
    pub fn new(max_frame_size: u32) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_frame_size,
        }
    }

    /// The payload bound this decoder enforces.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Changes the payload bound (e.g. to a smaller one during the handshake).
    pub fn set_max_frame_size(&mut self, max_frame_size: u32) {
        self.max_frame_size = max_frame_size;
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            // Drop consumed bytes first so the buffer never holds more than one partial frame
            // plus the newly received chunk.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Returns the next complete frame's payload, `Ok(None)` when more bytes are needed, or an
    /// error for an oversized length prefix or a checksum mismatch.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        let avail = &self.buf[self.start..];
        let Some(header) = avail.get(..HEADER_LEN) else {
            if avail.len() >= 4 {
                // Reject an oversized prefix as soon as it is readable.
                let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
                check_len(len as usize, self.max_frame_size)?;
            }
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let expected = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        check_len(len, self.max_frame_size)?;
        let Some(payload) = avail.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let actual = crc32c::crc32c(payload);
        if actual != expected {
            return Err(NetError::Checksum { expected, actual });
        }
        let payload = payload.to_vec();
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > SHRINK_ABOVE {
                self.buf.shrink_to(64 * 1024);
            }
        }
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, 1 << 20, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn empty_payload_is_a_valid_frame() {
        let mut d = FrameDecoder::new(1024);
        d.extend(&frames_of(&[vec![]]));
        assert_eq!(d.next_frame().unwrap(), Some(vec![]));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn oversized_length_prefix_is_rejected_from_four_bytes() {
        let mut d = FrameDecoder::new(1024);
        d.extend(&1025u32.to_le_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(NetError::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        ));
        let mut d = FrameDecoder::new(1024);
        d.extend(&u32::MAX.to_le_bytes()[..3]);
        assert!(d.next_frame().unwrap().is_none());
    }

    #[test]
    fn flipped_payload_bit_fails_the_checksum() {
        let mut bytes = frames_of(&[b"hello".to_vec()]);
        bytes[HEADER_LEN] ^= 1;
        let mut d = FrameDecoder::new(1024);
        d.extend(&bytes);
        assert!(matches!(d.next_frame(), Err(NetError::Checksum { .. })));
    }

    #[test]
    fn encoder_refuses_oversized_payloads() {
        let mut out = vec![1, 2];
        assert!(encode_frame(&[0; 11], 10, &mut out).is_err());
        let at = begin_frame(&mut out);
        out.extend_from_slice(&[0; 11]);
        assert!(finish_frame(&mut out, at, 10).is_err());
        assert_eq!(out, vec![1, 2]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..32), max in 0u32..256) {
            let mut d = FrameDecoder::new(max);
            for c in chunks {
                d.extend(&c);
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => prop_assert!(f.len() <= max as usize),
                        Ok(None) => break,
                        Err(_) => return Ok(()),
                    }
                }
            }
        }

        #[test]
        fn frames_roundtrip_across_arbitrary_chunk_boundaries(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let bytes = frames_of(&payloads);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.push(0);
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut d = FrameDecoder::new(300);
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                d.extend(&bytes[w[0]..w[1]]);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert_eq!(d.buffered(), 0);
        }
    }
}
