//! Serde adapters that encode byte payloads as byte strings.
//!
//! Why: serde serializes a plain `Vec<u8>` element by element, which made encoding and
//! decoding journal payloads one of the hottest paths of a busy node. postcard writes a byte
//! string exactly like a sequence of `u8` (varint length, then the bytes), so these adapters
//! change speed, not the wire format. Single `Vec<u8>` / `Option<Vec<u8>>` fields use
//! `serde_bytes` directly; this module covers the nested shapes it does not.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::{ByteBuf, Bytes};

/// `#[serde(with = "crate::bytes_serde::vec")]` for `Vec<Vec<u8>>`.
pub mod vec {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| Bytes::new(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let bufs = Vec::<ByteBuf>::deserialize(d)?;
        Ok(bufs.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// `#[serde(with = "crate::bytes_serde::vec_vec")]` for `Vec<Vec<Vec<u8>>>`.
pub mod vec_vec {
    use super::*;

    struct Inner<'a>(&'a [Vec<u8>]);

    impl Serialize for Inner<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::vec::serialize(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(v: &[Vec<Vec<u8>>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| Inner(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<Vec<u8>>>, D::Error> {
        let bufs = Vec::<Vec<ByteBuf>>::deserialize(d)?;
        Ok(bufs
            .into_iter()
            .map(|b| b.into_iter().map(ByteBuf::into_vec).collect())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        one: Vec<u8>,
        many: Vec<Vec<u8>>,
        nested: Vec<Vec<Vec<u8>>>,
        opt: Option<Vec<u8>>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Fast {
        #[serde(with = "serde_bytes")]
        one: Vec<u8>,
        #[serde(with = "super::vec")]
        many: Vec<Vec<u8>>,
        #[serde(with = "super::vec_vec")]
        nested: Vec<Vec<Vec<u8>>>,
        #[serde(with = "serde_bytes")]
        opt: Option<Vec<u8>>,
    }

    #[test]
    fn postcard_bytes_are_identical_to_plain_vectors() {
        let (one, many) = (vec![1, 2, 3], vec![vec![], vec![7; 300]]);
        let nested = vec![vec![vec![9; 5]], vec![], vec![vec![1], vec![2, 3]]];
        let opt = Some(vec![4; 200]);
        let plain = Plain {
            one: one.clone(),
            many: many.clone(),
            nested: nested.clone(),
            opt: opt.clone(),
        };
        let fast = Fast {
            one,
            many,
            nested,
            opt,
        };
        let a = postcard::to_allocvec(&plain).unwrap();
        let b = postcard::to_allocvec(&fast).unwrap();
        assert_eq!(a, b);
        assert_eq!(postcard::from_bytes::<Fast>(&a).unwrap(), fast);
        assert_eq!(postcard::from_bytes::<Plain>(&b).unwrap(), plain);
    }
}
