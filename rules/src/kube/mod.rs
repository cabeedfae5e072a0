//! Facts about the Kubernetes API itself.

pub mod resources;
