//! Byte strings in serde types (`#[serde(with = "crate::bytes::vec")]` and friends).
//!
//! They are written as one block (`serialize_bytes`: a length, then the bytes), not byte
//! by byte, and read with `deserialize_bytes`: a decoder reading from a slice (bincode's
//! `decode_from_slice`, which every decode in Paddock uses) lends the bytes in place after
//! checking they are all there, so a forged length makes it allocate nothing; only the
//! bytes actually present are copied. (`deserialize_byte_buf`, which `serde_bytes` uses,
//! makes bincode allocate the claimed length before reading.) The encoding is the one a
//! `Vec<u8>` has in bincode, so stored and sent bytes are unchanged.

use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::ser::Serializer;

/// A borrowed byte string serialised as one block.
struct AsBytes<'a>(&'a [u8]);

impl serde::Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Bytes longer than this are not reserved ahead from a sequence's length hint.
const SEQ_RESERVE_MAX: usize = 4096;

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    /// Formats without a byte-string type (e.g. JSON) give a sequence of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(SEQ_RESERVE_MAX));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Vec<u8>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an optional byte string")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_bytes(BytesVisitor).map(Some)
    }
}

fn option_deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u8>>, D::Error> {
    deserializer.deserialize_option(OptionVisitor)
}

fn option_serialize<S: Serializer>(bytes: Option<&[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_some(&AsBytes(bytes)),
        None => serializer.serialize_none(),
    }
}

/// `Vec<u8>`.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// `Option<Vec<u8>>`.
pub(crate) mod option_vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        option_serialize(bytes.as_deref(), serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        option_deserialize(deserializer)
    }
}

/// `Option<Box<[u8]>>`.
pub(crate) mod option_boxed {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<Box<[u8]>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        option_serialize(bytes.as_deref(), serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Box<[u8]>>, D::Error> {
        option_deserialize(deserializer).map(|bytes| bytes.map(Vec::into_boxed_slice))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super::vec")]
        plain: Vec<u8>,
        #[serde(with = "super::option_vec")]
        maybe: Option<Vec<u8>>,
        #[serde(with = "super::option_boxed")]
        boxed: Option<Box<[u8]>>,
    }

    #[derive(Debug, PartialEq, serde::Serialize)]
    struct Plain {
        plain: Vec<u8>,
        maybe: Option<Vec<u8>>,
        boxed: Option<Vec<u8>>,
    }

    fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
    }

    // The bytes are those of plain `Vec<u8>` fields, and they decode back.
    #[test]
    fn same_encoding_as_vectors_and_round_trip() {
        let holder = Holder {
            plain: vec![1, 2, 255],
            maybe: Some(vec![]),
            boxed: Some(vec![9; 300].into_boxed_slice()),
        };
        let plain = Plain {
            plain: vec![1, 2, 255],
            maybe: Some(vec![]),
            boxed: Some(vec![9; 300]),
        };
        let bytes = encode(&holder);
        assert_eq!(bytes, encode(&plain));
        let (back, _): (Holder, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, holder);
        let none = Holder {
            plain: vec![],
            maybe: None,
            boxed: None,
        };
        let (back, _): (Holder, usize) =
            bincode::serde::decode_from_slice(&encode(&none), bincode::config::standard()).unwrap();
        assert_eq!(back, none);
    }

    // A length claiming far more bytes than the input holds is an error, not a read.
    #[test]
    fn forged_length_is_refused() {
        let mut bytes = vec![0xfc];
        bytes.extend_from_slice(&60_000_000u32.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        let decoded: Result<(Holder, usize), _> =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard());
        assert!(decoded.is_err());
    }
}
