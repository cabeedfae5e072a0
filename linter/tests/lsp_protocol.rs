//! `apiload lsp` at the protocol level: encodings, findings across files with
//! related information, unsaved text, hover, code actions, the configuration,
//! broken documents, request order, files changed on disk.

mod lsp_client;

use lsp_client::{Client, WAIT, codes, file_uri, find, workspace};
use serde_json::{Value, json};
use std::path::Path;

const DS: &str = "agents/node-agent.yaml";
const ROLE: &str = "rbac/node-agent.yaml";

fn utf8_client(root: &Path) -> Client {
    Client::start(Some(root), json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}))
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

fn pos(v: &Value) -> (u64, u64, u64, u64) {
    let r = &v["range"];
    (
        r["start"]["line"].as_u64().unwrap(),
        r["start"]["character"].as_u64().unwrap(),
        r["end"]["line"].as_u64().unwrap(),
        r["end"]["character"].as_u64().unwrap(),
    )
}

#[test]
fn positions_in_utf16_by_default_and_utf8_when_offered() {
    let root = workspace("lsp/workspace", "encodings");
    // The `serviceAccountName` value follows "zône-é😀" on its line: 83 UTF-16
    // units (the emoji is two) and 87 bytes (ô and é are two, the emoji four).
    for (caps, encoding, start, end) in [
        (json!({}), "utf-16", 83, 93),
        (json!({"general": {"positionEncodings": ["utf-16", "utf-8"]}}), "utf-8", 87, 97),
        (json!({"offsetEncoding": ["utf-8", "utf-16"]}), "utf-8", 87, 97),
        (json!({"general": {"positionEncodings": ["utf-32", "utf-16"]}}), "utf-16", 83, 93),
    ] {
        let mut c = Client::start(Some(&root), caps.clone());
        assert_eq!(c.initialize_result["capabilities"]["positionEncoding"], encoding, "{caps}");
        if caps.get("offsetEncoding").is_some() {
            assert_eq!(c.initialize_result["offsetEncoding"], encoding);
        }
        let uri = c.open(&root.join(DS), &read(&root, DS));
        let ds = c.diagnostics(&uri, "AL101 on the DaemonSet", |d| codes(d).contains(&"AL101".to_string()));
        assert_eq!(pos(find(&ds, "AL101")), (20, start, 20, end), "{caps}");
        // Hover at the same place in the same encoding finds the workload.
        let hover = c.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": 20, "character": start + 2}}),
        );
        assert!(hover["contents"]["value"].as_str().unwrap().contains("DaemonSet monitoring/node-agent"), "{hover}");
        assert!(c.shutdown().success());
    }
}

#[test]
fn findings_cross_files_with_related_information() {
    let root = workspace("lsp/workspace", "related");
    let mut c = utf8_client(&root);
    let uri = c.open(&root.join(DS), &read(&root, DS));
    let ds = c.diagnostics(&uri, "AL101 on the DaemonSet", |d| codes(d).contains(&"AL101".to_string()));
    let d = find(&ds, "AL101");
    assert_eq!(d["source"], "apiload");
    assert_eq!(d["severity"], 1);
    assert!(d["codeDescription"]["href"].as_str().unwrap().ends_with("#al101-per-node-cluster-watch"));
    assert!(d["message"].as_str().unwrap().contains("may WATCH pods across the whole cluster"));
    let related = d["relatedInformation"].as_array().unwrap();
    let role_uri = file_uri(&root.join(ROLE));
    let messages: Vec<(&str, u64)> = related
        .iter()
        .map(|r| {
            assert_eq!(r["location"]["uri"], role_uri);
            (r["message"].as_str().unwrap(), r["location"]["range"]["start"]["line"].as_u64().unwrap())
        })
        .collect();
    assert!(
        messages.contains(&("ClusterRoleBinding node-agent binds it to ClusterRole node-agent", 20)),
        "{messages:?}"
    );
    assert!(messages.contains(&("ClusterRole node-agent grants get, watch on pods", 9)), "{messages:?}");
    // The ClusterRole's own file has no findings: nothing is published for it.
    assert!(!c.seen.iter().any(|m| m["params"]["uri"] == role_uri));
    assert!(c.shutdown().success());
}

#[test]
fn unsaved_edits_to_a_cluster_role_republish_the_daemonset_in_another_file() {
    let root = workspace("lsp/workspace", "edits");
    let mut c = utf8_client(&root);
    let ds_uri = c.open(&root.join(DS), &read(&root, DS));
    c.diagnostics(&ds_uri, "AL101 on the DaemonSet", |d| codes(d).contains(&"AL101".to_string()));
    let role_text = read(&root, ROLE);
    let role_uri = c.open(&root.join(ROLE), &role_text);
    let without_watch = role_text.replace(r#"verbs: ["get", "watch"]"#, r#"verbs: ["get"]"#);
    assert_ne!(without_watch, role_text);
    c.change(&role_uri, 2, &without_watch);
    let ds = c.diagnostics(&ds_uri, "the DaemonSet's findings to go", |d| d.is_empty());
    assert!(ds.is_empty());
    // Back: the finding returns. Then closing the buffer without saving: the
    // file on disk (with `watch`) is what counts again.
    c.change(&role_uri, 3, &role_text);
    c.diagnostics(&ds_uri, "AL101 back", |d| codes(d).contains(&"AL101".to_string()));
    c.change(&role_uri, 4, &without_watch);
    c.diagnostics(&ds_uri, "the DaemonSet's findings to go", |d| d.is_empty());
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": role_uri}}));
    c.diagnostics(&ds_uri, "AL101 back from the disk", |d| codes(d).contains(&"AL101".to_string()));
    assert!(c.shutdown().success());
}

#[test]
fn hover_shows_the_load_estimate() {
    let root = workspace("lsp/workspace", "hover");
    let mut c = utf8_client(&root);
    let text = read(&root, DS);
    let uri = c.open(&root.join(DS), &text);
    c.diagnostics(&uri, "AL101", |d| codes(d).contains(&"AL101".to_string()));
    let line = text.lines().position(|l| l.contains("kind: DaemonSet")).unwrap();
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 3}}),
    );
    let md = hover["contents"]["value"].as_str().unwrap();
    assert_eq!(hover["contents"]["kind"], "markdown");
    for expected in [
        "**DaemonSet monitoring/node-agent**: 5,000 copies (one per node) at 5,000 nodes",
        "| pods (watch) | cluster | inferred (unscoped) | 5,000 | 5,000 |",
        "Findings: AL101 per-node-cluster-watch (error)",
    ] {
        assert!(md.contains(expected), "{expected:?} not in\n{md}");
    }
    // The hover's range is the workload's name.
    let name_line = text.lines().enumerate().filter(|(_, l)| *l == "  name: node-agent").nth(1).unwrap().0;
    assert_eq!(pos(&hover), (name_line as u64, 8, name_line as u64, 18));
    // Not on a workload (the ServiceAccount): nothing.
    let sa =
        c.request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 4, "character": 2}}));
    assert_eq!(sa, Value::Null);
    assert!(c.shutdown().success());
}

#[test]
fn code_action_exempts_the_workload_with_an_annotation() {
    let root = workspace("lsp/workspace", "actions");
    let mut c = utf8_client(&root);
    let text = read(&root, DS);
    let uri = c.open(&root.join(DS), &text);
    let ds = c.diagnostics(&uri, "AL101", |d| codes(d).contains(&"AL101".to_string()));
    let d = find(&ds, "AL101").clone();
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}}),
    );
    let actions = actions.as_array().unwrap();
    let titles: Vec<&str> = actions.iter().map(|a| a["title"].as_str().unwrap()).collect();
    let exempt = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Exempt DaemonSet monitoring/node-agent from AL101"))
        .unwrap_or_else(|| panic!("{titles:?}"));
    assert_eq!(exempt["kind"], "quickfix");
    assert_eq!(exempt["diagnostics"][0]["code"], "AL101");
    // One exemption per rule: AL401 at the same place gets its own.
    assert!(titles.iter().any(|t| t.starts_with("Exempt DaemonSet monitoring/node-agent from AL401")), "{titles:?}");
    let edits = exempt["edit"]["changes"][&uri].as_array().unwrap();
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    // Inserted above `name:` in the DaemonSet's metadata, with its indentation.
    let name_line = text.lines().enumerate().filter(|(_, l)| *l == "  name: node-agent").nth(1).unwrap().0 as u64;
    assert_eq!(pos(e), (name_line, 0, name_line, 0));
    assert_eq!(
        e["newText"],
        "  annotations:\n    apiload.dev/exempt: \"AL101\"\n    apiload.dev/exempt-reason: \"\"\n"
    );
    // Applied as it is, the reason is missing: the finding stays, and the
    // annotation is reported until the reason is written.
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let as_offered = e["newText"].as_str().unwrap().to_string();
    lines.insert(name_line as usize, &as_offered);
    c.change(&uri, 2, &lines.concat());
    let pending = c.diagnostics(&uri, "AL006 for the missing reason", |d| codes(d).contains(&"AL006".to_string()));
    assert!(codes(&pending).contains(&"AL101".to_string()), "{:?}", codes(&pending));
    // With a reason, it exempts the finding (and only that one).
    let inserted = as_offered.replace("exempt-reason: \"\"", "exempt-reason: \"replaced in Q3\"");
    lines[name_line as usize] = &inserted;
    c.change(&uri, 3, &lines.concat());
    let after = c.diagnostics(&uri, "AL101 exempted", |d| !codes(d).contains(&"AL101".to_string()));
    assert_eq!(codes(&after), ["AL401"]);
    // Now current again: AL101 no longer offered, AL401 still is.
    let d = find(&after, "AL401").clone();
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d], "only": ["quickfix"]}}),
    );
    let titles: Vec<String> = actions.as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap().into()).collect();
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert!(titles[0].contains("AL401"));
    let e = &actions[0]["edit"]["changes"][&uri][0];
    assert_eq!(e["newText"], "\"AL101,AL401\"");
    // Other kinds asked for: none.
    let none = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [], "only": ["refactor"]}}),
    );
    assert_eq!(none, json!([]));
    assert!(c.shutdown().success());
}

#[test]
fn broken_documents_yield_a_diagnostic_at_the_syntax_error() {
    let root = workspace("lsp/workspace", "broken");
    let mut c = utf8_client(&root);
    // (file, text, where the error is: line and character)
    type Case = (&'static str, String, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        ("unclosed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a, b\n".into(), Some((4, 0))),
        ("tabs.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n".into(), Some((3, 1))),
        ("template.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n".into(), None),
        ("deep.yaml", format!("apiVersion: v1\nkind: X\nmetadata: {}\n", "[".repeat(100_000)), None),
        ("duplicate.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n".into(), Some((4, 2))),
        ("nul.yaml", "apiVersion: v1\nkind: ConfigMap\u{0}\n".into(), None),
        ("empty.yaml", "".into(), None),
        ("only-separators.yaml", "---\n---\n...\n".into(), None),
        ("bad-type.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: \"three\"\n  template: {spec: {containers: [{name: a, image: b}]}}\n".into(), Some((4, 12))),
    ];
    for (name, text, at) in &cases {
        let uri = c.open(&root.join(name), text);
        let expect_error = !text.is_empty() && !name.starts_with("only-");
        let ds = c.diagnostics(&uri, &format!("diagnostics of {name}"), |_| true);
        if expect_error {
            let d = find(&ds, "AL001");
            assert_eq!(d["severity"], 1, "{name}");
            if let Some((line, character)) = at {
                assert_eq!(d["range"]["start"]["line"], *line, "{name}: {d}");
                assert_eq!(d["range"]["start"]["character"], *character, "{name}: {d}");
            }
        } else {
            assert!(ds.is_empty(), "{name}: {ds:#?}");
        }
    }
    // A buffer that is not a file, and a change that breaks a good document.
    let untitled = "untitled:Untitled-1";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": untitled, "languageId": "yaml", "version": 1, "text": "kind: [\n"}}),
    );
    let ds = c.diagnostics(untitled, "the untitled buffer's error", |d| !d.is_empty());
    assert_eq!(codes(&ds), ["AL001"]);
    let ds_uri = c.open(&root.join(DS), &read(&root, DS));
    c.diagnostics(&ds_uri, "AL101", |d| codes(d).contains(&"AL101".to_string()));
    c.change(&ds_uri, 2, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x\n");
    let ds = c.diagnostics(&ds_uri, "the syntax error", |d| codes(d) == ["AL001"]);
    assert_eq!(ds[0]["range"]["start"]["line"], 3);
    // Still serving.
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": ds_uri}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(hover, Value::Null);
    // Parameters of the wrong shape: an error response, not a crash.
    let id = c.send_request("textDocument/hover", json!({"textDocument": 7}));
    let r = c.wait("the error", WAIT, |m| m["id"] == id);
    assert_eq!(r["error"]["code"], -32602);
    assert!(c.shutdown().success());
}

#[test]
fn requests_are_answered_in_order() {
    let root = workspace("lsp/workspace", "order");
    let mut c = utf8_client(&root);
    let text = read(&root, DS);
    let uri = c.open(&root.join(DS), &text);
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..60 {
        // Edits in between: analyses run while requests keep being answered.
        if i % 10 == 0 {
            c.change(&uri, 2 + i, &text.replace("node-agent:1.0", &format!("node-agent:1.{i}")));
        }
        let params = json!({"textDocument": {"uri": uri}, "position": {"line": 20, "character": 90}});
        ids.push(match i % 3 {
            0 => c.send_request("textDocument/hover", params),
            1 => c.send_request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 30, "character": 0}}, "context": {"diagnostics": []}}),
            ),
            _ => {
                let id = c.send_request("apiload/unknown", json!({}));
                unknown.push(id);
                id
            }
        });
    }
    let mut answered = Vec::new();
    while answered.len() < ids.len() {
        let r = c.wait("responses", WAIT, |m| m.get("id").is_some() && m.get("method").is_none());
        let id = r["id"].as_i64().unwrap();
        answered.push(id);
        assert_eq!(unknown.contains(&id), r.get("error").is_some(), "{r}");
    }
    assert_eq!(answered, ids);
    assert!(c.shutdown().success());
}

#[test]
fn the_configuration_file_is_respected_and_checked() {
    let root = workspace("lsp/workspace", "config");
    std::fs::write(root.join(".apiload.yaml"), "cluster:\n  nodes: 300\nrules:\n  AL401: off\n").unwrap();
    let mut c = utf8_client(&root);
    let text = read(&root, DS);
    let uri = c.open(&root.join(DS), &text);
    let ds = c.diagnostics(&uri, "AL101 at 300 nodes", |d| codes(d).contains(&"AL101".to_string()));
    assert_eq!(codes(&ds), ["AL101"], "AL401 is off");
    assert!(find(&ds, "AL101")["message"].as_str().unwrap().contains("at 300 nodes"));
    // Edited in the editor: unsaved configuration counts too.
    let config = root.join(".apiload.yaml");
    let config_uri = c.open(&config, "rules:\n  per-node-cluster-watch: warning\n");
    let ds =
        c.diagnostics(&uri, "AL101 as a warning", |d| d.iter().any(|x| x["code"] == "AL101" && x["severity"] == 2));
    assert_eq!(codes(&ds), ["AL101", "AL401"]);
    // A broken configuration: a diagnostic in it, the defaults meanwhile.
    c.change(&config_uri, 2, "rules:\n  AL999: off\n");
    let errors = c.diagnostics(&config_uri, "the configuration error", |d| !d.is_empty());
    assert_eq!(pos(&errors[0]), (1, 2, 1, 7));
    assert!(errors[0]["message"].as_str().unwrap().contains("no rule `AL999`"));
    c.diagnostics(&uri, "the defaults", |d| d.iter().any(|x| x["code"] == "AL101" && x["severity"] == 1));
    c.change(&config_uri, 3, "rules: {}\n");
    c.diagnostics(&config_uri, "the error to go", |d| d.is_empty());
    assert!(c.shutdown().success());
}

#[test]
fn files_changed_on_disk_are_read_again() {
    // An editor that watches files: the server registers its watchers.
    let root = workspace("lsp/workspace", "watched");
    let mut c =
        Client::start(Some(&root), json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}));
    let reg = c.wait("the watcher registration", WAIT, |m| m["method"] == "client/registerCapability");
    assert_eq!(reg["params"]["registrations"][0]["method"], "workspace/didChangeWatchedFiles");
    let ds_uri = file_uri(&root.join(DS));
    c.diagnostics(&ds_uri, "AL101 from the workspace scan", |d| codes(d).contains(&"AL101".to_string()));
    let role = root.join(ROLE);
    let original = read(&root, ROLE);
    std::fs::write(&role, original.replace(r#"["get", "watch"]"#, r#"["get"]"#)).unwrap();
    c.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": file_uri(&role), "type": 2}]}));
    c.diagnostics(&ds_uri, "AL101 to go", |d| d.is_empty());
    std::fs::write(&role, &original).unwrap();
    c.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": file_uri(&role), "type": 2}]}));
    c.diagnostics(&ds_uri, "AL101 back", |d| codes(d).contains(&"AL101".to_string()));
    std::fs::remove_file(root.join(DS)).unwrap();
    c.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": ds_uri, "type": 3}]}));
    c.diagnostics(&ds_uri, "the deleted file's findings to go", |d| d.is_empty());
    assert!(c.shutdown().success());

    // An editor that does not: the server polls.
    let root = workspace("lsp/workspace", "polled");
    let mut c = Client::start(Some(&root), json!({}));
    let ds_uri = file_uri(&root.join(DS));
    c.diagnostics(&ds_uri, "AL101 from the workspace scan", |d| codes(d).contains(&"AL101".to_string()));
    let role = root.join(ROLE);
    std::fs::write(&role, read(&root, ROLE).replace(r#"["get", "watch"]"#, r#"["get"]"#)).unwrap();
    c.diagnostics(&ds_uri, "AL101 to go after a poll", |d| d.is_empty());
    std::fs::write(root.join("agents/extra.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [\n").unwrap();
    c.diagnostics(&file_uri(&root.join("agents/extra.yaml")), "a new file's error", |d| codes(d) == ["AL001"]);
    std::fs::remove_file(root.join("agents/extra.yaml")).unwrap();
    c.diagnostics(&file_uri(&root.join("agents/extra.yaml")), "a deleted file's error to go", |d| d.is_empty());
    assert!(c.shutdown().success());
}

#[test]
fn exit_without_shutdown_is_an_error_status() {
    let mut c = Client::start(None, json!({}));
    c.notify("exit", Value::Null);
    assert_eq!(c.wait_exit().code(), Some(1));
}
