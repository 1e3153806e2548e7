//! The datapath: ports made from devargs, and one run-to-completion worker per
//! lcore that polls its rx queues, forwards each burst and sends per port in
//! batches.
//!
//! Each packet goes through the current version of the OpenFlow pipeline
//! (the `pipeline` crate), loaded once per burst.
//!
//! Workers share nothing they write per packet: each owns its rx queues, one tx
//! queue on every port, and its own counters, which the control plane sums.
//!
//! Every wait on a worker is bounded: workers acknowledge pipeline versions and port
//! changes by epochs ([`WorkerHealth`]); a port change a worker does not acknowledge in time
//! is undone and fails; a port is closed only after every worker let it go, and the close
//! (which can block in DPDK) runs off the caller's locks ([`PortCloser`]).

pub mod capture;
mod closer;
mod counters;
mod ct_ops;
mod datapath;
pub mod handoff;
mod health;
mod pkt;
mod ports;
pub mod rebalance;
mod socket;
mod spec;
mod tunnel;
mod worker;

pub use closer::{Closable, DetachedPort, PortCloser};
pub use counters::{
    PortCounters, PortReport, QueueCounters, RxQueueReport, WorkerCounters, WorkerReport,
    BURST_BUCKETS, BURST_BUCKET_BOUNDS,
};
pub use ct_ops::{ConntrackOp, ConntrackReply, PendingConntrack, MAX_DUMP_ENTRIES};
pub use datapath::{
    Datapath, DatapathError, DriverStats, PortStatus, SendError, StopReport, MAX_PORTS,
};
pub use health::{Stuck, StuckWorker, WorkerHealth};
pub use packet::tunnel::TunnelKind;
pub use pkt::Pkt;
pub use ports::PortIndex;
pub use rebalance::{QueueLoad, QueueMove, RebalancePlan};
pub use spec::{DatapathSettings, PortSpec, SocketAccess};
pub use tunnel::{
    in_prefix, GeneveOption, GeneveOptionMap, NeighbourStatus, TunnelSpec, TunnelStatus,
    UnderlaySettings, UnderlayStatus, FLOW_HOPS, REMOTE_FROM_FLOW,
};
