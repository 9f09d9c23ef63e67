//! Framing of a client connection's byte stream: every message in both directions is an
//! `int32` big-endian length followed by that many payload bytes (docs/protocol.md, Framing),
//! except that the first 4 bytes of a *new* connection may be a four-letter word
//! (docs/protocol.md, Four-letter words).
//!
//! Invariants: a length prefix below 0 or above `max_frame_bytes` (jute.maxbuffer) is an
//! error as soon as its 4 bytes are seen, never an allocation. This module does not read
//! sockets, decode payloads or answer four-letter words (the runtime does).

use serde::{Deserialize, Serialize};

use super::jute::DecodeError;

/// ZooKeeper's default `jute.maxbuffer`: the largest frame payload accepted, in bytes.
pub const MAX_FRAME_BYTES_DEFAULT: u32 = 0xf_ffff;

/// Bytes of the length prefix in front of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Prefixes `payload` with its length, giving the bytes to put on the socket.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    // Replies: encode_reply turns a body over i32::MAX bytes into a header-only error.
    // Requests, events and connect messages are bounded by jute.maxbuffer (or argv).
    let len = i32::try_from(payload.len()).expect("payloads are at most i32::MAX bytes");
    let mut out = Vec::with_capacity(FRAME_PREFIX_BYTES + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The first complete frame at the start of `buffer`: `Ok(Some((payload, consumed_bytes)))`,
/// where `consumed_bytes` (prefix included) is what the caller drops from its buffer, or
/// `Ok(None)` when more bytes are needed. Fails on a length outside `0..=max_frame_bytes`.
pub fn split_frame(
    buffer: &[u8],
    max_frame_bytes: u32,
) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(prefix) = buffer.first_chunk::<FRAME_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*prefix);
    let too_big = u32::try_from(len).map_or(true, |len| len > max_frame_bytes);
    if too_big {
        return Err(DecodeError::FrameLength {
            len,
            max_frame_bytes,
        });
    }
    let payload_bytes = usize::try_from(len).expect("checked non-negative above");
    let consumed_bytes = FRAME_PREFIX_BYTES + payload_bytes;
    Ok(buffer
        .get(FRAME_PREFIX_BYTES..consumed_bytes)
        .map(|payload| (payload, consumed_bytes)))
}

/// A connection's inbound byte buffer that hands out complete frame payloads in order.
///
/// A length prefix outside `0..=max_frame_bytes` is refused as soon as its 4 bytes arrive,
/// so a runtime that stops reading while `buffered_bytes() > max_frame_bytes + 4` never
/// holds more than one frame per connection.
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already handed out; dropped on the next `push`, so
    /// handing out many small frames costs one move of the tail, not one per frame.
    consumed_bytes: usize,
    max_frame_bytes: u32,
}

impl FrameSplitter {
    /// An empty splitter that refuses frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: u32) -> FrameSplitter {
        FrameSplitter {
            buffer: Vec::new(),
            consumed_bytes: 0,
            max_frame_bytes,
        }
    }

    /// Appends bytes received from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.drain(..self.consumed_bytes);
        self.consumed_bytes = 0;
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet handed out as a frame.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len() - self.consumed_bytes
    }

    /// The next complete payload, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable (the length prefix cannot be trusted): close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let pending = self.buffer.get(self.consumed_bytes..).unwrap_or_default();
        let Some((payload, frame_bytes)) = split_frame(pending, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.consumed_bytes += frame_bytes;
        Ok(Some(payload))
    }
}

/// The four-letter words of ZooKeeper 3.8 (docs/protocol.md, Four-letter words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[allow(missing_docs)] // each variant is the command of the same name
pub enum FourLetterWord {
    Ruok,
    Srvr,
    Stat,
    Conf,
    Cons,
    Envi,
    Mntr,
    Wchs,
    Wchc,
    Wchp,
    Dump,
    Isro,
    Crst,
    Srst,
    Dirs,
    Gtmk,
    /// Followed on the wire by an 8-byte long (the new trace mask), which the runtime reads.
    Stmk,
    Hash,
}

/// Every word with its bytes, in one table so both directions agree.
const FOUR_LETTER_WORDS: [(FourLetterWord, &[u8; 4]); 18] = [
    (FourLetterWord::Ruok, b"ruok"),
    (FourLetterWord::Srvr, b"srvr"),
    (FourLetterWord::Stat, b"stat"),
    (FourLetterWord::Conf, b"conf"),
    (FourLetterWord::Cons, b"cons"),
    (FourLetterWord::Envi, b"envi"),
    (FourLetterWord::Mntr, b"mntr"),
    (FourLetterWord::Wchs, b"wchs"),
    (FourLetterWord::Wchc, b"wchc"),
    (FourLetterWord::Wchp, b"wchp"),
    (FourLetterWord::Dump, b"dump"),
    (FourLetterWord::Isro, b"isro"),
    (FourLetterWord::Crst, b"crst"),
    (FourLetterWord::Srst, b"srst"),
    (FourLetterWord::Dirs, b"dirs"),
    (FourLetterWord::Gtmk, b"gtmk"),
    (FourLetterWord::Stmk, b"stmk"),
    (FourLetterWord::Hash, b"hash"),
];

impl FourLetterWord {
    /// The command as text, e.g. `"ruok"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Hash => "hash",
        }
    }

    /// Every word, in a fixed order.
    pub fn all() -> impl Iterator<Item = FourLetterWord> {
        FOUR_LETTER_WORDS.iter().map(|(word, _)| *word)
    }
}

/// What the first bytes of a new connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStart {
    /// Fewer than 4 bytes have arrived: wait.
    NeedMore,
    /// The connection is a four-letter-word command.
    FourLetterWord(FourLetterWord),
    /// Anything else: a length-prefixed ConnectRequest frame (or garbage, which framing refuses).
    Protocol,
}

/// Classifies the first bytes received on a new connection. Only call this before the
/// first frame: later, the same bytes are just a length prefix (a four-letter word read as
/// a length is far above jute.maxbuffer, so framing would refuse it anyway).
pub fn classify_connection_start(first_bytes: &[u8]) -> ConnectionStart {
    let Some(prefix) = first_bytes.first_chunk::<4>() else {
        return ConnectionStart::NeedMore;
    };
    FOUR_LETTER_WORDS
        .iter()
        .find(|(_, bytes)| *bytes == prefix)
        .map_or(ConnectionStart::Protocol, |(word, _)| {
            ConnectionStart::FourLetterWord(*word)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    // as_str agrees with the byte table for every word, so the runtime prints what it matched.
    #[test]
    fn four_letter_words_names_match_bytes() {
        for (word, bytes) in FOUR_LETTER_WORDS {
            assert_eq!(word.as_str().as_bytes(), bytes);
            assert_eq!(
                classify_connection_start(bytes),
                ConnectionStart::FourLetterWord(word)
            );
        }
        assert_eq!(FourLetterWord::all().count(), 18);
    }

    // A splitter hands out frames only when complete, in order, across arbitrary chunking.
    #[test]
    fn splitter_reassembles_chunked_frames() {
        let mut bytes = frame(b"abc");
        bytes.extend(frame(b""));
        bytes.extend(frame(b"hello"));
        let mut splitter = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
        let mut got = Vec::new();
        for byte in &bytes {
            splitter.push(std::slice::from_ref(byte));
            while let Some(payload) = splitter.next_frame().unwrap() {
                got.push(payload);
            }
        }
        assert_eq!(got, vec![b"abc".to_vec(), Vec::new(), b"hello".to_vec()]);
        assert_eq!(splitter.buffered_bytes(), 0);
    }
}
