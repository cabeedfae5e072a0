//! Fuzzes the language server's base-protocol reader: any bytes on stdin
//! give messages, or errors to answer (valid JSON-RPC error responses), until
//! the end of the stream; nothing panics, nothing claimed by a header is
//! allocated before it arrives, and each frame is read in bounded steps.

#![no_main]

use apiload::lsp_framing::{self, Frame, MAX_CONTENT_LENGTH};
use libfuzzer_sys::fuzz_target;
use std::io::BufReader;

fuzz_target!(|bytes: &[u8]| {
    // A small buffer: frames are split across reads, as on a pipe.
    let mut reader = BufReader::with_capacity(64, bytes);
    // Every frame consumes at least one byte, so this ends.
    for _ in 0..=bytes.len() {
        match lsp_framing::read_frame(&mut reader) {
            Ok(Some(Frame::Message(m))) => {
                // What was read can be written back and read again.
                let mut out = Vec::new();
                m.write(&mut out).expect("a message writes");
                let again = lsp_framing::read_frame(&mut BufReader::new(&out[..])).expect("reads");
                assert!(matches!(again, Some(Frame::Message(_))), "{again:?}");
            }
            Ok(Some(Frame::Invalid { code, message, id, then_skip })) => {
                assert!(code == lsp_framing::PARSE_ERROR || code == lsp_framing::INVALID_REQUEST);
                let answer: serde_json::Value =
                    serde_json::from_str(&lsp_framing::error_response(code, &message, &id)).expect("JSON");
                assert_eq!(answer["error"]["code"], code);
                assert!(id.is_null() || id.is_string() || id.is_number());
                assert!(then_skip == 0 || then_skip > MAX_CONTENT_LENGTH as u64);
                lsp_framing::skip(&mut reader, then_skip).expect("skip");
            }
            Ok(None) => return,
            Err(e) => panic!("reading from memory cannot fail: {e}"),
        }
    }
    panic!("more frames than bytes");
});
