//! Packet-in records from workers to the control plane: a bounded lock-free queue that
//! never blocks a worker. When it is full the record is dropped and counted (the
//! controller connection is the bottleneck then, and back-pressure on the fast path would
//! only spread the loss to every other packet).
//!
//! Before the queue, each worker limits packet-ins per ingress port with a token bucket
//! ([`PacketInLimiter`]), so one port flooding the controller (a guest with a table-miss
//! to CONTROLLER) cannot crowd out the others' packet-ins, and a dropped packet-in costs
//! no allocation: the limit is checked before the record is built.

use std::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// Why a packet goes to the controller (`ofp_packet_in_reason`'s cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketInReason {
    /// A table-miss entry (or miss policy) sent it.
    NoMatch,
    /// An output to CONTROLLER in an entry's actions.
    Action,
    /// A TTL decrement reached zero.
    InvalidTtl,
}

/// One packet for the controller. `data` is the frame cut to the requested max_len (the
/// switch does not buffer packets; `ofproto::packet_in` makes the PACKET_IN message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketInRecord {
    pub reason: PacketInReason,
    pub table_id: u8,
    /// Of the entry that sent it; all ones when no entry did (table miss policy).
    pub cookie: u64,
    pub in_port: u32,
    pub in_phy_port: u32,
    pub metadata: u64,
    pub tunnel_id: u64,
    /// The outer IPv4 addresses of a decapsulated packet (zero otherwise).
    pub tun_src: [u8; 4],
    pub tun_dst: [u8; 4],
    /// The key's Geneve option word ([`packet::TUN_METADATA_WORD`]).
    pub tun_metadata: u64,
    /// Length of the whole frame.
    pub total_len: u16,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub struct PacketInQueue {
    queue: ArrayQueue<PacketInRecord>,
    dropped: AtomicU64,
}

impl PacketInQueue {
    pub fn new(capacity: usize) -> PacketInQueue {
        PacketInQueue {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Never blocks; false (and counted) when full.
    pub fn push(&self, r: PacketInRecord) -> bool {
        if self.queue.push(r).is_err() {
            self.dropped.fetch_add(1, Relaxed);
            return false;
        }
        true
    }

    /// Counts a record not built because the queue was full (see [`PacketInQueue::is_full`]).
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    pub fn pop(&self) -> Option<PacketInRecord> {
        self.queue.pop()
    }

    /// At most `max` records, oldest first: what the control plane handles in one tick, so
    /// that a queue kept full by a flood cannot keep the tick from returning.
    pub fn pop_batch(&self, max: usize) -> Vec<PacketInRecord> {
        let mut out = Vec::with_capacity(max.min(self.queue.len()));
        while out.len() < max {
            match self.queue.pop() {
                Some(r) => out.push(r),
                None => break,
            }
        }
        out
    }

    /// Everything queued now (tests: a flood keeps this unbounded; see
    /// [`PacketInQueue::pop_batch`]).
    pub fn drain(&self) -> Vec<PacketInRecord> {
        std::iter::from_fn(|| self.queue.pop()).collect()
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Records lost to a full queue since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// Ports a worker tracks separately; packet-ins from ports beyond these (an unlikely
/// number, or a hash neighbourhood already full) share one bucket, reported as OFPP_ANY.
pub const LIMITED_PORTS: usize = 1024;
/// Slots probed for a port before it goes to the shared bucket.
const PROBES: usize = 16;
/// One packet, in the buckets' units (nano-packets: the rate times nanoseconds).
const NANO: u64 = 1_000_000_000;

/// Packet-ins a worker dropped per port for the rate limit, readable by the control
/// plane while the worker writes (single writer per index, as [`crate::counters`]).
#[derive(Debug)]
pub struct PacketInDrops {
    /// The port of each slot, set when the worker first sees the port.
    ports: Box<[AtomicU32]>,
    dropped: Box<[AtomicU64]>,
    /// Ports that found no slot.
    other: AtomicU64,
}

impl PacketInDrops {
    pub(crate) fn new() -> PacketInDrops {
        PacketInDrops {
            ports: (0..LIMITED_PORTS).map(|_| AtomicU32::new(0)).collect(),
            dropped: (0..LIMITED_PORTS).map(|_| AtomicU64::new(0)).collect(),
            other: AtomicU64::new(0),
        }
    }

    /// (port, dropped) for every port with drops; the shared bucket as OFPP_ANY.
    pub fn per_port(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let slots = self
            .dropped
            .iter()
            .zip(self.ports.iter())
            .filter_map(|(d, p)| {
                // Acquire: a count seen means its slot's port is seen too.
                let n = d.load(Acquire);
                (n != 0).then(|| (p.load(Relaxed), n))
            });
        let other = self.other.load(Relaxed);
        slots.chain((other != 0).then_some((crate::ports::OFPP_ANY, other)))
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    port: u32,
    used: bool,
    tokens: u64,
    last_ns: u64,
}

const EMPTY: Bucket = Bucket {
    port: 0,
    used: false,
    tokens: 0,
    last_ns: 0,
};

/// A worker's packet-in rate limit: one token bucket per ingress port (`rate` per second,
/// up to `burst`), in a fixed table allocated with the worker's context, so checking it
/// costs a hash probe and no allocation, lock or shared write. `rate` 0 turns it off.
#[derive(Debug)]
pub struct PacketInLimiter {
    /// Nano-packets per nanosecond times 1e9: packets per second.
    rate: u64,
    /// Nano-packets.
    cap: u64,
    slots: Box<[Bucket]>,
    other: Bucket,
    drops: Arc<PacketInDrops>,
}

impl PacketInLimiter {
    /// A limiter counting its drops in `drops` (which the control plane reads).
    pub(crate) fn new(rate: u32, burst: u32, drops: Arc<PacketInDrops>) -> PacketInLimiter {
        PacketInLimiter {
            rate: u64::from(rate),
            cap: u64::from(burst.max(1)) * NANO,
            slots: vec![EMPTY; LIMITED_PORTS].into(),
            other: EMPTY,
            drops,
        }
    }

    /// Takes a token for a packet-in from `port` at `now_ns`: false (and counted) when the
    /// port has used up its rate.
    #[inline]
    pub fn admit(&mut self, port: u32, now_ns: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let (rate, cap) = (self.rate, self.cap);
        let h = (u64::from(port).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        let n = self.slots.len();
        let mut found = None;
        for i in 0..PROBES {
            let s = (h + i) % n;
            let b = &mut self.slots[s];
            if !b.used {
                *b = Bucket {
                    port,
                    used: true,
                    tokens: cap,
                    last_ns: now_ns,
                };
                self.drops.ports[s].store(port, Release);
                found = Some(s);
                break;
            }
            if b.port == port {
                found = Some(s);
                break;
            }
        }
        let b = match found {
            Some(s) => &mut self.slots[s],
            None => {
                if !self.other.used {
                    self.other = Bucket {
                        port,
                        used: true,
                        tokens: cap,
                        last_ns: now_ns,
                    };
                }
                &mut self.other
            }
        };
        // At most a second of refill at once: no overflow, and a port idle for long gets
        // at most its burst anyway.
        let dt = now_ns.saturating_sub(b.last_ns).min(NANO);
        b.tokens = b.tokens.saturating_add(rate * dt).min(cap);
        b.last_ns = b.last_ns.max(now_ns);
        if b.tokens >= NANO {
            b.tokens -= NANO;
            return true;
        }
        let counter = match found {
            Some(s) => &self.drops.dropped[s],
            None => &self.drops.other,
        };
        counter.store(counter.load(Relaxed) + 1, Release);
        false
    }
}
