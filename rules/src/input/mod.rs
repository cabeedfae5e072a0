//! The findings made while reading input, before any analysis: documents
//! that are not valid objects (AL001) and objects defined twice (AL002).
//! (AL009, namespaces inferred for objects that name none, reads the
//! objects themselves: `crate::inferred_namespace`.)
//! They are raised by `object`, `rbac` and `inventory` as they read, so they
//! live below those layers; the registry in `crate::rules` lists them with
//! the others.

pub mod duplicate_object;
pub mod invalid_manifest;

pub use duplicate_object::diagnostic as duplicate;
pub use invalid_manifest::diagnostic as invalid;
