//! Jute, ZooKeeper's record encoding: a bounded reader over a byte slice, a writer into a
//! `Vec<u8>`, the [`Record`] trait implemented by every wire record, and [`DecodeError`].
//!
//! Invariants: the reader never indexes out of bounds and never allocates more than the
//! bytes it has left can justify (a length or count is checked against the remaining bytes
//! *before* any allocation), so a hostile `len = 2^31 - 1` fails cleanly. Null forms
//! (`len = -1`) are kept distinct for buffers (`Option<Vec<u8>>`); a null `ustring` reads as
//! `""` (kazoo writes `""` as null, docs/protocol.md, Jute encoding) and a null vector reads
//! as empty.
//! Strings are decoded lossily: invalid UTF-8 (e.g. Java's CESU-8 surrogates) becomes U+FFFD
//! rather than an error. The writer cannot fail; lengths above `i32::MAX` are a bug of ours.
//!
//! This module knows nothing about opcodes or messages; see the sibling modules.

use crate::acl::{Acl, Id};
use crate::stat::Stat;

/// Why a byte sequence is not a valid message, and where (`offset` counts bytes from the
/// start of the payload being decoded, after the frame length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error(
        "{field} truncated at offset {offset}: needs {needed_bytes} bytes, {remaining_bytes} left"
    )]
    Truncated {
        /// The field being read, e.g. `CreateRequest.path`.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed_bytes: usize,
        /// Bytes that were left.
        remaining_bytes: usize,
    },
    /// A buffer/string length or vector count is below -1 or larger than the bytes left.
    #[error("{field} at offset {offset} has bad length {len} ({remaining_bytes} bytes left)")]
    BadLength {
        /// The field whose length prefix is wrong.
        field: &'static str,
        /// Where the length prefix starts.
        offset: usize,
        /// The length or count as sent.
        len: i32,
        /// Bytes left after the length prefix.
        remaining_bytes: usize,
    },
    /// A record that must end where the payload ends is followed by more bytes.
    #[error("{trailing_bytes} trailing bytes after {record} at offset {offset}")]
    TrailingBytes {
        /// The record that should have been the last thing in the payload.
        record: &'static str,
        /// Where the unexpected bytes start.
        offset: usize,
        /// How many bytes are left over.
        trailing_bytes: usize,
    },
    /// A `MultiHeader` whose `done`/`err` fields are not what its position requires
    /// (ops are `{type, false, -1}`, the end marker `{-1, true, -1}`; results carry
    /// `err = 0` unless they are error entries).
    #[error("bad MultiHeader at offset {offset}: type {op_type}, done {done}, err {err}")]
    BadMultiHeader {
        /// Where the header starts.
        offset: usize,
        /// The header's `type`.
        op_type: i32,
        /// The header's `done`.
        done: bool,
        /// The header's `err`.
        err: i32,
    },
    /// An op (or result) type that is not allowed in this kind of multi: multi (14) allows
    /// 1, 15, 19, 21, 2, 5, 13; multiRead (22) allows 4 and 8; results also allow -1.
    #[error("op type {op_type} at offset {offset} is not allowed in opcode {multi_op}")]
    MultiOpNotAllowed {
        /// The multi opcode (14 or 22).
        multi_op: i32,
        /// Where the op's header starts.
        offset: usize,
        /// The offending type.
        op_type: i32,
    },
    /// A multi error entry whose `ErrorResponse.err` disagrees with its header's `err`.
    #[error(
        "multi error entry at offset {offset}: header err {header_err} but body err {body_err}"
    )]
    MultiErrorMismatch {
        /// Where the entry's header starts.
        offset: usize,
        /// The header's `err`.
        header_err: i32,
        /// The `ErrorResponse` body's `err`.
        body_err: i32,
    },
    /// A frame length prefix below 0 or above the connection's `max_frame_bytes`.
    #[error("frame length {len} is outside 0..={max_frame_bytes}")]
    FrameLength {
        /// The length prefix as sent.
        len: i32,
        /// The limit in force (jute.maxbuffer).
        max_frame_bytes: u32,
    },
}

/// A bounded, forward-only reader of jute fields over one payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

/// Bytes of an `int` length/count prefix.
const LEN_PREFIX_BYTES: usize = 4;

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, offset: 0 }
    }

    /// Bytes consumed so far (the offset of the next field).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not consumed yet.
    pub fn remaining_bytes(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    /// Takes exactly `count` bytes, or fails naming `field` if fewer remain.
    pub fn read_raw(&mut self, field: &'static str, count: usize) -> Result<&'a [u8], DecodeError> {
        let slice = self
            .offset
            .checked_add(count)
            .and_then(|end| self.bytes.get(self.offset..end))
            .ok_or(DecodeError::Truncated {
                field,
                offset: self.offset,
                needed_bytes: count,
                remaining_bytes: self.remaining_bytes(),
            })?;
        self.offset += count;
        Ok(slice)
    }

    /// Takes every byte left (for bodies that are not jute, like deleteContainer's path).
    pub fn read_rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        self.offset = self.bytes.len();
        rest
    }

    fn read_array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.read_raw(field, N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    /// A jute `byte`.
    pub fn read_byte(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.read_array(field)?))
    }

    /// A jute `boolean`: like Java's reader, any non-zero byte is true.
    pub fn read_bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.read_byte(field)? != 0)
    }

    /// A jute `int` (4 bytes, big-endian).
    pub fn read_int(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.read_array(field)?))
    }

    /// A jute `long` (8 bytes, big-endian).
    pub fn read_long(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a length/count prefix; `None` for the null form -1. Fails if it is below -1 or
    /// if `len * min_element_bytes` exceeds what is left, so callers may allocate `len`.
    fn read_len(
        &mut self,
        field: &'static str,
        min_element_bytes: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let offset = self.offset;
        let len = self.read_int(field)?;
        if len == -1 {
            return Ok(None);
        }
        let remaining_bytes = self.remaining_bytes();
        let bad = DecodeError::BadLength {
            field,
            offset,
            len,
            remaining_bytes,
        };
        let count = usize::try_from(len).map_err(|_| bad.clone())?;
        // `max(1)`: even a careless `Record` impl cannot make a huge count look affordable.
        if count.saturating_mul(min_element_bytes.max(1)) > remaining_bytes {
            return Err(bad);
        }
        Ok(Some(count))
    }

    /// A jute `buffer`; `None` is the null buffer (length -1), distinct from empty.
    pub fn read_buffer(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len(field, 1)? {
            None => Ok(None),
            Some(len) => Ok(Some(self.read_raw(field, len)?.to_vec())),
        }
    }

    /// A jute `ustring`, decoded lossily; a null string reads as `""`.
    pub fn read_ustring(&mut self, field: &'static str) -> Result<String, DecodeError> {
        match self.read_len(field, 1)? {
            None => Ok(String::new()),
            Some(len) => Ok(String::from_utf8_lossy(self.read_raw(field, len)?).into_owned()),
        }
    }

    /// A jute `vector<T>`; a null vector reads as empty.
    pub fn read_vector<T: Record>(&mut self, field: &'static str) -> Result<Vec<T>, DecodeError> {
        let Some(count) = self.read_len(field, T::MIN_WIRE_BYTES)? else {
            return Ok(Vec::new());
        };
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::read(self)?);
        }
        Ok(items)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was consumed.
    pub fn finish(&self, record: &'static str) -> Result<(), DecodeError> {
        match self.remaining_bytes() {
            0 => Ok(()),
            trailing_bytes => Err(DecodeError::TrailingBytes {
                record,
                offset: self.offset,
                trailing_bytes,
            }),
        }
    }
}

/// Appends jute fields to a byte vector.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    /// Appends bytes as they are (no length prefix).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A jute `boolean`, written as 0 or 1.
    pub fn write_bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// A jute `int`.
    pub fn write_int(&mut self, value: i32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    /// A jute `long`.
    pub fn write_long(&mut self, value: i64) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn write_len(&mut self, len: usize) {
        // Messages are bounded by jute.maxbuffer (~1 MiB) long before this; a longer one
        // means a caller skipped its limit check.
        let len = i32::try_from(len).expect("jute lengths fit in i32: messages are size-limited");
        self.write_int(len);
    }

    /// A jute `buffer`; `None` writes the null form (length -1).
    pub fn write_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_int(-1),
            Some(bytes) => {
                self.write_len(bytes.len());
                self.write_raw(bytes);
            }
        }
    }

    /// A jute `ustring` (`""` is written with length 0, never as null).
    pub fn write_ustring(&mut self, value: &str) {
        self.write_buffer(Some(value.as_bytes()));
    }

    /// A jute `vector<T>` (never null: servers always send a count).
    pub fn write_vector<T: Record>(&mut self, items: &[T]) {
        self.write_len(items.len());
        for item in items {
            item.write(self);
        }
    }
}

/// A jute record: a fixed sequence of fields with no framing of its own.
pub trait Record: Sized {
    /// The fewest bytes one encoded value can take; lets vector counts be checked against
    /// the bytes left before allocating. Must be at least 1.
    const MIN_WIRE_BYTES: usize;
    /// Reads one value at the reader's position.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Appends the value's encoding.
    fn write(&self, writer: &mut Writer<'_>);
}

impl Record for String {
    const MIN_WIRE_BYTES: usize = LEN_PREFIX_BYTES;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.read_ustring("vector<ustring> element")
    }
    fn write(&self, writer: &mut Writer<'_>) {
        writer.write_ustring(self);
    }
}

impl Record for Id {
    const MIN_WIRE_BYTES: usize = 2 * LEN_PREFIX_BYTES;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let scheme = reader.read_ustring("Id.scheme")?;
        let id = reader.read_ustring("Id.id")?;
        Ok(Id { scheme, id })
    }
    fn write(&self, writer: &mut Writer<'_>) {
        writer.write_ustring(&self.scheme);
        writer.write_ustring(&self.id);
    }
}

impl Record for Acl {
    const MIN_WIRE_BYTES: usize = 4 + Id::MIN_WIRE_BYTES;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let perms = reader.read_int("ACL.perms")?;
        let id = Id::read(reader)?;
        Ok(Acl { perms, id })
    }
    fn write(&self, writer: &mut Writer<'_>) {
        writer.write_int(self.perms);
        self.id.write(writer);
    }
}

impl Record for Stat {
    const MIN_WIRE_BYTES: usize = 68;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: reader.read_long("Stat.czxid")?,
            mzxid: reader.read_long("Stat.mzxid")?,
            ctime: reader.read_long("Stat.ctime")?,
            mtime: reader.read_long("Stat.mtime")?,
            version: reader.read_int("Stat.version")?,
            cversion: reader.read_int("Stat.cversion")?,
            aversion: reader.read_int("Stat.aversion")?,
            ephemeral_owner: reader.read_long("Stat.ephemeralOwner")?,
            data_length: reader.read_int("Stat.dataLength")?,
            num_children: reader.read_int("Stat.numChildren")?,
            pzxid: reader.read_long("Stat.pzxid")?,
        })
    }
    fn write(&self, writer: &mut Writer<'_>) {
        writer.write_long(self.czxid);
        writer.write_long(self.mzxid);
        writer.write_long(self.ctime);
        writer.write_long(self.mtime);
        writer.write_int(self.version);
        writer.write_int(self.cversion);
        writer.write_int(self.aversion);
        writer.write_long(self.ephemeral_owner);
        writer.write_int(self.data_length);
        writer.write_int(self.num_children);
        writer.write_long(self.pzxid);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    // Null and empty buffers are distinct on the wire and after decoding.
    #[test]
    fn buffer_null_differs_from_empty() {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out);
        writer.write_buffer(None);
        writer.write_buffer(Some(b""));
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.read_buffer("a").unwrap(), None);
        assert_eq!(reader.read_buffer("b").unwrap(), Some(Vec::new()));
        reader.finish("test").unwrap();
    }

    // A length of 2^31-1 with nothing behind it fails before any allocation is attempted.
    #[test]
    fn huge_lengths_fail_cleanly() {
        let bytes = [0x7f, 0xff, 0xff, 0xff, b'x'];
        let err = Reader::new(&bytes).read_buffer("data").unwrap_err();
        let expected = DecodeError::BadLength {
            field: "data",
            offset: 0,
            len: i32::MAX,
            remaining_bytes: 1,
        };
        assert_eq!(err, expected);
        assert!(matches!(
            Reader::new(&bytes).read_vector::<Acl>("acl"),
            Err(DecodeError::BadLength { len: i32::MAX, .. })
        ));
        assert!(matches!(
            Reader::new(&[0xff, 0xff, 0xff, 0xfe]).read_ustring("path"),
            Err(DecodeError::BadLength { len: -2, .. })
        ));
    }

    // A vector count is checked against the element's minimum size, not just 1 byte: three
    // ACLs cannot fit in 20 bytes.
    #[test]
    fn vector_count_uses_min_element_size() {
        let mut bytes = vec![0, 0, 0, 3];
        bytes.extend([0u8; 20]);
        assert!(matches!(
            Reader::new(&bytes).read_vector::<Acl>("acl"),
            Err(DecodeError::BadLength {
                len: 3,
                remaining_bytes: 20,
                ..
            })
        ));
    }

    // Null strings and vectors read as empty; invalid UTF-8 is replaced, not rejected.
    #[test]
    fn lenient_strings_and_vectors() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0xc3, 0x28,
        ];
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read_ustring("s").unwrap(), "");
        assert_eq!(
            reader.read_vector::<String>("v").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(reader.read_ustring("bad").unwrap(), "\u{fffd}(");
    }

    // Truncation names the field, its offset and how many bytes were missing.
    #[test]
    fn truncation_is_reported_with_offset() {
        let mut reader = Reader::new(&[0, 0, 0, 1, 0, 0]);
        reader.read_int("first").unwrap();
        let err = reader.read_long("second").unwrap_err();
        let expected = DecodeError::Truncated {
            field: "second",
            offset: 4,
            needed_bytes: 8,
            remaining_bytes: 2,
        };
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            "second truncated at offset 4: needs 8 bytes, 2 left"
        );
    }
}
