//! `apiload lsp`: the findings of `apiload lint` in the editor, as people type.
//!
//! A language server over stdio (lsp-server, lsp-types). The whole workspace
//! is analysed together, as CI analyses it: a ClusterRole edited in one file
//! re-publishes the findings of the DaemonSet it affects in another.
//!
//! - `server`: the protocol loop (handshake, messages in order, requests).
//! - `stdio`: the connection, whose reader answers broken frames and goes on
//!   (the framing itself is `apiload::lsp_framing`).
//! - `store`: the documents: unsaved editor text over files on disk.
//! - `disk`: the thread that reads the disk (scan at start, refreshes, polling).
//! - `schedule`: the analysis thread: coalescing changes, open documents
//!   first, the workspace's settings.
//! - `analysis`: the per-document parse cache and the engine's run.
//! - `incremental`: after an edit, the engine re-run for the workloads it
//!   reaches only, every other finding kept (or a full run, and why).
//! - `publish`: diagnostics converted and published when they changed.
//! - `snapshot`: the last analysis, for requests.
//! - `settings`: the workspace's `.apiload.yaml`.
//! - `convert`: positions in the negotiated encoding, diagnostics.
//! - `hover`, `actions`: load estimates, fixes and exemptions.
//! - `uri`: `file:` URIs and paths.

mod actions;
mod analysis;
mod convert;
mod disk;
mod hover;
mod incremental;
mod publish;
mod schedule;
mod server;
mod settings;
mod snapshot;
mod stdio;
mod store;
mod uri;

pub use server::run;
