//! Tracing one packet through a pipeline version (what `ovs-appctl ofproto/trace` is to
//! Open vSwitch): which tables it visited, the entry each matched, the actions run and the
//! packet's fields after each, group buckets chosen, meters consulted, the outputs or why
//! there were none.
//!
//! A trace runs the datapath's own walk ([`Pipeline::process`]) with a [`Sink`] whose
//! [`Sink::TRACING`] is true, so a trace and forwarding cannot disagree about where a packet
//! goes. With `TRACING` the walk leaves the switch as it found it: no entry, table, group or
//! meter counter moves, meters are consulted without taking tokens from their buckets
//! (worker 0's buckets: a trace says what the next packet on that worker would meet, the
//! other workers' buckets may say otherwise), NORMAL looks MAC addresses up without
//! learning the source (a destination equal to the source is treated as learned, as
//! forwarding would), and packets for the controller are recorded in the trace instead of
//! the packet-in queue, without the per-port packet-in rate limit (a trace reports
//! "to the controller" where the limit might refuse a real packet). Datapaths compile the
//! walk with `TRACING` false: each check is a constant and each observation an empty
//! inlined call, so forwarding pays nothing for this.

use std::sync::Arc;
use std::time::Duration;

use packet::{FlowKey, PacketBuf, VecBuf};

use crate::exec::{Emit, Sink, Verdict};
use crate::flow::Action;
use crate::meter::MeterVerdict;
use crate::packet_in::{PacketInLimiter, PacketInQueue, PacketInReason, PacketInRecord};
use crate::pipeline::{Pipeline, WorkerContext};
use crate::table::{MissPolicy, Rule};

/// Steps a trace keeps at most: the walk is bounded (255 tables, 16 levels of groups, 4096
/// buckets), and this bounds the record too. Steps past it are counted, not kept.
pub const MAX_TRACE_STEPS: usize = 4096;

/// What the walk tells a tracing [`Sink`] as it goes (borrowed from the pipeline version).
#[derive(Debug)]
pub enum Event<'a> {
    /// Table `table` was looked up and `rule` matched.
    Hit { table: u8, rule: &'a Rule },
    /// Before the [`Event::Hit`] a conjunctive match decided: one clause entry of each
    /// dimension that matched ([`crate::conjunction::explain`]).
    Clause { table: u8, rule: &'a Rule },
    /// Table `table` was looked up, nothing matched, and its miss policy applies.
    Miss { table: u8, policy: MissPolicy },
    /// An action ran (a group: is about to run its buckets); `error`: it could not apply
    /// to this packet and was skipped.
    Action { action: &'a Action, error: bool },
    /// Write-metadata: the new metadata.
    Metadata { value: u64 },
    /// Goto-table; `refused` when it does not go forward (the walk ends, as a drop).
    Goto { to: u8, refused: bool },
    /// The walk ended and runs the action set.
    ActionSet,
    /// A group: the buckets chosen (`None`: no such group, or the nesting bound).
    Group {
        id: u32,
        buckets: Option<std::ops::Range<usize>>,
    },
    /// One bucket of the group in progress starts.
    Bucket { group: u32, bucket: usize },
    /// A meter (`None`: no such meter, skipped).
    Meter {
        id: u32,
        verdict: Option<MeterVerdict>,
    },
    /// NORMAL decided: the frame's VLAN, and the port its destination was learned on.
    Normal { vlan: u16, learned: Option<u32> },
    /// A packet for the controller.
    PacketIn(&'a PacketInRecord),
}

/// The entry a table lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHit {
    pub uid: u64,
    pub priority: u16,
    pub cookie: u64,
}

/// One step of a trace, with the packet's key after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceStep {
    /// Table lookup: the entry that matched, or the miss policy that applied.
    Table {
        table: u8,
        hit: Option<TraceHit>,
        miss: Option<MissPolicy>,
    },
    /// A conjunction clause entry that matched, before the [`TraceStep::Table`] whose
    /// entry (usually the `conj_id` one) the conjunction chose.
    Clause {
        table: u8,
        hit: TraceHit,
    },
    /// An action (after [`TraceStep::ActionSet`]: of the action set), with the key after it.
    Action {
        action: Action,
        error: bool,
        key: Box<FlowKey>,
    },
    Metadata {
        value: u64,
    },
    Goto {
        to: u8,
        refused: bool,
    },
    ActionSet,
    Group {
        id: u32,
        buckets: Option<Vec<usize>>,
    },
    Bucket {
        group: u32,
        bucket: usize,
    },
    Meter {
        id: u32,
        verdict: Option<MeterVerdict>,
    },
    Normal {
        vlan: u16,
        learned: Option<u32>,
    },
    PacketIn {
        reason: PacketInReason,
        table: u8,
    },
    Output {
        port: u32,
        queue: Option<u32>,
    },
}

/// One output of the traced packet, as the datapath would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOutput {
    pub port: u32,
    pub queue: Option<u32>,
    pub frame: Vec<u8>,
}

/// Why a traced packet went nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No entry matched in `table` and its miss policy drops (no table-miss entry).
    TableMiss { table: u8 },
    /// The walk ran past the last table (goto-next miss policy in the last table).
    PastLastTable,
    /// A meter band dropped it.
    Meter { id: u32 },
    /// A TTL decrement found TTL 0 or 1 (the packet goes to the controller, if anywhere).
    InvalidTtl,
    /// A goto-table that does not go forward ended the walk.
    GotoGuard { to: u8 },
    /// Some action could not apply (and the others sent it nowhere).
    ActionError,
    /// NORMAL found the destination on the ingress port (and does not send back there).
    NormalToIngress,
    /// The entries matched had no output action (an explicit drop).
    NoOutput,
    /// `resubmit` went deeper than [`crate::exec::MAX_RESUBMIT_DEPTH`] or more often than
    /// [`crate::exec::MAX_RESUBMITS`]: the packet is dropped with whatever it was to send.
    ResubmitLimit,
}

/// What one packet did in one pipeline version.
#[derive(Clone, Debug)]
pub struct Trace {
    pub version: u64,
    pub in_port: u32,
    /// The key of the packet as it arrived.
    pub initial: FlowKey,
    pub steps: Vec<TraceStep>,
    /// Steps past [`MAX_TRACE_STEPS`], not kept.
    pub steps_dropped: u32,
    pub outputs: Vec<TraceOutput>,
    pub packet_ins: Vec<PacketInRecord>,
    pub verdict: Verdict,
    /// The key and bytes of the packet when the walk ended.
    pub final_key: FlowKey,
    pub final_frame: Vec<u8>,
}

impl Trace {
    /// Why nothing came out (`None` when the packet went to some port or the controller).
    pub fn drop_reason(&self) -> Option<DropReason> {
        if self.verdict.resubmit_limit {
            return Some(DropReason::ResubmitLimit);
        }
        if !self.outputs.is_empty() || !self.packet_ins.is_empty() {
            return None;
        }
        if self.verdict.invalid_ttl {
            return Some(DropReason::InvalidTtl);
        }
        for s in self.steps.iter().rev() {
            match *s {
                TraceStep::Meter {
                    id,
                    verdict: Some(MeterVerdict::Drop),
                } => return Some(DropReason::Meter { id }),
                TraceStep::Goto { to, refused: true } => return Some(DropReason::GotoGuard { to }),
                _ => {}
            }
        }
        let last_table = self.steps.iter().rev().find_map(|s| match s {
            TraceStep::Table { table, miss, .. } => Some((*table, *miss)),
            _ => None,
        });
        let to_ingress = self
            .steps
            .iter()
            .any(|s| matches!(s, TraceStep::Normal { learned: Some(p), .. } if *p == self.in_port));
        match last_table {
            Some((table, Some(MissPolicy::Drop))) => Some(DropReason::TableMiss { table }),
            _ if to_ingress => Some(DropReason::NormalToIngress),
            Some((_, Some(MissPolicy::GotoNext))) => Some(DropReason::PastLastTable),
            _ if self.verdict.action_errors > 0 => Some(DropReason::ActionError),
            _ => Some(DropReason::NoOutput),
        }
    }

    /// The uids of the entries matched, with their tables, in order.
    pub fn hits(&self) -> impl Iterator<Item = (u8, &TraceHit)> {
        self.steps.iter().filter_map(|s| match s {
            TraceStep::Table {
                table,
                hit: Some(h),
                ..
            } => Some((*table, h)),
            _ => None,
        })
    }
}

/// The tracing [`Sink`]: records every step and output.
struct Tracer {
    trace: Trace,
}

impl Tracer {
    fn push(&mut self, s: TraceStep) {
        if self.trace.steps.len() < MAX_TRACE_STEPS {
            self.trace.steps.push(s);
        } else {
            self.trace.steps_dropped += 1;
        }
    }
}

impl Sink<VecBuf> for Tracer {
    const TRACING: bool = true;

    fn output(&mut self, port: u32, queue: Option<u32>, pkt: &VecBuf, _emit: Emit) {
        self.push(TraceStep::Output { port, queue });
        self.trace.outputs.push(TraceOutput {
            port,
            queue,
            frame: pkt.data().to_vec(),
        });
    }

    fn clone_packet(&mut self, pkt: &VecBuf) -> Option<VecBuf> {
        Some(pkt.clone())
    }

    fn observe(&mut self, event: Event<'_>, key: &FlowKey, _verdict: &Verdict) {
        let step = match event {
            Event::Hit { table, rule } => TraceStep::Table {
                table,
                hit: Some(TraceHit {
                    uid: rule.uid,
                    priority: rule.priority,
                    cookie: rule.cookie,
                }),
                miss: None,
            },
            Event::Clause { table, rule } => TraceStep::Clause {
                table,
                hit: TraceHit {
                    uid: rule.uid,
                    priority: rule.priority,
                    cookie: rule.cookie,
                },
            },
            Event::Miss { table, policy } => TraceStep::Table {
                table,
                hit: None,
                miss: Some(policy),
            },
            Event::Action { action, error } => TraceStep::Action {
                action: action.clone(),
                error,
                key: Box::new(*key),
            },
            Event::Metadata { value } => TraceStep::Metadata { value },
            Event::Goto { to, refused } => TraceStep::Goto { to, refused },
            Event::ActionSet => TraceStep::ActionSet,
            Event::Group { id, buckets } => TraceStep::Group {
                id,
                buckets: buckets.map(|r| r.collect()),
            },
            Event::Bucket { group, bucket } => TraceStep::Bucket { group, bucket },
            Event::Meter { id, verdict } => TraceStep::Meter { id, verdict },
            Event::Normal { vlan, learned } => TraceStep::Normal { vlan, learned },
            Event::PacketIn(r) => {
                self.trace.packet_ins.push(r.clone());
                TraceStep::PacketIn {
                    reason: r.reason,
                    table: r.table_id,
                }
            }
        };
        self.push(step);
    }
}

impl Pipeline {
    /// Traces `frame` arriving on `in_port` at `now` (the clock meters and MAC ages are read
    /// with), through this version, without side effects (see the module doc).
    pub fn trace(&self, frame: &[u8], in_port: u32, now: Duration) -> Trace {
        let mut key = FlowKey::default();
        packet::extract_into(frame, in_port, &mut key);
        let mut ctx = WorkerContext {
            worker: 0,
            now_ns: 0,
            now_secs: 0,
            // Never pushed to: a tracing walk hands packet-ins to the sink.
            packet_in: Arc::new(PacketInQueue::new(1)),
            packet_in_limit: PacketInLimiter::new(
                0,
                0,
                Arc::new(crate::packet_in::PacketInDrops::new()),
            ),
            // The connection tables belong to the workers: a trace cannot read them
            // without a lock on their path, so `ct` shows as `+trk+inv` here (documented in
            // docs/troubleshooting.md).
            conntrack: None,
            burst_matches: [0; 256],
            burst_misses: [0; 256],
        };
        ctx.set_now(now);
        let mut pkt = VecBuf::new(frame);
        let mut tracer = Tracer {
            trace: Trace {
                version: self.version,
                in_port,
                initial: key,
                steps: Vec::new(),
                steps_dropped: 0,
                outputs: Vec::new(),
                packet_ins: Vec::new(),
                verdict: Verdict::default(),
                final_key: key,
                final_frame: Vec::new(),
            },
        };
        let verdict = self.process(&mut pkt, &mut key, &mut ctx, &mut tracer);
        let mut trace = tracer.trace;
        trace.verdict = verdict;
        trace.final_key = key;
        trace.final_frame = pkt.data().to_vec();
        trace
    }
}
