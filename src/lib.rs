//! Shared code of the `ferroflowd` daemon and the `ferroflowctl` CLI.

pub mod api;
pub mod datapath_conv;
pub mod doctor;
pub mod metrics;
pub mod ofswitch;
pub mod profile;
pub mod stats;
pub mod store;
pub mod switch;

/// The version, with the git commit it was built from when known.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FERROFLOW_GIT"), ")");
