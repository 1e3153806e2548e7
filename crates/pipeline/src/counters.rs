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

/// Pairs of words of padding after each worker's array, so two workers' arrays never
/// share a cache line.
const PAD: usize = 4;

/// `n` counters per worker, every worker's array at a fixed stride in one allocation: an
/// increment is one bounds check and one store, with no load of a per-worker pointer first.
/// Kept as pairs (an entry's packets and bytes, a table's misses and matches), so that a
/// pair's index is checked once, with no test for the end of a range.
#[derive(Debug)]
pub struct CounterBlock {
    counters: Box<[[AtomicU64; 2]]>,
    /// Pairs per worker: `len` rounded up to pairs, plus [`PAD`] pairs of padding.
    stride: usize,
    len: usize,
}

impl CounterBlock {
    pub fn new(workers: usize, len: usize) -> CounterBlock {
        let stride = len.div_ceil(2) + PAD;
        let counters = (0..workers.max(1) * stride)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
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

    /// Counter `idx` of `worker`, if the block has that worker.
    #[inline(always)]
    fn at(&self, worker: usize, idx: usize) -> Option<&AtomicU64> {
        self.counters
            .get(worker * self.stride + idx / 2)
            .map(|p| &p[idx % 2])
    }

    /// Single-writer increment by `worker`; an index past `len` or an unknown worker is
    /// ignored.
    #[inline(always)]
    pub fn add(&self, worker: usize, idx: usize, v: u64) {
        if idx >= self.len {
            return;
        }
        if let Some(c) = self.at(worker, idx) {
            c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
        }
    }

    /// [`add`](Self::add) of `a` at `idx` and `b` at `idx + 1` (packets and bytes of one
    /// entry; `idx` even) with one bounds check.
    #[inline(always)]
    pub fn add_pair(&self, worker: usize, idx: usize, a: u64, b: u64) {
        debug_assert!(idx.is_multiple_of(2));
        if idx + 1 >= self.len {
            return;
        }
        self.add_pair_known(worker, idx, a, b);
    }

    /// [`add`](Self::add) for an index the caller knows is below `len` (a table's
    /// [`crate::table::TABLE_MATCHES`], a slot its own classifier returned): one bounds
    /// check fewer on the per-packet path. An index past `len` would miscount within the
    /// worker's own array (its padding, or a later counter), never touch memory outside
    /// the block (a debug build asserts it).
    #[inline(always)]
    pub fn add_known(&self, worker: usize, idx: usize, v: u64) {
        debug_assert!(idx < self.len);
        if let Some(c) = self.at(worker, idx) {
            c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
        }
    }

    /// [`add_pair`](Self::add_pair) for an index the caller knows is in range, as
    /// [`add_known`](Self::add_known): the pair's one bounds check.
    #[inline(always)]
    pub fn add_pair_known(&self, worker: usize, idx: usize, a: u64, b: u64) {
        debug_assert!(idx.is_multiple_of(2) && idx + 1 < self.len);
        if let Some([ca, cb]) = self.counters.get(worker * self.stride + idx / 2) {
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
        self.counters[worker * self.stride + idx / 2][idx % 2].load(Relaxed)
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

#[cfg(test)]
mod tests {
    use super::CounterBlock;

    /// Every add lands on its own worker's counter and nowhere else, for odd and even
    /// lengths (the pairs' last one half used), as a plain array per worker counts.
    #[test]
    fn adds_land_on_their_counter() {
        for len in [0usize, 1, 2, 3, 8, 9] {
            let workers = 3;
            let block = CounterBlock::new(workers, len);
            let mut want = vec![vec![0u64; len]; workers];
            let mut n = 1u64;
            for (w, want) in want.iter_mut().enumerate() {
                for i in 0..len {
                    block.add(w, i, n);
                    want[i] += n;
                    block.add_known(w, i, n + 1);
                    want[i] += n + 1;
                    if i % 2 == 0 && i + 1 < len {
                        block.add_pair(w, i, n + 2, n + 3);
                        block.add_pair_known(w, i, n + 4, n + 5);
                        want[i] += 2 * n + 6;
                        want[i + 1] += 2 * n + 8;
                    }
                    n += 10;
                }
                // Past the end, or an unknown worker: ignored.
                block.add(w, len, 7);
                block.add_pair(w, len.next_multiple_of(2), 7, 7);
            }
            block.add(workers, 0, 7);
            block.add_pair(workers, 0, 7, 7);
            for i in 0..len {
                for (w, want) in want.iter().enumerate() {
                    assert_eq!(
                        block.worker_value(w, i),
                        want[i],
                        "len {len} worker {w} {i}"
                    );
                }
                let sum = want.iter().map(|v| v[i]).sum::<u64>();
                assert_eq!(block.sum(i), sum);
            }
            assert_eq!(block.snapshot().len(), len);
        }
    }
}
