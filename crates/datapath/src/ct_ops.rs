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
    /// Packets this worker handed to the worker owning their connection, and those it
    /// dropped because that worker's ring was full or their port was gone
    /// ([`crate::handoff`]).
    pub handed_off: u64,
    pub handoff_dropped: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack::{Config, Packet, TrackOptions, Tracker, L4};

    fn tracker_with(conns: &[(u32, u16)]) -> Tracker {
        let mut t = Tracker::new(Config {
            capacity: 64,
            ..Config::default()
        })
        .unwrap();
        for (i, &(src, zone)) in conns.iter().enumerate() {
            let p = Packet {
                v6: false,
                src: u128::from(src),
                dst: 0x0b00_0001,
                proto: 17,
                l4: L4::Udp {
                    sport: 1000 + i as u16,
                    dport: 53,
                },
            };
            let o = TrackOptions {
                zone,
                commit: true,
                ..TrackOptions::default()
            };
            t.track(&p, &o, 0);
        }
        t
    }

    /// A dump returns at most its limit but counts every match; a zone filters it and
    /// the flush; stats carry the zones.
    #[test]
    fn dump_is_bounded_and_counts_the_rest() {
        let mut t = tracker_with(&[(1, 1), (2, 1), (3, 1), (4, 2)]);
        let r = answer(
            Some(&mut t),
            ConntrackOp::Dump {
                zone: Some(1),
                limit: 2,
            },
            7,
            1,
        );
        assert!(r.enabled);
        assert_eq!((r.connections.len(), r.matching, r.lcore), (2, 3, 7));
        assert!(r.connections.iter().all(|c| c.orig.zone == 1));
        let s = answer(Some(&mut t), ConntrackOp::Stats, 7, 1);
        assert_eq!(s.stats.entries, 4);
        let z2 = s.zones.iter().find(|z| z.zone == Some(2)).unwrap();
        assert_eq!((z2.entries, z2.committed), (1, 1));
        let f = answer(Some(&mut t), ConntrackOp::Flush { zone: Some(2) }, 7, 1);
        assert_eq!(f.flushed, 1);
        let all = ConntrackOp::Dump {
            zone: None,
            limit: usize::MAX,
        };
        assert_eq!(answer(Some(&mut t), all, 7, 1).matching, 3);
        assert!(!answer(None, all, 7, 1).enabled);
    }

    /// A worker that never answers (its request still queued, or its reply sender gone)
    /// gives `ConntrackTimeout` naming its lcore once the deadline passes.
    #[test]
    fn a_silent_worker_is_a_timeout_not_a_hang() {
        let (answered_tx, answered_rx) = std::sync::mpsc::sync_channel(1);
        let (_silent_tx, silent_rx) = std::sync::mpsc::sync_channel::<ConntrackReply>(1);
        answered_tx.send(ConntrackReply::default()).unwrap();
        let started = Instant::now();
        let pending = PendingConntrack {
            replies: vec![(1, answered_rx), (3, silent_rx)],
            deadline: started + Duration::from_millis(100),
            started,
        };
        match pending.wait() {
            Err(DatapathError::ConntrackTimeout { lcore: 3, waited }) => {
                assert!(waited >= Duration::from_millis(100));
            }
            other => panic!("expected a timeout of lcore 3, got {other:?}"),
        }
        let (gone_tx, gone_rx) = std::sync::mpsc::sync_channel::<ConntrackReply>(1);
        drop(gone_tx);
        let pending = PendingConntrack {
            replies: vec![(5, gone_rx)],
            deadline: Instant::now() + Duration::from_secs(60),
            started: Instant::now(),
        };
        assert!(matches!(
            pending.wait(),
            Err(DatapathError::ConntrackTimeout { lcore: 5, .. })
        ));
    }
}
