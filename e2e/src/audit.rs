//! The API server's audit log (JSON lines, `audit.k8s.io/v1` Events at
//! Metadata level), read back to see what a client really sent.

use crate::Result;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub user: User,
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    #[serde(default)]
    pub response_status: Option<Status>,
    pub request_received_timestamp: String,
    pub stage_timestamp: String,
    #[serde(default, rename = "auditID")]
    pub audit_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub code: i32,
}

impl Event {
    pub fn resource(&self) -> &str {
        self.object_ref.as_ref().map_or("", |o| o.resource.as_str())
    }

    pub fn code(&self) -> i32 {
        self.response_status.as_ref().map_or(0, |s| s.code)
    }

    /// The value of a query parameter of the request URI (percent-decoding
    /// the few characters selectors use).
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, query) = self.request_uri.split_once('?')?;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| decode(v))
        })
    }

    /// The request path without its query.
    pub fn path(&self) -> &str {
        self.request_uri.split_once('?').map_or(self.request_uri.as_str(), |(p, _)| p)
    }

    /// Whether this is the event written once per request: ResponseComplete,
    /// or ResponseStarted for a watch (whose completion comes when it ends).
    pub fn is_request(&self) -> bool {
        self.stage == "ResponseComplete" && self.verb != "watch"
            || self.stage == "ResponseStarted" && self.verb == "watch"
    }

    /// Seconds since the epoch of `requestReceivedTimestamp` (RFC 3339, UTC).
    pub fn received_seconds(&self) -> f64 {
        rfc3339_seconds(&self.request_received_timestamp).unwrap_or(0.0)
    }
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `2026-12-01T21:30:00.123456Z` as seconds since the epoch.
pub fn rfc3339_seconds(t: &str) -> Option<f64> {
    let (date, time) = t.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut tm = time.split(':');
    let (h, min) = (tm.next()?.parse::<i64>().ok()?, tm.next()?.parse::<i64>().ok()?);
    let sec: f64 = tm.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60) as f64 + sec)
}

/// Every event of the log, in order. Lines that are not events are errors
/// naming the line.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Event>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// The byte length of the log now, to read only what comes after.
pub fn mark(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Events written after `mark`.
pub fn read_since(path: &Path, mark: u64) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let start = (mark as usize).min(bytes.len());
    parse(&String::from_utf8_lossy(&bytes[start..])).map_err(|e| format!("{} after byte {mark}: {e}", path.display()))
}

/// The raw lines written after `mark` (for recordings).
pub fn lines_since(path: &Path, mark: u64) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let start = (mark as usize).min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..]).lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseStarted","requestURI":"/api/v1/pods?allowWatchBookmarks=true\u0026fieldSelector=spec.nodeName%3Dnode-1\u0026resourceVersion=0\u0026watch=true","verb":"watch","user":{"username":"system:serviceaccount:agents:node-agent","groups":["system:serviceaccounts"]},"userAgent":"agent","objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-12-01T21:30:00.500000Z","stageTimestamp":"2026-12-01T21:30:00.510000Z"}"#;

    #[test]
    fn reads_an_event_and_its_query() {
        let events = parse(&format!("{LINE}\n\n")).unwrap();
        let e = &events[0];
        assert!(e.is_request());
        assert_eq!(e.resource(), "pods");
        assert_eq!(e.query("fieldSelector").as_deref(), Some("spec.nodeName=node-1"));
        assert_eq!(e.query("resourceVersion").as_deref(), Some("0"));
        assert_eq!(e.query("limit"), None);
        assert_eq!(e.path(), "/api/v1/pods");
        assert_eq!(e.code(), 200);
        assert_eq!(e.received_seconds(), 1_796_160_600.5);
    }

    #[test]
    fn names_the_line_that_is_not_an_event() {
        let err = parse(&format!("{LINE}\nnot json\n")).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn epoch_seconds() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_seconds("2000-03-01T00:00:01.25Z"), Some(951_868_801.25));
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
