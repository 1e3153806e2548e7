//! Live capture: copies of the frames a port receives or sends, taken by the workers and
//! drained off their path by the control plane.
//!
//! A worker pays one relaxed load of the port's flag per burst when nobody captures the
//! port. When somebody does, it copies each frame (up to [`SNAPLEN`] bytes) into a buffer
//! from a preallocated pool and enqueues it on a bounded lock-free queue: no allocation,
//! no lock, no wait. When the pool is empty (the reader is behind) the frame is not copied
//! and `dropped` counts it; the worker never blocks. One capture session at a time
//! ([`CaptureTap::start`]); ending it ([`CaptureSession`]'s drop, whatever ends it: the count
//! reached, the client gone, an error) clears the flags, so that no port keeps paying for a
//! capture nobody reads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use dpdk::Mbuf;

/// Bytes of each frame kept (longer frames are cut; the record keeps their length).
pub const SNAPLEN: usize = 2048;
/// Frames in flight between the workers and the reader.
pub const CAPTURE_BUFFERS: usize = 1024;

/// Capture received frames.
pub const CAPTURE_RX: u8 = 1;
/// Capture frames handed to the port's tx queue.
pub const CAPTURE_TX: u8 = 2;

/// One captured frame.
pub struct CapturedFrame {
    /// The port's slot (see [`crate::PortIndex`]).
    pub slot: usize,
    /// [`CAPTURE_RX`] or [`CAPTURE_TX`].
    pub direction: u8,
    /// The frame's whole length.
    pub orig_len: u32,
    /// Bytes kept: the first `min(orig_len, SNAPLEN)`.
    pub len: u32,
    pub data: Box<[u8; SNAPLEN]>,
}

impl CapturedFrame {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// The per-port flags, the buffer pool and the queue, shared by the workers and the
/// control plane.
pub struct CaptureTap {
    flags: Box<[AtomicU8]>,
    free: ArrayQueue<Box<[u8; SNAPLEN]>>,
    filled: ArrayQueue<CapturedFrame>,
    active: AtomicBool,
    dropped: AtomicU64,
    captured: AtomicU64,
}

impl CaptureTap {
    /// Flags for `ports` slots. The buffers (2 MiB) are allocated on the first capture.
    pub fn new(ports: usize) -> CaptureTap {
        CaptureTap {
            flags: (0..ports).map(|_| AtomicU8::new(0)).collect(),
            free: ArrayQueue::new(CAPTURE_BUFFERS),
            filled: ArrayQueue::new(CAPTURE_BUFFERS),
            active: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            captured: AtomicU64::new(0),
        }
    }

    /// What to capture on `slot`: a mask of [`CAPTURE_RX`] and [`CAPTURE_TX`] (0: nothing).
    #[inline(always)]
    pub fn flags(&self, slot: usize) -> u8 {
        self.flags.get(slot).map_or(0, |f| f.load(Relaxed))
    }

    /// Copies `frames` seen on `slot` going `direction` (by a worker, when
    /// [`flags`](Self::flags) says so).
    #[cold]
    pub fn copy(&self, slot: usize, direction: u8, frames: &[Mbuf]) {
        for m in frames {
            let Some(mut data) = self.free.pop() else {
                self.dropped.fetch_add(1, Relaxed);
                continue;
            };
            let d = m.data();
            let n = d.len().min(SNAPLEN);
            data[..n].copy_from_slice(&d[..n]);
            let frame = CapturedFrame {
                slot,
                direction,
                orig_len: m.len() as u32,
                len: n as u32,
                data,
            };
            // The pool and the queue have the same size: a buffer from the pool always fits.
            if let Err(f) = self.filled.push(frame) {
                let _ = self.free.push(f.data);
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Frames copied but not queued because the reader was behind (since start).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Frames queued for a reader (since start).
    pub fn captured(&self) -> u64 {
        self.captured.load(Relaxed)
    }

    /// Whether a session runs, and the slots it captures with their flags.
    pub fn active(&self) -> Vec<(usize, u8)> {
        self.flags
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let v = f.load(Relaxed);
                (v != 0).then_some((i, v))
            })
            .collect()
    }

    /// Starts capturing `slot` in `directions`; `None` when a session already runs.
    pub fn start(self: &Arc<Self>, slot: usize, directions: u8) -> Option<CaptureSession> {
        if slot >= self.flags.len() || self.active.swap(true, Relaxed) {
            return None;
        }
        while self.filled.pop().is_some() {}
        while self.free.len() < CAPTURE_BUFFERS {
            if self.free.push(Box::new([0u8; SNAPLEN])).is_err() {
                break;
            }
        }
        self.flags[slot].store(directions, Relaxed);
        Some(CaptureSession {
            tap: Arc::clone(self),
            slot,
        })
    }
}

/// A running capture: frames come out of [`CaptureSession::next`]; dropping it ends the
/// capture (the port's flag is cleared).
pub struct CaptureSession {
    tap: Arc<CaptureTap>,
    slot: usize,
}

impl CaptureSession {
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The next captured frame, if one is queued. Call [`CaptureSession::recycle`] with its
    /// buffer when done with it.
    pub fn next(&self) -> Option<CapturedFrame> {
        let f = self.tap.filled.pop()?;
        self.tap.captured.fetch_add(1, Relaxed);
        Some(f)
    }

    /// Gives a frame's buffer back to the pool.
    pub fn recycle(&self, f: CapturedFrame) {
        let _ = self.tap.free.push(f.data);
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        self.tap.flags[self.slot].store(0, Relaxed);
        self.tap.active.store(false, Relaxed);
    }
}
