//! A minimal LSP client for the tests: runs `apiload lsp`, frames JSON-RPC
//! over its stdio, and never waits without a deadline.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Deadline of one wait: generous, the tests run on debug builds on busy machines.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

/// A copy of a fixture folder in a fresh temporary folder (tests edit files).
pub fn workspace(fixture: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lsp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&testdata(fixture), &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Messages read but not consumed yet, in order.
    queue: VecDeque<Value>,
    /// Every notification received, in order.
    pub seen: Vec<Value>,
    next_id: i64,
    pub initialize_result: Value,
    /// The last version sent for each open document.
    versions: std::collections::HashMap<String, i64>,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Client {
    /// Starts the server on `root` with these client capabilities and completes the handshake.
    pub fn start(root: Option<&Path>, capabilities: Value) -> Client {
        Client::start_with(root, capabilities, &[])
    }

    pub fn start_with(root: Option<&Path>, capabilities: Value, env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_apiload"))
            .arg("lsp")
            .envs(env.iter().copied())
            .env("APILOAD_TODAY", "2026-01-01")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apiload lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            incoming,
            queue: VecDeque::new(),
            seen: Vec::new(),
            next_id: 1,
            initialize_result: Value::Null,
            versions: Default::default(),
        };
        let folders = match root {
            Some(r) => json!([{"uri": file_uri(r), "name": "workspace"}]),
            None => Value::Null,
        };
        let root_uri = root.map_or(Value::Null, |r| Value::String(file_uri(r)));
        c.initialize_result = c.request(
            "initialize",
            json!({"processId": null, "rootUri": root_uri, "workspaceFolders": folders, "capabilities": capabilities}),
        );
        c.notify("initialized", json!({}));
        c
    }

    pub fn send(&mut self, msg: Value) {
        let body = serde_json::to_string(&msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Bytes as they are, framed or not.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and returns its result (panics on an error response).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let r = self.wait(&format!("the response to {method}"), WAIT, |m| {
            m.get("id") == Some(&json!(id)) && m.get("method").is_none()
        });
        if let Some(e) = r.get("error") {
            panic!("{method} failed: {e}");
        }
        r["result"].clone()
    }

    /// The next message (in order) that satisfies `pred`; messages before it
    /// stay queued. Requests from the server are answered with `null`.
    pub fn wait(&mut self, what: &str, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(i) = self.queue.iter().position(&mut pred) {
            return self.queue.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(m) => {
                    if let (Some(id), Some(_)) = (m.get("id"), m.get("method")) {
                        let id = id.clone();
                        self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
                    } else if m.get("id").is_none() {
                        self.seen.push(m.clone());
                    }
                    if pred(&m) {
                        return m;
                    }
                    self.queue.push_back(m);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out after {timeout:?} waiting for {what}; received: {:#?}", self.queue)
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the server exited while waiting for {what}"),
            }
        }
    }

    /// The next `publishDiagnostics` for `uri` that satisfies `pred`. A
    /// publication is the document's whole state, so those that do not match
    /// on the way are superseded and dropped, and so are those for an older
    /// version than the last one this client sent.
    pub fn diagnostics(&mut self, uri: &str, what: &str, mut pred: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let min_version = self.versions.get(uri).copied();
        let is_ours = |m: &Value| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri;
        let current = |m: &Value| match (min_version, m["params"]["version"].as_i64()) {
            (Some(min), Some(v)) => v >= min,
            _ => true,
        };
        let mut check =
            |m: &Value| current(m) && pred(m["params"]["diagnostics"].as_array().map_or(&[][..], Vec::as_slice));
        while let Some(i) = self.queue.iter().position(is_ours) {
            let m = self.queue.remove(i).unwrap();
            if check(&m) {
                return m["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.wait(what, left, |m| is_ours(m));
            if check(&m) {
                return m["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
        }
    }

    pub fn open(&mut self, path: &Path, text: &str) -> String {
        let uri = file_uri(path);
        self.versions.insert(uri.clone(), 1);
        let lang = if path.extension().is_some_and(|e| e == "json") { "json" } else { "yaml" };
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": lang, "version": 1, "text": text}}),
        );
        uri
    }

    pub fn change(&mut self, uri: &str, version: i32, text: &str) {
        self.versions.insert(uri.to_string(), version as i64);
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// `shutdown` and `exit`; the server's exit status.
    pub fn shutdown(mut self) -> ExitStatus {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rule ids of diagnostics.
pub fn codes(ds: &[Value]) -> Vec<String> {
    ds.iter().filter_map(|d| d["code"].as_str().map(str::to_string)).collect()
}

pub fn find<'a>(ds: &'a [Value], code: &str) -> &'a Value {
    ds.iter().find(|d| d["code"] == code).unwrap_or_else(|| panic!("no {code} in {ds:#?}"))
}
