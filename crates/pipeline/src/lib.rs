//! Ferroflow's OpenFlow 1.3 pipeline: flow tables with flow-mod semantics, their
//! compilation into per-table lookup structures, groups, meters, and the multi-table walk
//! workers run on every packet. It has no wire types: the `ofproto` crate converts
//! OpenFlow messages into the requests here ([`FlowModReq`], [`GroupModReq`],
//! [`MeterModReq`]) and results back into messages.
//!
//! The control plane owns a [`FlowTables`]; it applies flow-mods, group-mods, meter-mods
//! and port changes (several at once through a [`Transaction`]: all or nothing), then
//! [`FlowTables::publish`]es a new immutable [`Pipeline`] version with one atomic pointer
//! swap, and frees replaced versions itself ([`FlowTables::reclaim`]). Workers load the current version once per burst through a
//! [`PipelineHandle`] and call [`Pipeline::process`] per packet with their own
//! [`WorkerContext`] and a [`Sink`] that sends outputs. See the crate README for the design.

#![forbid(unsafe_code)]

pub mod conjunction;
pub mod counters;
pub mod error;
pub mod exec;
mod flags;
pub mod flow;
pub mod group;
pub mod lookup;
pub mod meter;
pub mod normal;
pub mod packet_in;
pub mod pipeline;
pub mod plan;
pub mod port;
pub mod ports;
pub mod table;
pub mod trace;
pub mod transaction;

pub use error::{MatchFieldError, PipelineError};
pub use exec::{BurstAnswer, BurstCounts, Emit, Sink, Verdict, BURST_OUTPUTS};
pub use flow::{
    Action, ActionSet, FlowEntry, FlowFlags, Instructions, Match, MatchField, WriteActions,
};
pub use group::{Bucket, GroupCounts, GroupModCommand, GroupModReq, GroupType};
pub use lookup::Strategy;
pub use meter::{MeterCounts, MeterFlags, MeterModCommand, MeterModReq};
pub use packet_in::{
    PacketInDrops, PacketInLimiter, PacketInQueue, PacketInReason, PacketInRecord,
};
pub use pipeline::{
    FlowCounts, FlowModCommand, FlowModReq, FlowTables, Pipeline, PipelineConfig, PipelineHandle,
    TableCounts, WorkerContext, OFPTT_ALL,
};
pub use port::{FloodList, NormalPort, PortConfig, PortInfo, PortSet};
pub use table::{CompiledTable, Level, MissPolicy, RemovedFlow, RemovedReason};
pub use trace::{DropReason, Trace, TraceHit, TraceOutput, TraceStep};
pub use transaction::{Committed, Transaction};
