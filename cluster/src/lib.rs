//! A live cluster read for apiload's engine, for `apiload audit`; a crate
//! of its own so that another front end (the webhook's scheduled audit) can
//! judge a cluster the same way without depending on the CLI:
//!
//! - `client`: kubeconfig or in-cluster configuration, with one client-side
//!   rate limit (`rate`) in front of every request;
//! - `list`: paged lists from the watch cache, GETs, deadlines, retries;
//! - `snapshot`: what an audit reads, and how (no watch, no Secret);
//! - `pools`: Nodes into the cluster profile's node pools;
//! - `yaml_text`: JSON objects as YAML the engine reads back with spans;
//! - `owner`: who installed an object (Helm, Argo CD, Flux);
//! - `audit`: the engine on a snapshot;
//! - `policyreport`: an audit as `wgpolicyk8s.io/v1alpha2` reports;
//! - `publish`: those reports kept up to date on the server (the webhook's
//!   scheduled audit).
//!
//! Everything here is I/O or presentation; the judgement is the engine's.

pub mod audit;
pub mod client;
pub mod error;
pub mod json;
pub mod list;
pub mod owner;
pub mod policyreport;
pub mod pools;
pub mod publish;
pub mod rate;
pub mod snapshot;
mod x509;
pub mod yaml_text;

pub use error::{ClusterError, ErrorKind};
