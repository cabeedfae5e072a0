//! Facts about the Kubernetes API itself.

pub mod kinds;
pub mod resources;
