//! Per-worker counters that the control plane can read without locks.
//!
//! Each worker writes only its own array, with a relaxed load and a relaxed store (not a
//! read-modify-write): on x86-64 and AArch64 both are plain moves, so counting costs what a
//! plain `u64` increment costs and no cache line is shared between workers. The control
//! plane reads with relaxed loads and sums. Two threads using the same worker index would
//! lose increments (never memory safety); [`crate::WorkerContext`] makes that hard to do
//! by accident.
//!
//! A block belongs to one compiled object (a table, the group set, the meter set) and is
//! indexed by that object's slots, so a version that shares an unchanged table also shares
//! its counters. When an object is replaced, the control plane folds its counts into the
//! entries it describes (see [`Retired`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Words of padding after each worker's array, so two workers' arrays never share a
/// cache line.
const PAD: usize = 8;

/// `n` counters per worker, every worker's array at a fixed stride in one allocation: an
/// increment is one bounds check and one store, with no load of a per-worker pointer first.
#[derive(Debug)]
pub struct CounterBlock {
    counters: Box<[AtomicU64]>,
    /// `len` plus [`PAD`] words of padding.
    stride: usize,
    len: usize,
}

impl CounterBlock {
    pub fn new(workers: usize, len: usize) -> CounterBlock {
        let stride = len + PAD;
        let counters = (0..workers.max(1) * stride)
            .map(|_| AtomicU64::new(0))
            .collect();
        CounterBlock {
            counters,
            stride,
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn workers(&self) -> usize {
        self.counters.len() / self.stride
    }

    /// Single-writer increment by `worker`; an index past `len` or an unknown worker is
    /// ignored.
    #[inline(always)]
    pub fn add(&self, worker: usize, idx: usize, v: u64) {
        if idx >= self.len {
            return;
        }
        if let Some(c) = self.counters.get(worker * self.stride + idx) {
            c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
        }
    }

    /// [`add`](Self::add) of `a` at `idx` and `b` at `idx + 1` (packets and bytes of one
    /// entry) with one bounds check.
    #[inline(always)]
    pub fn add_pair(&self, worker: usize, idx: usize, a: u64, b: u64) {
        if idx + 1 >= self.len {
            return;
        }
        let at = worker * self.stride + idx;
        if let Some([ca, cb]) = self.counters.get(at..at + 2) {
            ca.store(ca.load(Relaxed).wrapping_add(a), Relaxed);
            cb.store(cb.load(Relaxed).wrapping_add(b), Relaxed);
        }
    }

    /// [`add`](Self::add) for an index the caller knows is below `len` (a table's
    /// [`crate::table::TABLE_MATCHES`], a slot its own classifier returned): one bounds
    /// check fewer on the per-packet path. An index past `len` would miscount within the
    /// worker's own array (its padding, or a later counter), never touch memory outside
    /// the block (a debug build asserts it).
    #[inline(always)]
    pub fn add_known(&self, worker: usize, idx: usize, v: u64) {
        debug_assert!(idx < self.len);
        if let Some(c) = self.counters.get(worker * self.stride + idx) {
            c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
        }
    }

    /// [`add_pair`](Self::add_pair) for an index the caller knows is in range, as
    /// [`add_known`](Self::add_known).
    #[inline(always)]
    pub fn add_pair_known(&self, worker: usize, idx: usize, a: u64, b: u64) {
        debug_assert!(idx + 1 < self.len);
        let at = worker * self.stride + idx;
        if let Some([ca, cb]) = self.counters.get(at..at + 2) {
            ca.store(ca.load(Relaxed).wrapping_add(a), Relaxed);
            cb.store(cb.load(Relaxed).wrapping_add(b), Relaxed);
        }
    }

    /// The sum over workers.
    pub fn sum(&self, idx: usize) -> u64 {
        (0..self.workers())
            .map(|w| self.worker_value(w, idx))
            .fold(0, u64::wrapping_add)
    }

    /// Every counter summed over workers.
    pub fn snapshot(&self) -> Box<[u64]> {
        (0..self.len).map(|i| self.sum(i)).collect()
    }

    /// One worker's value (tests and per-worker metrics).
    pub fn worker_value(&self, worker: usize, idx: usize) -> u64 {
        assert!(idx < self.len, "counter {idx} of {}", self.len);
        self.counters[worker * self.stride + idx].load(Relaxed)
    }
}

/// Anything compiled that carries a counter block.
pub trait Counted {
    fn counters(&self) -> &CounterBlock;
}

/// A compiled object that has been replaced but may still be in use by workers running an
/// older version (cloned only to snapshot the control plane's state for a transaction). `folded` is what has already been added to the entries' totals; the rest
/// (`current - folded`) is added on the next fold, and the object is dropped once no
/// version refers to it any more, at which point its counts are final.
#[derive(Debug)]
pub struct Retired<T> {
    pub obj: Arc<T>,
    pub folded: Box<[u64]>,
}

impl<T> Clone for Retired<T> {
    fn clone(&self) -> Self {
        Retired {
            obj: self.obj.clone(),
            folded: self.folded.clone(),
        }
    }
}

impl<T: Counted> Retired<T> {
    /// Retires `obj`, folding everything it has counted so far through `add(idx, count)`.
    pub fn new(obj: Arc<T>, mut add: impl FnMut(&T, usize, u64)) -> Retired<T> {
        let folded = obj.counters().snapshot();
        for (i, &v) in folded.iter().enumerate() {
            if v != 0 {
                add(&obj, i, v);
            }
        }
        Retired { obj, folded }
    }

    /// Folds what was counted since the last fold. Returns true when no version holds the
    /// object any more (its counts are final and it can be dropped).
    pub fn fold(&mut self, mut add: impl FnMut(&T, usize, u64)) -> bool {
        // Checked before reading: if we are the only holder now, no worker can reach the
        // object again, so the read below is final. Arc::get_mut synchronises with the
        // other holders' drops.
        let last = Arc::get_mut(&mut self.obj).is_some();
        let block = self.obj.counters();
        for i in 0..block.len() {
            let now = block.sum(i);
            let d = now.wrapping_sub(self.folded[i]);
            if d != 0 {
                add(&self.obj, i, d);
                self.folded[i] = now;
            }
        }
        last
    }
}

/// Folds a list of retired objects, keeping those still held by a version.
pub fn fold_all<T: Counted>(list: &mut Vec<Retired<T>>, mut add: impl FnMut(&T, usize, u64)) {
    list.retain_mut(|r| !r.fold(&mut add));
}
