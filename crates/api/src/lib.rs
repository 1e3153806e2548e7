//! Ferroflow's gRPC management API (`proto/ferroflow/v1`) as both ends use it:
//! the generated messages and services ([`pb`]) and the client's connection
//! ([`client`]). It links no DPDK, so that `ferroflowctl` builds and runs on a
//! machine without it; ferroflowd's server side lives in the `ferroflow` crate.

pub mod client;

/// The generated messages and services.
pub mod pb {
    tonic::include_proto!("ferroflow.v1");
}

/// The version of Ferroflow's binaries, with the git commit they were built
/// from when known (`git describe`, recorded by build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FERROFLOW_GIT"), ")");
