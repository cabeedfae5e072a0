//! Reading the API server's audit log as it comes: JSON lines of
//! `audit.k8s.io/v1` Events (`--audit-log-path`), in files, gzip files
//! (`--audit-log-compress`), folders of rotated logs, or stdin; streamed in
//! chunks, so that memory does not grow with the log. Each event is decoded
//! into the engine's `observed::Event` and handed to its `Recorder`; events
//! of users the recorder does not want are skipped before decoding.
//!
//! A line that is not an event (truncated, too long, not UTF-8, other JSON)
//! is a problem reported with its file and line; the rest is read.

use apiload_rules::observed::{Event, ObjectRef, Recorder, Stage};
use serde::Deserialize;
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Longest line read, in bytes. Metadata-level events are about 1 KB; a
/// RequestResponse event with a large object can be megabytes.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Problems reported one by one; beyond, only counted.
pub const MAX_PROBLEMS: usize = 50;

/// One log to read: a file, or stdin (`-`).
#[derive(Clone, Debug, PartialEq)]
pub struct LogFile {
    /// As problems name it.
    pub name: String,
    /// `None` for stdin.
    pub path: Option<PathBuf>,
}

/// What reading the logs found.
#[derive(Clone, Debug, Default)]
pub struct ReadReport {
    pub files: Vec<FileReport>,
    /// The first problems, `FILE:LINE: message`.
    pub problems: Vec<String>,
    /// Every problem, reported or not.
    pub problem_count: u64,
    /// Files that could not be opened.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    pub name: String,
    pub lines: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub gzip: bool,
}

impl ReadReport {
    fn problem(&mut self, file: &str, line: u64, message: impl std::fmt::Display) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(format!("{file}:{line}: {message}"));
        }
    }
}

/// The logs `paths` name: files as given, the files of a folder (rotated
/// logs) in name order, `-` for stdin. Errors name the path.
pub fn expand(paths: &[String]) -> (Vec<LogFile>, Vec<String>) {
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    for p in paths {
        if p == "-" {
            files.push(LogFile { name: "<stdin>".into(), path: None });
            continue;
        }
        let path = Path::new(p);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut inside: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|f| f.is_file())
                        .filter(|f| f.file_name().is_some_and(|n| is_log_name(&n.to_string_lossy())))
                        .collect();
                    // Rotated logs (`audit-2026-12-01T10-00-00.000.log.gz`)
                    // sort before the current one (`audit.log`); the
                    // recorder does not depend on the order anyway.
                    inside.sort();
                    if inside.is_empty() {
                        errors.push(format!("{p}: a folder without log files"));
                    }
                    files.extend(inside.into_iter().map(|f| LogFile { name: f.display().to_string(), path: Some(f) }));
                }
                Err(e) => errors.push(format!("{p}: {e}")),
            },
            Ok(_) => files.push(LogFile { name: p.clone(), path: Some(path.to_path_buf()) }),
            Err(e) => errors.push(format!("{p}: {e}")),
        }
    }
    (files, errors)
}

/// Whether a file in a folder of logs is one: `audit.log`, its rotations
/// (`audit-2026-12-01T10-00-00.000.log`, `audit.log.1`, `.gz`), JSON lines
/// (`.jsonl`, `.json`); not a README or a hidden file.
fn is_log_name(name: &str) -> bool {
    !name.starts_with('.')
        && (name.ends_with(".gz")
            || name.ends_with(".jsonl")
            || name.ends_with(".json")
            || name.ends_with(".log")
            || name.contains(".log."))
}

/// How findings and summaries name the logs `paths` gave.
pub fn name_logs(paths: &[String], files: &[LogFile]) -> String {
    match (paths, files) {
        ([one], [_]) if one != "-" => one.clone(),
        ([one], many) if one != "-" => format!("{one} ({} files)", many.len()),
        (_, [one]) => one.name.clone(),
        (_, many) => format!("{} logs", many.len()),
    }
}

/// Reads every log into the recorder.
pub fn read(files: &[LogFile], recorder: &mut Recorder) -> ReadReport {
    let mut report = ReadReport::default();
    for f in files {
        let opened: std::io::Result<Box<dyn Read>> = match &f.path {
            None => Ok(Box::new(std::io::stdin().lock())),
            Some(p) => std::fs::File::open(p).map(|file| Box::new(file) as Box<dyn Read>),
        };
        match opened {
            Ok(reader) => read_one(&f.name, reader, recorder, &mut report),
            Err(e) => report.errors.push(format!("{}: {e}", f.name)),
        }
    }
    report
}

/// Reads one log (plain or gzip, by its first bytes).
pub fn read_one(name: &str, mut reader: Box<dyn Read + '_>, recorder: &mut Recorder, report: &mut ReadReport) {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                report.errors.push(format!("{name}: {e}"));
                return;
            }
        }
    }
    let gzip = got == 2 && head == [0x1f, 0x8b];
    let rest = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    let source: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(rest)) } else { Box::new(rest) };
    let mut file = FileReport { name: name.to_string(), gzip, ..FileReport::default() };
    let result = for_each_line(source, MAX_LINE_BYTES, |number, line| {
        file.lines += 1;
        match line {
            Line::Text(bytes) => {
                file.bytes += bytes.len() as u64 + 1;
                if let Err(message) = take(bytes, recorder) {
                    file.malformed += 1;
                    report.problem(name, number, message);
                }
            }
            Line::TooLong(len) => {
                file.bytes += len;
                file.malformed += 1;
                report.problem(name, number, format!("a line of {len} bytes, longer than {MAX_LINE_BYTES}: skipped"));
            }
        }
    });
    // A log cut short (a gzip file still being written when it was
    // copied, a broken disk) keeps what was read before the cut.
    if let Err(e) = result {
        file.malformed += 1;
        report.problem(name, file.lines + 1, format!("cannot read further ({e}): the rest of this file is not read"));
    }
    report.files.push(file);
}

/// One line as the reader hands it over.
pub enum Line<'a> {
    /// Without its line end.
    Text(&'a [u8]),
    /// A line longer than the limit, with its length; its bytes were dropped.
    TooLong(u64),
}

/// Calls `f` with every line of `reader` (numbered from 1; blank lines
/// skipped but counted), reading in large chunks and never holding more
/// than `max_line` bytes of one line.
pub fn for_each_line(mut reader: impl Read, max_line: usize, mut f: impl FnMut(u64, Line<'_>)) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let mut buf: Vec<u8> = vec![0; CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut number = 0u64;
    // Bytes of an over-long line dropped so far (`Some` while skipping it).
    let mut skipping: Option<u64> = None;
    loop {
        // Complete lines in the buffer.
        while let Some(i) = memchr::memchr(b'\n', &buf[start..end]) {
            let line = &buf[start..start + i];
            start += i + 1;
            number += 1;
            match skipping.take() {
                Some(dropped) => f(number, Line::TooLong(dropped + line.len() as u64)),
                // The buffer holds a little more than `max_line`.
                None if line.len() > max_line => f(number, Line::TooLong(line.len() as u64)),
                None => {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        f(number, Line::Text(line));
                    }
                }
            }
        }
        // Keep the partial line at the front, or drop it when too long.
        let partial = end - start;
        if skipping.is_some() || partial > max_line {
            *skipping.get_or_insert(0) += partial as u64;
            start = 0;
            end = 0;
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            start = 0;
            end = partial;
        }
        if buf.len() - end < CHUNK / 2 {
            let grown = (buf.len() * 2).min(max_line + CHUNK);
            buf.resize(grown.max(end + CHUNK / 2), 0);
        }
        let n = loop {
            match reader.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // The last line, without a line end (perhaps cut short).
            if let Some(dropped) = skipping {
                f(number + 1, Line::TooLong(dropped + (end - start) as u64));
            } else if end - start > max_line {
                f(number + 1, Line::TooLong((end - start) as u64));
            } else if end > start && !buf[start..end].iter().all(u8::is_ascii_whitespace) {
                f(number + 1, Line::Text(&buf[start..end]));
            }
            return Ok(());
        }
        end += n;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stage: Cow<'a, str>,
    #[serde(borrow, default, rename = "auditID")]
    audit_id: Cow<'a, str>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Cow<'a, str>,
    #[serde(borrow)]
    verb: Cow<'a, str>,
    #[serde(borrow)]
    user: RawUser<'a>,
    #[serde(borrow, default, rename = "sourceIPs")]
    source_ips: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object_ref: Option<RawRef<'a>>,
    #[serde(default)]
    response_status: Option<RawStatus>,
    #[serde(borrow)]
    request_received_timestamp: Cow<'a, str>,
    #[serde(borrow, default)]
    stage_timestamp: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    username: Cow<'a, str>,
    #[serde(borrow, default)]
    extra: Option<RawExtra<'a>>,
}

/// The keys of `user.extra` a bound ServiceAccount token sets.
#[derive(Deserialize)]
struct RawExtra<'a> {
    #[serde(borrow, default, rename = "authentication.kubernetes.io/pod-name")]
    pod_name: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "authentication.kubernetes.io/node-name")]
    node_name: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRef<'a> {
    #[serde(borrow, default)]
    resource: Cow<'a, str>,
    #[serde(borrow, default)]
    subresource: Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    api_group: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: Option<i64>,
}

/// What the API server writes first in every event, up to the user name
/// (Go encodes the struct's fields in order: `user` after `verb`).
const USER_KEY: &[u8] = b"\"user\":{\"username\":\"";

/// The user name of an event line as the API server writes it, without
/// decoding the line; `None` when it is written otherwise.
fn quick_username(line: &[u8]) -> Option<&str> {
    let at = memchr::memmem::find(line, USER_KEY)? + USER_KEY.len();
    let len = memchr::memchr2(b'"', b'\\', &line[at..])?;
    if line[at + len] != b'"' {
        return None; // an escape: decode the whole line
    }
    std::str::from_utf8(&line[at..at + len]).ok()
}

/// Decodes one line and records it; the error says why it is not an event.
fn take(line: &[u8], recorder: &mut Recorder) -> Result<(), String> {
    if let Some(user) = quick_username(line)
        && !recorder.filter().wants(user)
    {
        recorder.skipped_user();
        return Ok(());
    }
    let raw: RawEvent<'_> = serde_json::from_slice(line).map_err(|e| why_not_an_event(line, e))?;
    if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "Event") {
        return Err(format!("not an audit event (kind `{kind}`)"));
    }
    if let Some(v) = raw.api_version.as_deref().filter(|v| !v.starts_with("audit.k8s.io/")) {
        return Err(format!("not an audit event (apiVersion `{v}`, not audit.k8s.io/v1)"));
    }
    let stage = Stage::parse(&raw.stage).ok_or_else(|| format!("unknown stage `{}`", raw.stage))?;
    let extra = raw.user.extra.as_ref();
    let event = Event {
        stage,
        audit_id: &raw.audit_id,
        verb: &raw.verb,
        request_uri: &raw.request_uri,
        username: &raw.user.username,
        pod_name: extra.and_then(|x| x.pod_name.first()).map(|s| &**s),
        node_name: extra.and_then(|x| x.node_name.first()).map(|s| &**s),
        source_ip: raw.source_ips.last().map(|s| &**s),
        user_agent: raw.user_agent.as_deref(),
        object_ref: raw.object_ref.as_ref().map(|r| ObjectRef {
            resource: &r.resource,
            subresource: &r.subresource,
            namespace: &r.namespace,
            name: &r.name,
            api_group: &r.api_group,
        }),
        code: raw.response_status.as_ref().and_then(|s| s.code).and_then(|c| u16::try_from(c).ok()),
        request_received: &raw.request_received_timestamp,
        stage_timestamp: &raw.stage_timestamp,
    };
    recorder.record(&event)
}

/// Why a line is not JSON of an event, in the words a user can act on.
fn why_not_an_event(line: &[u8], e: serde_json::Error) -> String {
    if let Err(u) = std::str::from_utf8(line) {
        return format!("not UTF-8 (an invalid byte at column {})", u.valid_up_to() + 1);
    }
    match e.classify() {
        serde_json::error::Category::Eof => format!("cut short: the JSON ends at column {}", e.column()),
        serde_json::error::Category::Syntax => format!("not JSON: {e}"),
        serde_json::error::Category::Data => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Probe {
                #[serde(default)]
                kind: Option<String>,
                #[serde(default)]
                api_version: Option<String>,
            }
            match serde_json::from_slice::<Probe>(line) {
                Ok(Probe { kind: Some(k), api_version }) if k != "Event" => {
                    format!("not an audit event (kind `{k}`, apiVersion `{}`)", api_version.unwrap_or_default())
                }
                _ => format!("not an audit.k8s.io/v1 Event: {e}"),
            }
        }
        serde_json::error::Category::Io => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_rules::observed::UserFilter;

    const LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods?fieldSelector=spec.nodeName%3Dn1\u0026resourceVersion=0","verb":"list","user":{"username":"system:serviceaccount:agents:a","extra":{"authentication.kubernetes.io/pod-name":["a-bcdfg"],"authentication.kubernetes.io/node-name":["n1"]}},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-12-01T21:30:00.500000Z","stageTimestamp":"2026-12-01T21:30:00.510000Z"}"#;

    fn read_text(text: &[u8], filter: UserFilter) -> (ReadReport, apiload_rules::observed::Observations) {
        let mut recorder = Recorder::new(filter);
        let mut report = ReadReport::default();
        read_one("log", Box::new(text), &mut recorder, &mut report);
        (report, recorder.finish())
    }

    #[test]
    fn an_event_is_recorded_with_its_pod_and_node() {
        let (report, o) = read_text(format!("{LINE}\n").as_bytes(), UserFilter::ServiceAccounts);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let a = o.account("agents", "a").unwrap();
        assert_eq!(a.copies[0].pod.as_deref(), Some("a-bcdfg"));
        assert_eq!(a.copies[0].node.as_deref(), Some("n1"));
        assert_eq!(a.shapes[0].field_selector.as_deref(), Some("spec.nodeName=<node>"));
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_is_read() {
        let mut text = Vec::new();
        text.extend_from_slice(LINE.as_bytes());
        text.extend_from_slice(b"\n\n{\"kind\":\"Pod\",\"apiVersion\":\"v1\"}\n");
        text.extend_from_slice(&LINE.as_bytes()[..200]);
        text.extend_from_slice(b"\n{\"some\":\"json\"}\nnot json at all\n");
        text.extend_from_slice(LINE.replace("list", "watch").as_bytes());
        let mut bad_utf8 = LINE.as_bytes().to_vec();
        bad_utf8[40] = 0xff;
        text.push(b'\n');
        text.extend_from_slice(&bad_utf8);
        text.extend_from_slice(b"\n");
        text.extend_from_slice(LINE.replace("a-bcdfg", "a-bcdfh").as_bytes());
        text.extend_from_slice(b"\n");
        text.extend_from_slice(&LINE.as_bytes()[..100]); // cut at the end of the log
        let (report, o) = read_text(&text, UserFilter::ServiceAccounts);
        let problems: Vec<&str> = report.problems.iter().map(String::as_str).collect();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("log:3: not an audit event (kind `Pod`, apiVersion `v1`)"), "{}", problems[0]);
        assert!(problems[1].starts_with("log:4: cut short"), "{}", problems[1]);
        assert!(problems[2].starts_with("log:5: not an audit.k8s.io/v1 Event: missing field"), "{}", problems[2]);
        assert!(problems[3].starts_with("log:6: not JSON"), "{}", problems[3]);
        assert!(problems[4].starts_with("log:8: not UTF-8 (an invalid byte at column 41)"), "{}", problems[4]);
        assert!(problems[5].starts_with("log:10: cut short"), "{}", problems[5]);
        // Lines 1, 7 and 9 were events.
        assert_eq!(o.counts.requests, 3, "{:?}", o.counts);
        assert_eq!(o.account("agents", "a").unwrap().copies.len(), 2);
        assert_eq!(report.files[0].lines, 9, "blank lines are not counted as read");
    }

    #[test]
    fn a_huge_line_is_skipped_without_holding_it() {
        let mut text = Vec::new();
        text.extend_from_slice(LINE.as_bytes());
        text.push(b'\n');
        text.extend(std::iter::repeat_n(b'x', 5 << 20));
        text.push(b'\n');
        text.extend_from_slice(LINE.as_bytes());
        let mut lines = Vec::new();
        for_each_line(&text[..], 1 << 20, |n, l| {
            lines.push(match l {
                Line::Text(t) => (n, t.len() as u64, false),
                Line::TooLong(len) => (n, len, true),
            })
        })
        .unwrap();
        assert_eq!(lines, vec![(1, LINE.len() as u64, false), (2, 5 << 20, true), (3, LINE.len() as u64, false)]);
    }

    #[test]
    fn a_line_just_over_the_limit_is_too_long_wherever_it_ends() {
        let max = 1 << 20;
        for (len, end) in [(max, "\n"), (max + 1, "\n"), (max + 10, "\n"), (max + 1, "")] {
            let mut text = vec![b'x'; len];
            text.extend_from_slice(end.as_bytes());
            let mut lines = Vec::new();
            for_each_line(&text[..], max, |n, l| {
                lines.push(match l {
                    Line::Text(t) => (n, t.len(), false),
                    Line::TooLong(l) => (n, l as usize, true),
                })
            })
            .unwrap();
            assert_eq!(lines, vec![(1, len, len > max)], "a line of {len} bytes ending in {end:?}");
        }
    }

    #[test]
    fn gzip_and_other_users() {
        use std::io::Write;
        let other = LINE.replace("system:serviceaccount:agents:a", "system:node:n1");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!("{LINE}\n{other}\nbroken {other}\n").as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let (report, o) = read_text(&bytes, UserFilter::ServiceAccounts);
        assert!(report.files[0].gzip);
        assert_eq!((o.counts.requests, o.counts.other_users), (1, 2), "{:?}", report.problems);
        assert!(report.problems.is_empty(), "another user's line is skipped before it is decoded");
    }

    #[test]
    fn a_gzip_file_cut_short_keeps_what_was_read() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..2000 {
            gz.write_all(LINE.replace("a-bcdfg", &format!("a-{i:05}")).as_bytes()).unwrap();
            gz.write_all(b"\n").unwrap();
        }
        let bytes = gz.finish().unwrap();
        let (report, o) = read_text(&bytes[..bytes.len() / 2], UserFilter::ServiceAccounts);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let lines = report.files[0].lines;
        assert!(lines > 100 && lines < 2000, "{lines} lines read");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let cut = &report.problems[0];
        assert!(cut.starts_with(&format!("log:{}: cannot read further", lines + 1)), "{cut}");
        // The lines before the cut (but perhaps the last, cut short) are events.
        assert!(o.counts.requests >= lines - 1, "{} requests of {lines} lines", o.counts.requests);
    }

    #[test]
    fn quick_usernames() {
        assert_eq!(quick_username(LINE.as_bytes()), Some("system:serviceaccount:agents:a"));
        assert_eq!(quick_username(br#"{"user":{"username":"a\u0041"}}"#), None);
        assert_eq!(quick_username(br#"{"user":{"uid":"x","username":"a"}}"#), None);
    }
}
