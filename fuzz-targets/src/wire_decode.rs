//! `wire_decode`: arbitrary bytes into every decoder of the client protocol, both
//! directions: the frame splitter, the connection-start classifier, both handshake
//! records, requests, and replies against every pending opcode (which covers watcher
//! events and multi/multiRead results).
//!
//! Properties: no decoder panics (errors are `DecodeError` by type); the largest single
//! allocation stays within [`allocation_bound_bytes`] of the input's length; and whatever
//! decodes is stable: encoding it and decoding again gives the same value (the codec's
//! lossy normalisations — null strings to empty, invalid UTF-8 to U+FFFD, booleans to 0/1
//! — are applied once and then fixed).

use paddock_core::wire::{
    FrameSplitter, MAX_FRAME_BYTES_DEFAULT, OpCode, classify_connection_start,
    decode_connect_request, decode_connect_response, decode_reply, decode_request,
    encode_connect_request, encode_connect_response, encode_decoded_reply, encode_request,
    split_frame,
};

use crate::alloc_guard;

/// The most a decoder may allocate at once for an input of `input_bytes`: 16 bytes per
/// input byte plus 4 KiB. The factor is the widest ratio of a decoded element's memory
/// size to its smallest wire encoding (a 13-byte multi error entry becomes a ~100-byte
/// `MultiResult`), doubled for `Vec` growth; a length field that was trusted instead of
/// checked against the bytes left would allocate up to 2 GiB and fail this at once.
pub fn allocation_bound_bytes(input_bytes: usize) -> usize {
    input_bytes.saturating_mul(16).saturating_add(4096)
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let ((), largest_bytes) = alloc_guard::measure(|| decode_everything(data));
    let bound = allocation_bound_bytes(data.len());
    assert!(
        largest_bytes <= bound,
        "a decoder allocated {largest_bytes} bytes at once for {} input bytes (bound {bound})",
        data.len()
    );
}

fn decode_everything(data: &[u8]) {
    frames(data);
    let _ = classify_connection_start(data);
    if let Ok(request) = decode_connect_request(data) {
        let mut bytes = Vec::new();
        encode_connect_request(&request, &mut bytes);
        assert_eq!(
            decode_connect_request(&bytes),
            Ok(request),
            "ConnectRequest unstable"
        );
    }
    if let Ok(response) = decode_connect_response(data) {
        let mut bytes = Vec::new();
        encode_connect_response(&response, &mut bytes);
        assert_eq!(
            decode_connect_response(&bytes),
            Ok(response),
            "ConnectResponse unstable"
        );
    }
    if let Ok((header, request)) = decode_request(data) {
        let mut bytes = Vec::new();
        encode_request(&header, &request, &mut bytes);
        assert_eq!(
            decode_request(&bytes),
            Ok((header, request)),
            "request unstable"
        );
    }
    for pending in OpCode::all() {
        if let Ok((header, reply)) = decode_reply(data, pending) {
            let mut bytes = Vec::new();
            encode_decoded_reply(&header, &reply, &mut bytes);
            assert_eq!(
                decode_reply(&bytes, pending),
                Ok((header, reply)),
                "reply to {pending:?} unstable"
            );
        }
    }
}

/// Splits the input as a stream, fed in one piece and byte by byte: both must hand out
/// the same frames and end in the same state (a frame error ends the stream).
fn frames(data: &[u8]) {
    let mut whole = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
    whole.push(data);
    let from_whole = drain(&mut whole);
    let mut bytewise = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
    let mut from_bytes = (Vec::new(), false);
    for byte in data {
        bytewise.push(std::slice::from_ref(byte));
        let (frames, failed) = drain(&mut bytewise);
        from_bytes.0.extend(frames);
        if failed {
            from_bytes.1 = true;
            break;
        }
    }
    assert_eq!(
        from_whole, from_bytes,
        "framing depends on how bytes are split"
    );
    if let Ok(Some((payload, consumed_bytes))) = split_frame(data, MAX_FRAME_BYTES_DEFAULT) {
        assert_eq!(
            consumed_bytes,
            payload.len() + 4,
            "split_frame consumed count"
        );
    }
}

/// Every frame the splitter can hand out now, and whether it stopped on an error.
fn drain(splitter: &mut FrameSplitter) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    loop {
        match splitter.next_frame() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}
