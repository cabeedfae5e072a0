//! HTTP/1.0 over plain TCP on loopback, for the endpoints that have no TLS:
//! etcd's client URL (health, revision, compaction through its JSON gateway)
//! and the webhook's metrics port. HTTP/1.0 so that answers are never chunked.

use crate::Result;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let run = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        stream.write_all(body.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        parse(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| format!("{method} 127.0.0.1:{port}{path}: no answer in 10 s"))?
        .map_err(|e| format!("{method} 127.0.0.1:{port}{path}: {e}"))
}

fn parse(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers in the answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {:?}", head.lines().next()))?;
    Ok((status, body.to_string()))
}

pub async fn get(port: u16, path: &str) -> Result<String> {
    match request(port, "GET", path, None).await? {
        (200, body) => Ok(body),
        (code, body) => Err(format!("GET 127.0.0.1:{port}{path}: {code} {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        assert_eq!(
            parse(b"HTTP/1.0 503 Service Unavailable\r\nA: b\r\n\r\nnot ready").unwrap(),
            (503, "not ready".into())
        );
        assert!(parse(b"HTTP/1.0 200 OK\r\n").is_err());
        assert!(parse(b"garbage\r\n\r\n").is_err());
    }
}
