//! `apiload lsp` against broken input on its stdin and in its workspace:
//! framing errors and invalid JSON are answered per JSON-RPC (`-32700`,
//! `-32600`, `id: null`) and the session goes on; a huge `Content-Length`
//! allocates nothing; a FIFO in the workspace does not stop the scan.

mod lsp_client;

use lsp_client::{Client, WAIT, codes, workspace};
use serde_json::{Value, json};

fn error_with(code: i64) -> impl FnMut(&Value) -> bool {
    move |m: &Value| m.get("method").is_none() && m["error"]["code"] == code
}

#[test]
fn framing_errors_and_invalid_json_are_answered_and_the_session_goes_on() {
    let root = workspace("lsp/workspace", "framing");
    let mut c = Client::start(Some(&root), json!({}));
    // Content that is not JSON.
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let e = c.wait("a parse error for invalid JSON", WAIT, error_with(-32700));
    assert_eq!(e["id"], Value::Null, "{e}");
    assert_eq!(e["jsonrpc"], "2.0");
    // A header without Content-Length, then one whose length is not a number.
    c.send_raw(b"Content-Type: application/vscode-jsonrpc\r\n\r\n");
    c.wait("a parse error for a frame without Content-Length", WAIT, error_with(-32700));
    c.send_raw(b"Content-Length: lots\r\n\r\n");
    c.wait("a parse error for a length that is no number", WAIT, error_with(-32700));
    // JSON that is not a message: its id is echoed.
    c.send(json!({"jsonrpc": "2.0", "id": 99}));
    let e = c.wait("an invalid request", WAIT, error_with(-32600));
    assert_eq!(e["id"], 99, "{e}");
    // Still serving: a request is answered and shutdown is clean.
    let result = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///nowhere.yaml"}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(result, Value::Null);
    assert!(c.shutdown().success());
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_huge_content_length_is_refused_at_once_without_allocating_it() {
    let root = workspace("lsp/workspace", "huge-length");
    let mut c = Client::start(Some(&root), json!({}));
    c.send_raw(b"Content-Length: 2000000000\r\n\r\n");
    let e = c.wait("a parse error for a 2 GB frame", WAIT, error_with(-32700));
    assert!(e["error"]["message"].as_str().unwrap().contains("limit"), "{e}");
    if let Some(kib) = peak_rss_kib(c.pid()) {
        // lsp-server's reader allocated the claimed length up front (1.4 GB resident).
        assert!(kib < 512 * 1024, "peak RSS {kib} KiB after a 2 GB Content-Length");
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_in_the_workspace_does_not_stop_the_scan() {
    let root = workspace("lsp/workspace", "fifo");
    let fifo = root.join("agents/pipe.yaml");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut c = Client::start(Some(&root), json!({}));
    // The DaemonSet's finding comes from the scan (the file is not opened in the editor).
    let uri = lsp_client::file_uri(&root.join("agents/node-agent.yaml"));
    let ds = c.diagnostics(&uri, "the scan's findings for the DaemonSet", |d| !d.is_empty());
    assert!(codes(&ds).iter().any(|c| c.starts_with("AL")), "{ds:?}");
    assert!(c.shutdown().success());
}
