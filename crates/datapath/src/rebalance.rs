//! Rx queue placement: which worker polls which queue, chosen from the queues' measured
//! loads, as Open vSwitch's pmd-auto-lb does.
//!
//! A plan is computed on the control plane from the busy cycles each queue cost over a
//! recent interval; it is carried out by moving queues one at a time through the workers'
//! command queues ([`crate::Datapath::move_rx_queue`]), so that a queue is polled by exactly
//! one worker at any time and no packet is read twice or left behind.

use serde::Serialize;

/// One rx queue's load over the measured interval, and where it is polled now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueLoad {
    pub port: String,
    pub queue: u16,
    /// Index of the worker polling it (0-based, in lcore order).
    pub worker: usize,
    /// TSC cycles its worker spent on it over the interval.
    pub busy_cycles: u64,
}

/// A queue to move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueMove {
    pub port: String,
    pub queue: u16,
    pub from_worker: usize,
    pub to_worker: usize,
}

/// What a rebalance would do and what it expects of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebalancePlan {
    pub moves: Vec<QueueMove>,
    /// Per worker, its share of the interval spent on its queues, now and after the moves.
    pub load_before: Vec<f64>,
    pub load_after: Vec<f64>,
    /// Variance of the per-worker loads, now and after the moves.
    pub variance_before: f64,
    pub variance_after: f64,
    /// The measured interval, in TSC cycles.
    pub interval_cycles: u64,
}

impl RebalancePlan {
    /// By how much the moves reduce the variance, in percent of the current variance
    /// (0 when nothing improves or nothing is loaded).
    pub fn improvement_percent(&self) -> f64 {
        if self.variance_before <= 0.0 {
            return 0.0;
        }
        (100.0 * (self.variance_before - self.variance_after) / self.variance_before).max(0.0)
    }
}

fn variance(loads: &[f64]) -> f64 {
    if loads.is_empty() {
        return 0.0;
    }
    let mean = loads.iter().sum::<f64>() / loads.len() as f64;
    loads.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / loads.len() as f64
}

/// Places queues on `workers` workers, heaviest first, each on the least loaded worker
/// (longest processing time first: within 4/3 of the best placement), preferring a
/// queue's current worker on ties so that balanced queues stay where they are. Loads are
/// shares of `interval_cycles` (the interval's length in TSC cycles).
pub fn plan(queues: &[QueueLoad], workers: usize, interval_cycles: u64) -> RebalancePlan {
    let scale = interval_cycles.max(1) as f64;
    let mut load_before = vec![0.0; workers];
    for q in queues {
        if let Some(l) = load_before.get_mut(q.worker) {
            *l += q.busy_cycles as f64 / scale;
        }
    }
    let mut order: Vec<&QueueLoad> = queues.iter().collect();
    // Heaviest first; equal loads in a stable order (port, queue) so plans repeat.
    order.sort_by(|a, b| {
        b.busy_cycles
            .cmp(&a.busy_cycles)
            .then_with(|| a.port.cmp(&b.port))
            .then_with(|| a.queue.cmp(&b.queue))
    });
    let mut load_after = vec![0.0; workers];
    let mut moves = Vec::new();
    for q in order {
        if workers == 0 {
            break;
        }
        let least = load_after.iter().cloned().fold(f64::INFINITY, f64::min);
        // The current worker if it is among the least loaded (or the queue is idle: moving
        // it changes nothing but pauses it), else the first of the least loaded.
        let to = if q.worker < workers && (load_after[q.worker] <= least || q.busy_cycles == 0) {
            q.worker
        } else {
            load_after.iter().position(|l| *l <= least).unwrap_or(0)
        };
        load_after[to] += q.busy_cycles as f64 / scale;
        if to != q.worker {
            moves.push(QueueMove {
                port: q.port.clone(),
                queue: q.queue,
                from_worker: q.worker,
                to_worker: to,
            });
        }
    }
    let variance_before = variance(&load_before);
    let mut variance_after = variance(&load_after);
    if variance_after >= variance_before {
        // No better than now: leave everything where it is.
        moves.clear();
        load_after.clone_from(&load_before);
        variance_after = variance_before;
    }
    RebalancePlan {
        moves,
        load_before,
        load_after,
        variance_before,
        variance_after,
        interval_cycles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(port: &str, worker: usize, busy: u64) -> QueueLoad {
        QueueLoad {
            port: port.into(),
            queue: 0,
            worker,
            busy_cycles: busy,
        }
    }

    #[test]
    fn two_loaded_queues_on_one_worker_are_split() {
        let p = plan(
            &[q("a", 0, 500), q("b", 0, 500), q("c", 1, 0), q("d", 1, 0)],
            2,
            1000,
        );
        assert_eq!(p.moves.len(), 1, "idle queues stay: {p:?}");
        assert_eq!(p.moves[0].to_worker, 1);
        assert_eq!(p.load_before, vec![1.0, 0.0]);
        assert_eq!(p.load_after, vec![0.5, 0.5]);
        assert_eq!(p.improvement_percent(), 100.0);
    }

    #[test]
    fn a_balanced_placement_stays() {
        let p = plan(&[q("a", 0, 500), q("b", 1, 400), q("c", 1, 90)], 2, 1000);
        assert!(p.moves.is_empty(), "{p:?}");
        assert_eq!(p.variance_after, p.variance_before);
    }

    #[test]
    fn one_heavy_queue_cannot_be_split() {
        // Moving the only loaded queue just moves the imbalance: no move.
        let p = plan(&[q("a", 0, 900), q("b", 1, 0)], 2, 1000);
        assert!(p.moves.is_empty(), "{p:?}");
        assert_eq!(p.improvement_percent(), 0.0);
    }

    #[test]
    fn nothing_loaded_nothing_moves() {
        let p = plan(&[q("a", 0, 0), q("b", 0, 0)], 2, 1000);
        assert!(p.moves.is_empty());
        assert_eq!(p.improvement_percent(), 0.0);
    }
}
