//! ferroflowd: the switch (control plane, gRPC server, metrics, store). The
//! API definitions and client (`ferroflow-api`) and the host checks
//! (`ferroflow-doctor`) are crates of their own, shared with `ferroflowctl`,
//! which builds without DPDK.

pub mod api;
pub mod cli;
pub mod datapath_conv;
pub mod geneve_tlv;
/// The host and configuration checks (`ferroflow-doctor`, shared with ferroflowctl).
pub use ferroflow_doctor as doctor;
pub mod metrics;
pub mod ofswitch;
pub mod profile;
pub mod stats;
pub mod store;
pub mod switch;
pub mod tunnel_ports;
pub mod tunnels;

/// The version, with the git commit it was built from when known (one
/// definition, in `ferroflow-api`, shared with ferroflowctl).
pub use ferroflow_api::VERSION;
