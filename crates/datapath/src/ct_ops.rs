//! Connection-tracking operations from the control plane. Each worker owns its tracker
//! (no lock on the packet path), so a dump, flush or stats request travels as a command
//! through the worker's queue, is answered between two bursts, and the reply comes back on
//! a channel the control plane waits on with a deadline: a stalled worker gives a clear
//! error, never a hang.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use conntrack::{ConnInfo, Stats, ZoneStats};

use crate::DatapathError;

/// Connections one dump returns at most per worker: bounds the time a worker spends away
/// from its queues and the reply's size.
pub const MAX_DUMP_ENTRIES: usize = 10_000;

/// What the control plane asks every worker's tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConntrackOp {
    /// Up to `limit` connections (capped at [`MAX_DUMP_ENTRIES`]) of `zone` (all zones
    /// when `None`), with the number there are.
    Dump { zone: Option<u16>, limit: usize },
    /// Removes every connection of `zone` (all when `None`).
    Flush { zone: Option<u16> },
    /// Totals and per-zone counters.
    Stats,
}

/// One worker's answer.
#[derive(Debug, Clone, Default)]
pub struct ConntrackReply {
    /// The lcore of the worker that answered.
    pub lcore: u32,
    /// False when the worker has no tracker (connection tracking off).
    pub enabled: bool,
    /// `Dump`: the connections returned (at most the limit).
    pub connections: Vec<ConnInfo>,
    /// `Dump`: the connections matching (may exceed `connections.len()`).
    pub matching: usize,
    /// `Flush`: the connections removed.
    pub flushed: usize,
    /// `Stats`: the totals of this worker.
    pub stats: Stats,
    /// `Stats`: per zone.
    pub zones: Vec<ZoneStats>,
}

/// A request the worker answers between bursts.
pub(crate) struct ConntrackRequest {
    pub op: ConntrackOp,
    pub reply: SyncSender<ConntrackReply>,
}

impl std::fmt::Debug for ConntrackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConntrackRequest")
            .field("op", &self.op)
            .finish()
    }
}

/// Answers `op` from a worker's tracker (between bursts).
pub(crate) fn answer(
    tracker: Option<&mut conntrack::Tracker>,
    op: ConntrackOp,
    lcore: u32,
    now_ms: u64,
) -> ConntrackReply {
    let mut r = ConntrackReply {
        lcore,
        ..ConntrackReply::default()
    };
    let Some(t) = tracker else {
        return r;
    };
    r.enabled = true;
    match op {
        ConntrackOp::Dump { zone, limit } => {
            let limit = limit.min(MAX_DUMP_ENTRIES);
            for c in t.connections(zone, now_ms) {
                if r.connections.len() < limit {
                    r.connections.push(c);
                }
                r.matching += 1;
            }
        }
        ConntrackOp::Flush { zone } => r.flushed = t.flush(zone),
        ConntrackOp::Stats => {
            r.stats = t.stats();
            r.zones = t.zone_stats().collect();
        }
    }
    r
}

/// Requests sent to the workers, not yet answered. Waiting needs no access to the
/// [`crate::Datapath`], so the caller releases its locks first.
#[derive(Debug)]
pub struct PendingConntrack {
    pub(crate) replies: Vec<(u32, Receiver<ConntrackReply>)>,
    pub(crate) deadline: Instant,
    pub(crate) started: Instant,
}

impl PendingConntrack {
    /// Every worker's reply, or [`DatapathError::ConntrackTimeout`] naming the first worker
    /// that did not answer by the datapath's `ack_timeout` (its reply is then discarded).
    pub fn wait(self) -> Result<Vec<ConntrackReply>, DatapathError> {
        let mut out = Vec::with_capacity(self.replies.len());
        for (lcore, rx) in self.replies {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) => out.push(r),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(DatapathError::ConntrackTimeout {
                        lcore,
                        waited: self.started.elapsed(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// How long [`PendingConntrack::wait`] may still take at most.
    pub fn bound(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}
