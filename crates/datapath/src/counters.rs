use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// A counter with one writer (its worker) and any number of readers. The
/// writer adds with a plain load and store, not a locked read-modify-write,
/// because nobody else writes it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        if n != 0 {
            self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
        }
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Only between uses of a slot (the worker no longer writes it).
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

/// What one worker did with the packets of one port. Packets are counted on
/// their ingress port, except `tx_*`, which count copies sent out of this port.
///
/// For every port, summed over workers:
/// `rx_packets = forwarded + to_controller + dropped` (each received packet is
/// counted once, by what the pipeline did with it), and each copy handed to the
/// port's tx batch is either in `tx_packets` or in `tx_dropped`.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PortCounters {
    /// Packets read from the port's rx queues.
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    /// Handed to at least one port's tx queue.
    pub forwarded: Counter,
    /// Sent to the controller only.
    pub to_controller: Counter,
    /// Sent nowhere: a table miss without a table-miss entry, a drop, a meter,
    /// an output to the ingress port, a port not in the frame's VLAN, a port
    /// being added or removed.
    pub dropped: Counter,
    /// Of the above, dropped by a meter band.
    pub meter_drops: Counter,
    /// Packets whose TTL expired in a decrement.
    pub invalid_ttl: Counter,
    /// Actions that did not apply to a packet (a pop of an absent tag...), skipped.
    pub action_errors: Counter,
    /// Received packets dropped for looping through `resubmit` past its bounds (64 deep,
    /// 4096 in all).
    pub resubmit_limit_drops: Counter,
    /// Copies the port's tx queue accepted.
    pub tx_packets: Counter,
    /// Copies the port's tx queue refused (ring full, link down) or that could
    /// not be made (no mbuf).
    pub tx_dropped: Counter,
    /// Of the above, TSO frames (a guest's, up to 64 KiB) that this port's
    /// driver cannot segment and software could not either (TCP over IPv6):
    /// never sent oversized.
    pub tx_oversize_dropped: Counter,
}

impl PortCounters {
    /// Zeroes a removed port's slot, so that a port added to it starts at zero.
    pub fn reset(&self) {
        for c in [
            &self.rx_packets,
            &self.rx_bytes,
            &self.forwarded,
            &self.to_controller,
            &self.dropped,
            &self.meter_drops,
            &self.invalid_ttl,
            &self.action_errors,
            &self.resubmit_limit_drops,
            &self.tx_packets,
            &self.tx_dropped,
            &self.tx_oversize_dropped,
        ] {
            c.reset();
        }
    }
}

/// Packets per non-empty rx burst, by bucket: a burst of `n` packets lands in bucket
/// `floor(log2 n)`, so the buckets hold 1, 2-3, 4-7, 8-15, 16-31 and 32 packets. The
/// bucket is found with one instruction, and six buckets tell apart a worker that
/// receives trickles from one that receives full bursts (it is falling behind).
pub const BURST_BUCKETS: usize = 6;

/// The largest burst size each bucket of [`BURST_BUCKETS`] holds (inclusive).
pub const BURST_BUCKET_BOUNDS: [u16; BURST_BUCKETS] = [1, 3, 7, 15, 31, 32];

/// The histogram bucket of a non-empty burst of `n` packets (`n` <= 32).
#[inline]
pub(crate) fn burst_bucket(n: usize) -> usize {
    ((usize::BITS - 1 - n.leading_zeros()) as usize).min(BURST_BUCKETS - 1)
}

/// One rx queue's counters. They belong to the queue, not to a worker: when a queue moves
/// to another worker (a rebalance) its counters move with it, and the one worker polling
/// it at any time is their only writer.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct QueueCounters {
    /// Packets received on the queue.
    pub packets: Counter,
    /// TSC cycles its worker spent forwarding and sending this queue's bursts (from the
    /// end of the rx burst to the end of the tx flush): the queue's share of the worker's
    /// busy cycles, what a rebalance weighs.
    pub busy_cycles: Counter,
}

/// One worker's counters: per port, plus how it spent its cycles.
#[derive(Debug)]
pub struct WorkerCounters {
    pub lcore: u32,
    pub ports: Box<[PortCounters]>,
    /// TSC cycles spent on polls that returned packets.
    pub busy_cycles: Counter,
    /// TSC cycles spent in the loop overall, idle sleeps included: `busy_cycles /
    /// total_cycles` is the share of its time the worker had work.
    pub total_cycles: Counter,
    /// Packets processed (all ports).
    pub packets: Counter,
    /// Turns of the loop (each polls every rx queue once).
    pub iterations: Counter,
    /// Turns of the loop in which some queue returned packets.
    pub busy_iterations: Counter,
    /// Non-empty rx bursts by size ([`BURST_BUCKETS`]).
    pub bursts: [Counter; BURST_BUCKETS],
    /// Outputs to a port this worker had no queue for (being added or
    /// removed, or LOCAL without a local port).
    pub unknown_port_outputs: Counter,
    /// Control-plane frames (packet-out) for a port this worker had not applied yet or no
    /// longer had, dropped.
    pub inject_dropped: Counter,
    /// Packets handed to the worker that owns their connection ([`crate::handoff`]).
    pub handed_off: Counter,
    /// Packets other workers handed to this one, walked here.
    pub handoff_received: Counter,
    /// Packets dropped on the way: the owner's ring was full (counted by the sender, also
    /// as a drop on the ingress port), or their port was gone when the owner took them.
    pub handoff_dropped: Counter,
}

impl WorkerCounters {
    pub fn new(lcore: u32, ports: usize) -> Self {
        WorkerCounters {
            lcore,
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            busy_cycles: Counter::default(),
            total_cycles: Counter::default(),
            packets: Counter::default(),
            iterations: Counter::default(),
            busy_iterations: Counter::default(),
            bursts: Default::default(),
            unknown_port_outputs: Counter::default(),
            inject_dropped: Counter::default(),
            handed_off: Counter::default(),
            handoff_received: Counter::default(),
            handoff_dropped: Counter::default(),
        }
    }

    pub fn report(&self) -> WorkerReport {
        let packets = self.packets.get();
        let busy = self.busy_cycles.get();
        // Read after busy: the worker adds to total first, so total >= busy here.
        let total = self.total_cycles.get().max(busy);
        WorkerReport {
            lcore: self.lcore,
            packets,
            busy_cycles: busy,
            total_cycles: total,
            idle_cycles: total - busy,
            busy_share: if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64
            },
            iterations: self.iterations.get(),
            busy_iterations: self.busy_iterations.get(),
            burst_histogram: self.bursts.each_ref().map(Counter::get),
            cycles_per_packet: if packets == 0 {
                0.0
            } else {
                busy as f64 / packets as f64
            },
            unknown_port_outputs: self.unknown_port_outputs.get(),
            inject_dropped: self.inject_dropped.get(),
            handed_off: self.handed_off.get(),
            handoff_received: self.handoff_received.get(),
            handoff_dropped: self.handoff_dropped.get(),
            rx_queues: Vec::new(),
            rx_queue_stats: Vec::new(),
        }
    }
}

/// A port's counters summed over workers, with the driver's own counters beside them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PortReport {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub forwarded: u64,
    pub to_controller: u64,
    pub dropped: u64,
    pub meter_drops: u64,
    pub invalid_ttl: u64,
    pub action_errors: u64,
    pub resubmit_limit_drops: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
    pub tx_oversize_dropped: u64,
}

impl PortReport {
    pub fn add(&mut self, c: &PortCounters) {
        self.rx_packets += c.rx_packets.get();
        self.rx_bytes += c.rx_bytes.get();
        self.forwarded += c.forwarded.get();
        self.to_controller += c.to_controller.get();
        self.dropped += c.dropped.get();
        self.meter_drops += c.meter_drops.get();
        self.invalid_ttl += c.invalid_ttl.get();
        self.action_errors += c.action_errors.get();
        self.resubmit_limit_drops += c.resubmit_limit_drops.get();
        self.tx_packets += c.tx_packets.get();
        self.tx_dropped += c.tx_dropped.get();
        self.tx_oversize_dropped += c.tx_oversize_dropped.get();
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerReport {
    pub lcore: u32,
    pub packets: u64,
    pub busy_cycles: u64,
    pub total_cycles: u64,
    /// `total_cycles - busy_cycles`: polls that found nothing, and idle sleeps.
    pub idle_cycles: u64,
    /// `busy_cycles / total_cycles`, in [0, 1] (0 before the first turn).
    pub busy_share: f64,
    pub iterations: u64,
    pub busy_iterations: u64,
    /// Non-empty rx bursts per bucket of [`BURST_BUCKET_BOUNDS`].
    pub burst_histogram: [u64; BURST_BUCKETS],
    pub cycles_per_packet: f64,
    pub unknown_port_outputs: u64,
    /// Packet-outs dropped because the worker did not have their port (yet, or any more).
    pub inject_dropped: u64,
    /// Connection tracking over several workers ([`WorkerCounters::handed_off`] and on).
    pub handed_off: u64,
    pub handoff_received: u64,
    pub handoff_dropped: u64,
    /// The (port, rx queue) pairs the worker polls.
    pub rx_queues: Vec<(String, u16)>,
    /// The same queues with their counters, in the same order.
    pub rx_queue_stats: Vec<RxQueueReport>,
}

/// One rx queue as the worker polling it sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RxQueueReport {
    pub port: String,
    pub queue: u16,
    pub packets: u64,
    pub busy_cycles: u64,
    /// Its share of the worker's busy cycles, in [0, 1].
    pub busy_share: f64,
}
