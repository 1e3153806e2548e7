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
}

/// What one worker did with the packets of one port. Packets are counted on
/// their ingress port, except `tx_*`, which count copies sent out of this port.
///
/// For every port, summed over workers:
/// `rx_packets = forwarded + flooded + drop_*` (each received packet is
/// forwarded, flooded or dropped exactly once), and each copy handed to the
/// port's tx queue is either in `tx_packets` or in `tx_dropped`.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PortCounters {
    /// Packets read from the port's rx queues.
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    /// Sent to the one port their destination was learned on.
    pub forwarded: Counter,
    /// Sent to every other port of their VLAN (unknown or group destination).
    pub flooded: Counter,
    /// Shorter than an Ethernet header.
    pub drop_malformed: Counter,
    /// The port does not carry the frame's VLAN (tagged on an access port, a
    /// VLAN outside `trunks`).
    pub drop_vlan: Counter,
    /// The destination was learned on the ingress port: never sent back.
    pub drop_hairpin: Counter,
    /// The destination port is not in the frame's VLAN, or a flood found no other port.
    pub drop_no_output: Counter,
    /// No mbuf for a copy or a VLAN tag edit.
    pub drop_nomem: Counter,
    /// Copies the port's tx queue accepted.
    pub tx_packets: Counter,
    /// Copies the port's tx queue refused (ring full, link down).
    pub tx_dropped: Counter,
}

/// One worker's counters: per port, plus how it spent its cycles.
#[derive(Debug)]
pub struct WorkerCounters {
    pub lcore: u32,
    pub ports: Box<[PortCounters]>,
    /// TSC cycles spent on polls that returned packets.
    pub busy_cycles: Counter,
    /// TSC cycles spent in the loop overall.
    pub total_cycles: Counter,
    /// Packets processed (all ports).
    pub packets: Counter,
    /// Addresses learned or moved by this worker.
    pub learned: Counter,
}

impl WorkerCounters {
    pub fn new(lcore: u32, ports: usize) -> Self {
        WorkerCounters {
            lcore,
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            busy_cycles: Counter::default(),
            total_cycles: Counter::default(),
            packets: Counter::default(),
            learned: Counter::default(),
        }
    }

    pub fn report(&self) -> WorkerReport {
        let packets = self.packets.get();
        let busy = self.busy_cycles.get();
        WorkerReport {
            lcore: self.lcore,
            packets,
            busy_cycles: busy,
            total_cycles: self.total_cycles.get(),
            cycles_per_packet: if packets == 0 {
                0.0
            } else {
                busy as f64 / packets as f64
            },
            learned: self.learned.get(),
        }
    }
}

/// A port's counters summed over workers, with the driver's own counters beside them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PortReport {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub forwarded: u64,
    pub flooded: u64,
    pub drop_malformed: u64,
    pub drop_vlan: u64,
    pub drop_hairpin: u64,
    pub drop_no_output: u64,
    pub drop_nomem: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

impl PortReport {
    pub fn add(&mut self, c: &PortCounters) {
        self.rx_packets += c.rx_packets.get();
        self.rx_bytes += c.rx_bytes.get();
        self.forwarded += c.forwarded.get();
        self.flooded += c.flooded.get();
        self.drop_malformed += c.drop_malformed.get();
        self.drop_vlan += c.drop_vlan.get();
        self.drop_hairpin += c.drop_hairpin.get();
        self.drop_no_output += c.drop_no_output.get();
        self.drop_nomem += c.drop_nomem.get();
        self.tx_packets += c.tx_packets.get();
        self.tx_dropped += c.tx_dropped.get();
    }

    /// Received packets that were dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.drop_malformed
            + self.drop_vlan
            + self.drop_hairpin
            + self.drop_no_output
            + self.drop_nomem
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerReport {
    pub lcore: u32,
    pub packets: u64,
    pub busy_cycles: u64,
    pub total_cycles: u64,
    pub cycles_per_packet: f64,
    pub learned: u64,
}
