//! What every front end that reads the user's files shares with `apiload`:
//! finding and loading manifests, and reading the configuration (`.apiload.yaml`,
//! cluster profile, agent profiles, exemptions), so that one configuration
//! means the same in CI, in the editor and in the admission webhook.

pub mod audit_log;
pub mod load;
pub mod lsp_framing;
pub mod setup;
