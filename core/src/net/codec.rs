//! Postcard encoding of messages into frame payloads, and of *batches*: one frame carries a
//! `Vec<M>` so that many small messages cost one write and one header. Pure, no I/O.
//!
//! A batch payload is exactly postcard's encoding of `Vec<M>`: a LEB128 varint count followed
//! by the messages' encodings back to back. Because that format is specified and stable, a
//! sender can pre-encode each message once (at `send` time) and concatenate them later, and a
//! receiver can check the count against `max_batch_messages` *before* decoding anything.
//! An empty batch is a keepalive.

use serde::{Serialize, de::DeserializeOwned};

use crate::net::NetError;
use crate::net::frame::{begin_frame, finish_frame};

/// Longest LEB128 encoding of a `u64`.
const MAX_VARINT_LEN: usize = 10;

/// Largest single encoded message that fits in a batch frame of `max_frame_size`.
pub fn max_message_len(max_frame_size: u32) -> usize {
    (max_frame_size as usize).saturating_sub(MAX_VARINT_LEN)
}

/// Encodes one message for later batching; fails if it cannot fit in a frame on its own.
pub fn encode_message<M: Serialize>(msg: &M, max_frame_size: u32) -> Result<Vec<u8>, NetError> {
    let bytes = postcard::to_allocvec(msg).map_err(|e| NetError::encode("message", e))?;
    if bytes.len() > max_message_len(max_frame_size) {
        return Err(NetError::FrameTooLarge {
            len: bytes.len() as u64,
            max: max_frame_size,
        });
    }
    Ok(bytes)
}

/// Payload size of a batch of `count` messages whose encodings total `bytes`.
pub fn batch_payload_len(count: usize, bytes: usize) -> usize {
    varint_len(count as u64) + bytes
}

/// Appends one frame carrying the batch of pre-encoded messages `msgs` to `out`.
pub fn encode_batch_frame<B: AsRef<[u8]>>(
    msgs: &[B],
    max_frame_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), NetError> {
    let at = begin_frame(out);
    push_varint(out, msgs.len() as u64);
    for m in msgs {
        out.extend_from_slice(m.as_ref());
    }
    finish_frame(out, at, max_frame_size)
}

/// Appends one frame carrying `msgs` (encoded here) to `out`.
pub fn encode_messages_frame<M: Serialize>(
    msgs: &[M],
    max_frame_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), NetError> {
    let payload = postcard::to_allocvec(msgs).map_err(|e| NetError::encode("batch", e))?;
    crate::net::frame::encode_frame(&payload, max_frame_size, out)
}

/// Decodes a batch payload, checking the count against `max_batch_messages` before decoding
/// and rejecting trailing bytes.
pub fn decode_batch<M: DeserializeOwned>(
    payload: &[u8],
    max_batch_messages: u32,
) -> Result<Vec<M>, NetError> {
    let (count, mut rest) = read_varint(payload)?;
    if count > u64::from(max_batch_messages) {
        return Err(NetError::BatchTooLarge {
            count,
            max: max_batch_messages,
        });
    }
    let mut msgs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (m, r) =
            postcard::take_from_bytes::<M>(rest).map_err(|e| NetError::decode("message", e))?;
        msgs.push(m);
        rest = r;
    }
    if !rest.is_empty() {
        return Err(NetError::decode(
            "batch",
            format_args!("{} trailing bytes after {count} messages", rest.len()),
        ));
    }
    Ok(msgs)
}

/// Encodes a single value (handshake frames) as one frame.
pub fn encode_value_frame<T: Serialize>(
    value: &T,
    what: &'static str,
    max_frame_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), NetError> {
    let payload = postcard::to_allocvec(value).map_err(|e| NetError::encode(what, e))?;
    crate::net::frame::encode_frame(&payload, max_frame_size, out)
}

/// Decodes a single value that must span the whole payload.
pub fn decode_value<T: DeserializeOwned>(
    payload: &[u8],
    what: &'static str,
) -> Result<T, NetError> {
    let (v, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| NetError::decode(what, e))?;
    if !rest.is_empty() {
        return Err(NetError::decode(
            what,
            format_args!("{} trailing bytes", rest.len()),
        ));
    }
    Ok(v)
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8]) -> Result<(u64, &[u8]), NetError> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return Err(NetError::decode("batch", "count varint overflows u64"));
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok((v, &bytes[i + 1..]));
        }
    }
    Err(NetError::decode(
        "batch",
        "truncated or overlong count varint",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::FrameDecoder;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping(u64),
        Data { term: u64, bytes: Vec<u8> },
        Text(String),
    }

    fn arb_msg() -> impl Strategy<Value = Msg> {
        prop_oneof![
            any::<u64>().prop_map(Msg::Ping),
            (any::<u64>(), prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(term, bytes)| Msg::Data { term, bytes }),
            ".{0,20}".prop_map(Msg::Text),
        ]
    }

    fn one_frame(bytes: &[u8], max: u32) -> Vec<u8> {
        let mut d = FrameDecoder::new(max);
        d.extend(bytes);
        d.next_frame().unwrap().unwrap()
    }

    #[test]
    fn empty_batch_is_one_byte() {
        let mut out = Vec::new();
        encode_batch_frame::<Vec<u8>>(&[], 1024, &mut out).unwrap();
        assert_eq!(one_frame(&out, 1024), vec![0]);
        assert!(decode_batch::<Msg>(&[0], 1).unwrap().is_empty());
    }

    #[test]
    fn batch_count_is_checked_before_decoding() {
        // A huge count of zero-sized messages must not loop: it is rejected up front.
        let mut payload = Vec::new();
        push_varint(&mut payload, u64::MAX);
        assert!(matches!(
            decode_batch::<()>(&payload, 1024),
            Err(NetError::BatchTooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut payload = postcard::to_allocvec(&vec![Msg::Ping(1)]).unwrap();
        payload.push(0);
        assert!(decode_batch::<Msg>(&payload, 10).is_err());
        assert!(decode_value::<u32>(&[1, 2], "u32").is_err());
    }

    #[test]
    fn oversized_message_is_refused_at_encode_time() {
        let big = Msg::Data {
            term: 1,
            bytes: vec![0; 2000],
        };
        assert!(matches!(
            encode_message(&big, 1024),
            Err(NetError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn varint_roundtrip_at_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            push_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(read_varint(&b).unwrap(), (v, &[][..]));
        }
    }

    proptest! {
        #[test]
        fn preencoded_batch_equals_postcard_vec(msgs in prop::collection::vec(arb_msg(), 0..200)) {
            let encoded: Vec<Vec<u8>> = msgs.iter().map(|m| encode_message(m, 1 << 20).unwrap()).collect();
            let mut out = Vec::new();
            encode_batch_frame(&encoded, 1 << 20, &mut out).unwrap();
            let payload = one_frame(&out, 1 << 20);
            let total: usize = encoded.iter().map(Vec::len).sum();
            prop_assert_eq!(payload.len(), batch_payload_len(encoded.len(), total));
            prop_assert_eq!(&payload, &postcard::to_allocvec(&msgs).unwrap());
            prop_assert_eq!(decode_batch::<Msg>(&payload, 200).unwrap(), msgs.clone());
            let mut out2 = Vec::new();
            encode_messages_frame(&msgs, 1 << 20, &mut out2).unwrap();
            prop_assert_eq!(out, out2);
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batch::<Msg>(&bytes, 64);
            let _ = decode_value::<crate::net::Hello>(&bytes, "hello");
        }
    }
}
