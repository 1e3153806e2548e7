//! The datapath: ports made from devargs, and one run-to-completion worker per
//! lcore that polls its rx queues, forwards each burst and sends per port in
//! batches.
//!
//! Each packet goes through the current version of the OpenFlow pipeline
//! (the `pipeline` crate), loaded once per burst.
//!
//! Workers share nothing they write per packet: each owns its rx queues, one tx
//! queue on every port, and its own counters, which the control plane sums.

mod counters;
mod datapath;
mod pkt;
mod ports;
mod socket;
mod worker;

pub use counters::{PortCounters, PortReport, WorkerCounters, WorkerReport};
pub use datapath::{policy, Datapath, DatapathError, PortStatus, SendError};
pub use pkt::Pkt;
pub use ports::PortIndex;
