//! The protocol loop: the handshake, then every message in order. Requests
//! are answered here, at once, from the last analysis; changes go to the
//! store and wake the analysis thread; the disk is read by the disk thread.

use super::convert::{self, Encoding};
use super::disk::{self, Job};
use super::publish::Out;
use super::schedule::{Wake, Worker};
use super::store::{Shared, Store};
use super::{actions, hover, uri};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, DidChangeWatchedFilesRegistrationOptions,
    FileChangeType, FileSystemWatcher, GlobPattern, HoverProviderCapability, InitializeResult, Registration,
    RegistrationParams, SaveOptions, ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextDocumentSyncOptions, TextDocumentSyncSaveOptions, WorkspaceFoldersServerCapabilities,
    WorkspaceServerCapabilities, notification, request,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How often folders are compared with what was read, for editors that do not watch files.
const POLL: Duration = Duration::from_secs(2);

pub fn run() -> ExitCode {
    let (connection, io_threads) = match super::stdio::connection() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("apiload lsp: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match serve(&connection) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("apiload lsp: {e}");
            ExitCode::from(1)
        }
    };
    drop(connection);
    if let Err(e) = io_threads.join() {
        eprintln!("apiload lsp: {e}");
    }
    code
}

/// What the handshake established.
struct Session {
    enc: Encoding,
    roots: Vec<PathBuf>,
    /// The client registers file watchers for the server.
    watches: bool,
}

fn initialize(connection: &Connection) -> Result<Session, String> {
    let (id, params) = connection.initialize_start().map_err(|e| e.to_string())?;
    let caps = params.get("capabilities").cloned().unwrap_or(Value::Null);
    let (enc, via_offset_encoding) = convert::negotiate(&caps);
    let watches =
        caps.pointer("/workspace/didChangeWatchedFiles/dynamicRegistration").and_then(Value::as_bool) == Some(true);
    let mut roots: Vec<PathBuf> = params
        .get("workspaceFolders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| uri::to_path(f.get("uri")?.as_str()?))
        .collect();
    if roots.is_empty() {
        let root_uri = params.get("rootUri").and_then(Value::as_str).and_then(uri::to_path);
        let root_path = params.get("rootPath").and_then(Value::as_str).map(PathBuf::from);
        roots.extend(root_uri.or(root_path));
    }
    let capabilities = ServerCapabilities {
        position_encoding: Some(enc.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::FULL),
            save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
            ..TextDocumentSyncOptions::default()
        })),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(lsp_types::OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..ServerCapabilities::default()
    };
    let result = InitializeResult {
        capabilities,
        server_info: Some(ServerInfo { name: "apiload".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
    };
    let mut result = serde_json::to_value(result).map_err(|e| e.to_string())?;
    if via_offset_encoding && let Some(map) = result.as_object_mut() {
        // clangd's extension, answered the way it was asked.
        map.insert("offsetEncoding".into(), enc.name().into());
    }
    connection.initialize_finish(id, result).map_err(|e| e.to_string())?;
    Ok(Session { enc, roots, watches })
}

/// Serves until `exit`; `Ok(true)` when `shutdown` came first.
fn serve(connection: &Connection) -> Result<bool, String> {
    let session = initialize(connection)?;
    let mut store = Store::with_roots(session.roots.clone());
    let config =
        session.roots.first().map(|r| crate::setup::discover_from(r).unwrap_or(r.join(crate::setup::CONFIG_FILE)));
    store.set_config_path(config);
    store.scanning = session.roots.len();
    let shared = Arc::new(Shared::new(store));

    let sender = connection.sender.clone();
    let out: Out = Arc::new(move |m| sender.send(m).is_ok());
    let (wake, woken) = mpsc::channel();
    let worker = Worker::new(shared.clone(), out.clone(), session.enc);
    let analysis = std::thread::Builder::new()
        .name("apiload-analysis".into())
        .spawn(move || worker.run(woken))
        .map_err(|e| e.to_string())?;
    let (jobs, queued) = mpsc::channel();
    let disk = disk::spawn(shared.clone(), wake.clone(), queued, (!session.watches).then_some(POLL))
        .map_err(|e| e.to_string())?;
    if !session.roots.is_empty() {
        let _ = jobs.send(Job::Scan(session.roots.clone()));
    }
    if session.watches {
        register_watchers(&out);
    }
    let _ = wake.send(Wake::Changed);

    let mut server = Server { shared: shared.clone(), enc: session.enc, wake: wake.clone(), jobs: jobs.clone() };
    let mut shutdown = false;
    let mut clean_exit = false;
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                let response = if shutdown {
                    Response::new_err(req.id, ErrorCode::InvalidRequest as i32, "the server is shutting down".into())
                } else if req.method == request::Shutdown::METHOD {
                    shutdown = true;
                    Response::new_ok(req.id, ())
                } else {
                    server.request(req)
                };
                if !out(Message::Response(response)) {
                    break;
                }
            }
            Message::Notification(n) if n.method == notification::Exit::METHOD => {
                clean_exit = shutdown;
                break;
            }
            Message::Notification(n) => server.notification(n),
            Message::Response(_) => {} // to `client/registerCapability`
        }
    }
    shared.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = wake.send(Wake::Stop);
    let _ = jobs.send(Job::Stop);
    drop(server);
    let _ = analysis.join();
    // The disk thread may be inside a long scan: it stops at its next file.
    let _ = disk.join();
    Ok(clean_exit)
}

/// Asks the client to report changes of manifests and of the configuration.
fn register_watchers(out: &Out) {
    let watchers = ["**/*.yaml", "**/*.yml", "**/*.json"]
        .into_iter()
        .map(|g| FileSystemWatcher { glob_pattern: GlobPattern::String(g.into()), kind: None })
        .collect();
    let options = DidChangeWatchedFilesRegistrationOptions { watchers };
    let params = RegistrationParams {
        registrations: vec![Registration {
            id: "apiload-watch".into(),
            method: notification::DidChangeWatchedFiles::METHOD.into(),
            register_options: serde_json::to_value(options).ok(),
        }],
    };
    out(Message::Request(Request::new(
        "apiload/register-watchers".to_string().into(),
        request::RegisterCapability::METHOD.into(),
        params,
    )));
}

struct Server {
    shared: Arc<Shared>,
    enc: Encoding,
    wake: mpsc::Sender<Wake>,
    jobs: mpsc::Sender<Job>,
}

/// A request's parameters, or the response that says they are wrong.
fn params<P: serde::de::DeserializeOwned>(req: &Request) -> Result<P, Response> {
    serde_json::from_value(req.params.clone()).map_err(|e| {
        Response::new_err(req.id.clone(), ErrorCode::InvalidParams as i32, format!("invalid parameters: {e}"))
    })
}

impl Server {
    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        // A bug must not take the editor's server down: answer with an error instead.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dispatch(&req))) {
            Ok(r) => r,
            Err(_) => Response::new_err(id, ErrorCode::InternalError as i32, "internal error; please report it".into()),
        }
    }

    fn dispatch(&mut self, req: &Request) -> Response {
        match req.method.as_str() {
            request::HoverRequest::METHOD => {
                let p: lsp_types::HoverParams = match params(req) {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                let doc = p.text_document_position_params;
                let result = self
                    .current_snapshot(doc.text_document.uri.as_str())
                    .and_then(|(snap, slot)| hover::hover(&snap, slot, doc.position));
                Response::new_ok(req.id.clone(), result)
            }
            request::CodeActionRequest::METHOD => {
                let p: lsp_types::CodeActionParams = match params(req) {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                let actions = match self.current_snapshot(p.text_document.uri.as_str()) {
                    Some((snap, slot)) => {
                        let store = self.shared.store();
                        let current = |i: usize| match (store.files.get(i).and_then(|f| f.text()), snap.files.get(i)) {
                            (Some(now), Some(then)) => then.text.as_ref().is_some_and(|t| Arc::ptr_eq(t, now)),
                            _ => false,
                        };
                        actions::code_actions(&snap, slot, p.range, p.context.only.as_deref(), &current)
                    }
                    None => Vec::new(),
                };
                Response::new_ok(req.id.clone(), actions)
            }
            _ => Response::new_err(
                req.id.clone(),
                ErrorCode::MethodNotFound as i32,
                format!("unknown method {}", req.method),
            ),
        }
    }

    /// The last analysis and the slot of a document in it.
    fn current_snapshot(&self, u: &str) -> Option<(Arc<super::snapshot::Snapshot>, usize)> {
        let slot = self.shared.store().slot_of_uri(u)?;
        let snap = self.shared.snapshot()?;
        (slot < snap.files.len()).then_some((snap, slot))
    }

    fn notification(&mut self, n: Notification) {
        fn get<P: serde::de::DeserializeOwned>(n: Notification) -> Option<P> {
            serde_json::from_value(n.params).ok()
        }
        let changed = match n.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                get::<lsp_types::DidOpenTextDocumentParams>(n).is_some_and(|p| {
                    let d = p.text_document;
                    self.shared.store().open(d.uri.as_str(), &d.language_id, d.version, d.text);
                    true
                })
            }
            notification::DidChangeTextDocument::METHOD => get::<lsp_types::DidChangeTextDocumentParams>(n)
                .is_some_and(|p| {
                    let d = p.text_document;
                    self.shared.store().change(d.uri.as_str(), d.version, p.content_changes, self.enc)
                }),
            notification::DidCloseTextDocument::METHOD => {
                if let Some(p) = get::<lsp_types::DidCloseTextDocumentParams>(n) {
                    let path = self.shared.store().close(p.text_document.uri.as_str());
                    // The file may have been saved since it was read.
                    if let Some(path) = path {
                        let _ = self.jobs.send(Job::Refresh(vec![path]));
                    }
                }
                true
            }
            notification::DidSaveTextDocument::METHOD => {
                if let Some(path) = get::<lsp_types::DidSaveTextDocumentParams>(n)
                    .and_then(|p| uri::to_path(p.text_document.uri.as_str()))
                {
                    let _ = self.jobs.send(Job::Refresh(vec![path]));
                }
                false
            }
            notification::DidChangeWatchedFiles::METHOD => {
                if let Some(p) = get::<lsp_types::DidChangeWatchedFilesParams>(n) {
                    let paths: Vec<PathBuf> = p
                        .changes
                        .iter()
                        .filter(|c| {
                            matches!(c.typ, FileChangeType::CREATED | FileChangeType::CHANGED | FileChangeType::DELETED)
                        })
                        .filter_map(|c| uri::to_path(c.uri.as_str()))
                        .collect();
                    if !paths.is_empty() {
                        let _ = self.jobs.send(Job::Refresh(paths));
                    }
                }
                false
            }
            notification::DidChangeWorkspaceFolders::METHOD => {
                if let Some(p) = get::<lsp_types::DidChangeWorkspaceFoldersParams>(n) {
                    self.change_folders(p.event);
                }
                true
            }
            _ => false, // $/cancelRequest, $/setTrace, didChangeConfiguration, …
        };
        if changed {
            let _ = self.wake.send(Wake::Changed);
        }
    }

    fn change_folders(&mut self, event: lsp_types::WorkspaceFoldersChangeEvent) {
        let added: Vec<PathBuf> = event.added.iter().filter_map(|f| uri::to_path(f.uri.as_str())).collect();
        let mut store = self.shared.store();
        for f in &event.removed {
            if let Some(root) = uri::to_path(f.uri.as_str()) {
                store.roots.retain(|r| *r != root);
                store.forget_under(&root);
            }
        }
        let new: Vec<PathBuf> = added.into_iter().filter(|r| !store.roots.contains(r)).collect();
        if store.config_path.is_none()
            && let Some(first) = new.first()
        {
            let config = crate::setup::discover_from(first).unwrap_or(first.join(crate::setup::CONFIG_FILE));
            store.set_config_path(Some(config));
        }
        store.roots.extend(new.iter().cloned());
        store.scanning += new.len();
        drop(store);
        if !new.is_empty() {
            let _ = self.jobs.send(Job::Scan(new));
        }
    }
}
