//! The journal record and its byte encoding with CRC32C. Pure functions, no I/O.
//!
//! Layout (all integers little-endian), `HEADER_LEN` = 36 bytes before the payload:
//! ```text
//! offset size field
//!      0    4 len         bytes that follow the 8-byte prefix: 28 + payload length
//!      4    4 crc         CRC32C of (len bytes ++ bytes 8..8+len)
//!      8    8 term
//!     16    8 index       global log index
//!     24    2 partition
//!     26    2 batch_size
//!     28    8 timestamp_ms
//!     36    n payload
//! ```

/// Bytes before the payload.
pub const HEADER_LEN: usize = 36;
/// Bytes covered by `len` that are not payload.
const FIXED_BODY: usize = HEADER_LEN - 8;
/// Payload bound used when reading existing files: the format's own limit, so that records
/// written under a larger configured maximum stay readable. A garbled length is still caught
/// (it runs past the end of the file, or the CRC fails), and no read is sized by it beyond the
/// file's length.
pub(crate) const SCAN_MAX_PAYLOAD: usize = u32::MAX as usize - FIXED_BODY;

/// One journal entry (one Raft log entry).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    /// Raft term in which the entry was created.
    pub term: u64,
    /// Global log index; assigned by the Raft layer, contiguous in the journal.
    pub index: u64,
    /// Journal partition the entry belongs to.
    pub partition: u16,
    /// Number of client entries packed in this record's payload (opaque to storage).
    pub batch_size: u16,
    /// Creation time, milliseconds since the Unix epoch (opaque to storage).
    pub timestamp_ms: u64,
    /// The user data.
    pub payload: Vec<u8>,
}

impl Record {
    /// Size of this record once encoded.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the encoding of this record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let len = (FIXED_BODY + self.payload.len()) as u32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.term.to_le_bytes());
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.batch_size.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&self.payload);
        let crc = checksum(&out[start..start + 4], &out[start + 8..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

fn checksum(len_bytes: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), body)
}

/// A decoded record borrowing its payload from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// See [`Record::term`].
    pub term: u64,
    /// See [`Record::index`].
    pub index: u64,
    /// See [`Record::partition`].
    pub partition: u16,
    /// See [`Record::batch_size`].
    pub batch_size: u16,
    /// See [`Record::timestamp_ms`].
    pub timestamp_ms: u64,
    /// See [`Record::payload`].
    pub payload: &'a [u8],
}

impl RecordView<'_> {
    /// Copies into an owned [`Record`].
    pub fn to_record(self) -> Record {
        Record {
            term: self.term,
            index: self.index,
            partition: self.partition,
            batch_size: self.batch_size,
            timestamp_ms: self.timestamp_ms,
            payload: self.payload.to_vec(),
        }
    }

    /// Size of the encoded record.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Outcome of decoding at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record and its encoded length.
    Record(RecordView<'a>, usize),
    /// The buffer ends inside the record; `needed` is the full record length if known.
    Incomplete {
        /// Total encoded length the header claims, when the length field is readable and sane.
        needed: Option<usize>,
    },
    /// The bytes are not a valid record.
    Invalid(&'static str),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Decodes the record at the start of `buf`, rejecting payloads above `max_payload` bytes.
/// Never panics, whatever `buf` holds.
pub fn decode(buf: &[u8], max_payload: usize) -> Decoded<'_> {
    let Some(prefix) = buf.get(..8) else {
        return Decoded::Incomplete { needed: None };
    };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let crc = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if len < FIXED_BODY {
        return Decoded::Invalid("length field below the fixed header size");
    }
    if len - FIXED_BODY > max_payload {
        return Decoded::Invalid("length field above the maximum record size");
    }
    let total = 8 + len;
    let Some(rec) = buf.get(..total) else {
        return Decoded::Incomplete {
            needed: Some(total),
        };
    };
    if checksum(&rec[..4], &rec[8..]) != crc {
        return Decoded::Invalid("CRC32C mismatch");
    }
    let view = RecordView {
        term: u64_at(rec, 8),
        index: u64_at(rec, 16),
        partition: u16_at(rec, 24),
        batch_size: u16_at(rec, 26),
        timestamp_ms: u64_at(rec, 28),
        payload: &rec[HEADER_LEN..],
    };
    Decoded::Record(view, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            term: 3,
            index: 42,
            partition: 7,
            batch_size: 2,
            timestamp_ms: 1234,
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn encode_then_decode_returns_the_same_record() {
        let r = sample();
        let mut buf = Vec::new();
        r.encode_into(&mut buf);
        assert_eq!(buf.len(), r.encoded_len());
        match decode(&buf, 1024) {
            Decoded::Record(v, n) => {
                assert_eq!(n, buf.len());
                assert_eq!(v.to_record(), r);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_every_flip_is_detected() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        for cut in 0..buf.len() {
            assert!(
                matches!(decode(&buf[..cut], 1024), Decoded::Incomplete { .. }),
                "cut {cut}"
            );
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert!(
                    !matches!(decode(&b, 1024), Decoded::Record(..)),
                    "flip {i}/{bit}"
                );
            }
        }
    }

    #[test]
    fn oversized_length_is_invalid() {
        let mut buf = Vec::new();
        Record {
            payload: vec![0; 100],
            ..sample()
        }
        .encode_into(&mut buf);
        assert!(matches!(decode(&buf, 99), Decoded::Invalid(_)));
    }
}
