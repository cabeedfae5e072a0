//! The language server's base protocol: messages framed by a header part
//! (`Content-Length: N\r\n`, other headers, `\r\n`) and N bytes of JSON-RPC
//! content (LSP specification, "Base Protocol").
//!
//! A broken frame or content that is not JSON must not end the session: the
//! reader answers it with a JSON-RPC error response whose `id` is null —
//! `-32700` (Parse error) for bytes that are not JSON or not a frame,
//! `-32600` (Invalid Request) for JSON that is not a message (JSON-RPC 2.0,
//! section 5.1) — finds the next frame and goes on. Header values are
//! bounded before anything is allocated for them: a `Content-Length` over
//! [`MAX_CONTENT_LENGTH`] is skipped without being buffered, and content is
//! read as it arrives, never allocated up front from the header's claim.
//!
//! In the library (not in the `lsp` module) so that the fuzz target reaches it.

use lsp_server::Message;
use serde_json::Value;
use std::io::{self, BufRead, Read};

/// Longest header line (the specification's headers are short).
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// Most header lines in one frame.
pub const MAX_HEADERS: usize = 16;
/// Largest content: twice the loader's 32 MiB file limit, for JSON escaping
/// of a whole document sent by `didOpen`.
pub const MAX_CONTENT_LENGTH: usize = 64 * 1024 * 1024;

/// JSON-RPC 2.0: "Invalid JSON was received by the server."
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0: "The JSON sent is not a valid Request object."
pub const INVALID_REQUEST: i32 = -32600;

/// What one read produced.
#[derive(Debug)]
pub enum Frame {
    Message(Message),
    /// A frame that cannot be served: answer it with [`error_response`],
    /// [`skip`] the `then_skip` bytes of content it announced (after
    /// answering: they may take long to arrive), and go on.
    Invalid {
        code: i32,
        message: String,
        id: Value,
        then_skip: u64,
    },
}

/// Reads the next frame; `Ok(None)` at the end of the stream (a frame cut
/// short by the end of the stream is the end too: nothing can follow it).
pub fn read_frame(r: &mut impl BufRead) -> io::Result<Option<Frame>> {
    let mut length: Option<Result<usize, BadLength>> = None;
    let mut problem: Option<String> = None;
    let mut lines = 0usize;
    loop {
        let line = match read_line(r, MAX_HEADER_LINE)? {
            Line::Eof => return Ok(None),
            Line::TooLong => {
                // A line of this frame's header, though not one to keep.
                lines += 1;
                problem.get_or_insert_with(|| format!("a header line is longer than {MAX_HEADER_LINE} bytes"));
                continue;
            }
            Line::Text(l) => l,
        };
        let line = trim_line_end(&line);
        if line.is_empty() {
            if lines == 0 {
                // Blank lines between frames (or left by a broken one): keep looking.
                continue;
            }
            break;
        }
        lines += 1;
        if lines > MAX_HEADERS {
            problem.get_or_insert_with(|| format!("more than {MAX_HEADERS} header lines"));
            continue;
        }
        // What a broken frame left before the next header is not a header:
        // resynchronise on the last `Content-Length:` of the line. Other
        // headers (`Content-Type`, unknown ones) are tolerated.
        let text = String::from_utf8_lossy(line);
        if let Some(at) = text.to_ascii_lowercase().rfind("content-length:") {
            let value = text[at + "content-length:".len()..].trim();
            length = Some(match value.parse::<u64>() {
                Ok(n) if n <= MAX_CONTENT_LENGTH as u64 => Ok(n as usize),
                Ok(n) => Err(Oversized(n)),
                Err(_) => Err(NotANumber(shorten(value))),
            });
        }
    }
    let length = match length {
        None => return Ok(Some(parse_error(problem.unwrap_or_else(|| "a header without Content-Length".into())))),
        Some(Err(NotANumber(value))) => {
            return Ok(Some(parse_error(format!("Content-Length `{value}` is not a length"))));
        }
        Some(Err(Oversized(n))) => {
            // Its content is skipped as it arrives, never kept, so that the next frame is found.
            let message = format!("Content-Length {n} is over the server's limit of {MAX_CONTENT_LENGTH} bytes");
            return Ok(Some(Frame::Invalid { code: PARSE_ERROR, message, id: Value::Null, then_skip: n }));
        }
        Some(Ok(n)) => n,
    };
    let mut content = Vec::new();
    r.take(length as u64).read_to_end(&mut content)?;
    if content.len() < length {
        return Ok(None);
    }
    if let Some(p) = problem {
        return Ok(Some(parse_error(p)));
    }
    Ok(Some(decode(&content)))
}

/// The content of a frame as a message.
pub fn decode(content: &[u8]) -> Frame {
    let value: Value = match serde_json::from_slice(content) {
        Ok(v) => v,
        Err(e) => return parse_error(format!("the content is not JSON: {e}")),
    };
    let id = value.get("id").filter(|id| id.is_string() || id.is_number()).cloned().unwrap_or(Value::Null);
    if !value.is_object() {
        return Frame::Invalid {
            code: INVALID_REQUEST,
            message: "a message must be a JSON object (batches are not part of the protocol)".into(),
            id,
            then_skip: 0,
        };
    }
    match serde_json::from_value::<Message>(value) {
        Ok(m) => Frame::Message(m),
        Err(e) => {
            Frame::Invalid { code: INVALID_REQUEST, message: format!("not a JSON-RPC message: {e}"), id, then_skip: 0 }
        }
    }
}

/// The JSON-RPC error response for an invalid frame, as content to frame.
pub fn error_response(code: i32, message: &str, id: &Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// `Content-Length: N\r\n\r\n` and the content.
pub fn frame(content: &str) -> String {
    format!("Content-Length: {}\r\n\r\n{content}", content.len())
}

fn parse_error(message: String) -> Frame {
    Frame::Invalid { code: PARSE_ERROR, message, id: Value::Null, then_skip: 0 }
}

/// A `Content-Length` that cannot be served.
enum BadLength {
    Oversized(u64),
    NotANumber(String),
}
use BadLength::*;

/// Reads and drops `n` bytes (fewer at the end of the stream), a buffer at a time.
pub fn skip(r: &mut impl BufRead, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        let take = available.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// One line (through `\n`), at most `max` bytes kept; a longer one is read
/// to its end and reported.
fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if line.is_empty() && !too_long { Line::Eof } else { Line::Text(line) });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long && line.len() + n <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        r.consume(n);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Text(line) });
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

fn shorten(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = io::BufReader::new(input);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut r).unwrap() {
            if let Frame::Invalid { then_skip, .. } = f {
                skip(&mut r, then_skip).unwrap();
            }
            out.push(f);
        }
        out
    }

    fn codes(input: &[u8]) -> Vec<Result<String, i32>> {
        frames(input)
            .into_iter()
            .map(|f| match f {
                Frame::Message(Message::Request(r)) => Ok(r.method),
                Frame::Message(Message::Notification(n)) => Ok(n.method),
                Frame::Message(Message::Response(r)) => Ok(format!("response {}", r.id)),
                Frame::Invalid { code, .. } => Err(code),
            })
            .collect()
    }

    const PING: &str = r#"{"jsonrpc":"2.0","method":"ping"}"#;

    #[test]
    fn well_formed_frames_are_messages() {
        let input = format!("{}{}", frame(PING), frame(r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#));
        assert_eq!(codes(input.as_bytes()), [Ok("ping".into()), Ok("shutdown".into())]);
        let with_type = format!("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n{}", frame(PING));
        assert_eq!(codes(with_type.as_bytes()), [Ok("ping".into())]);
    }

    #[test]
    fn invalid_json_is_a_parse_error_and_the_next_frame_is_served() {
        let input = format!("{}{}", frame("{not json"), frame(PING));
        assert_eq!(codes(input.as_bytes()), [Err(PARSE_ERROR), Ok("ping".into())]);
    }

    #[test]
    fn json_that_is_not_a_message_is_an_invalid_request_with_its_id() {
        let input = format!("{}{}", frame(r#"{"jsonrpc":"2.0","id":7}"#), frame("[1,2]"));
        let f = frames(input.as_bytes());
        assert!(matches!(&f[0], Frame::Invalid { code: INVALID_REQUEST, id, .. } if id == 7), "{f:?}");
        assert!(matches!(&f[1], Frame::Invalid { code: INVALID_REQUEST, id: Value::Null, .. }), "{f:?}");
    }

    #[test]
    fn broken_headers_are_parse_errors_and_the_stream_resynchronises() {
        // No Content-Length, a length that is no number, garbage before the
        // next header (left by the broken frame before it).
        let input = format!(
            "X-Nothing: 1\r\n\r\nContent-Length: twelve\r\n\r\n{{}}garbage{}{}",
            frame(PING),
            frame(r#"{"jsonrpc":"2.0","method":"after"}"#)
        );
        assert_eq!(
            codes(input.as_bytes()),
            [Err(PARSE_ERROR), Err(PARSE_ERROR), Ok("ping".into()), Ok("after".into())]
        );
    }

    #[test]
    fn a_huge_content_length_is_refused_at_once_and_its_content_skipped() {
        // Answered before any content arrives; what it announced is skipped.
        let mut r = io::BufReader::new(&b"Content-Length: 2000000000\r\n\r\n"[..]);
        let f = read_frame(&mut r).unwrap();
        assert!(matches!(f, Some(Frame::Invalid { code: PARSE_ERROR, then_skip: 2_000_000_000, .. })), "{f:?}");
        let over = MAX_CONTENT_LENGTH + 1;
        let input = format!("Content-Length: {over}\r\n\r\n{}{}", " ".repeat(over), frame(PING));
        assert_eq!(codes(input.as_bytes()), [Err(PARSE_ERROR), Ok("ping".into())]);
        // Within the limit but cut short by the end of the stream: the end.
        assert!(codes(b"Content-Length: 100\r\n\r\n{}").is_empty());
        // A header line of a megabyte is refused, and the frame after it served.
        let mut long = vec![b'x'; 1 << 20];
        long.extend_from_slice(b"\r\n\r\n");
        long.extend_from_slice(frame(PING).as_bytes());
        assert_eq!(codes(&long), [Err(PARSE_ERROR), Ok("ping".into())]);
    }

    #[test]
    fn error_responses_are_json_rpc() {
        let v: Value = serde_json::from_str(&error_response(PARSE_ERROR, "bad", &Value::Null)).unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "bad"}}));
    }
}
