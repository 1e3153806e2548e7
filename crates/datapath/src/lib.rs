//! The datapath: ports made from devargs, and one run-to-completion worker per
//! lcore that polls its rx queues, forwards each burst and sends per port in
//! batches.
//!
//! Until the OpenFlow pipeline lands, forwarding is the built-in VLAN-aware
//! learning switch (what OpenFlow calls NORMAL, see the `mac-learning` crate).
//!
//! Workers share nothing they write per packet: each owns its rx queues, one tx
//! queue on every port, and its own counters, which the control plane sums.

mod counters;
mod datapath;
mod l2;
mod worker;

pub use counters::{PortCounters, PortReport, WorkerCounters, WorkerReport};
pub use datapath::{Datapath, DatapathError, PortStatus};
