//! `apiload-webhook`: the validating admission webhook on the apiload engine.
//!
//! The API server asks before it stores a workload, a binding, a role, a
//! ServiceAccount or an agent's ConfigMap; the engine's review
//! ([`apiload_rules::review`]) joins the change with the cluster state both
//! ways and says which findings it brings; this crate only moves bytes and
//! state around it: TLS and HTTP ([`server`], [`tls`]), AdmissionReview
//! ([`admission`]), the cluster cache ([`cluster`], [`live`],
//! [`static_state`]), the answer by mode ([`decide`]), metrics, and the
//! scheduled audit that keeps PolicyReports up to date ([`audit`]).

pub mod admission;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod convert;
pub mod decide;
pub mod kinds;
pub mod live;
pub mod metrics;
pub mod pool;
pub mod review;
pub mod serve;
pub mod server;
pub mod static_state;
pub mod tls;

mod run;
pub use run::run;
