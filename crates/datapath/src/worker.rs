use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use dpdk::{rdtsc, Mbuf, MbufBurst, RxQueue, TxQueue};
use mac_learning::{is_group, Egress, Learn, MacTable, VlanPolicy};

use crate::counters::WorkerCounters;
use crate::l2::{set_egress_tag, L2Header};

/// Polls without packets after which an idle-sleeping worker starts to sleep.
const IDLE_POLLS_BEFORE_SLEEP: u32 = 1024;

/// Everything one worker owns. Built by the control plane, moved to its lcore,
/// and never shared: the only shared state it reads is the MAC table, the
/// port policies (immutable) and the stop flag.
pub(crate) struct Worker {
    pub rx: Vec<(usize, RxQueue)>,
    /// One tx queue on every port, indexed by port.
    pub tx: Vec<TxQueue>,
    pub policies: Arc<[VlanPolicy]>,
    pub macs: Arc<MacTable>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub tsc_hz: u64,
    pub idle_sleep: Option<Duration>,
}

/// Per-burst tallies for the ingress port, published once per burst.
#[derive(Default)]
struct Tally {
    forwarded: u64,
    flooded: u64,
    malformed: u64,
    vlan: u64,
    hairpin: u64,
    no_output: u64,
    nomem: u64,
    learned: u64,
}

struct Outputs {
    bufs: Vec<MbufBurst>,
    /// Copies that could not be edited for their port (counted as that port's tx drops).
    failed: Vec<u64>,
    flood: Vec<usize>,
}

impl Worker {
    pub fn run(mut self) -> i32 {
        let nports = self.tx.len();
        let mut out = Outputs {
            bufs: (0..nports).map(|_| MbufBurst::new()).collect(),
            failed: vec![0; nports],
            flood: Vec::with_capacity(nports),
        };
        let mut burst = MbufBurst::new();
        let mut idle_polls = 0u32;
        let mut last = rdtsc();
        while !self.stop.load(Relaxed) {
            let mut got = 0;
            for i in 0..self.rx.len() {
                let (in_port, ref mut q) = self.rx[i];
                let n = q.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                got += n;
                let now = (rdtsc() / self.tsc_hz) as u32;
                self.forward(in_port, &mut burst, now, &mut out);
                self.flush(&mut out);
            }
            let t = rdtsc();
            let spent = t.wrapping_sub(last);
            last = t;
            self.counters.total_cycles.add(spent);
            if got > 0 {
                self.counters.busy_cycles.add(spent);
                self.counters.packets.add(got as u64);
                idle_polls = 0;
            } else if let Some(d) = self.idle_sleep {
                idle_polls = idle_polls.saturating_add(1);
                if idle_polls > IDLE_POLLS_BEFORE_SLEEP {
                    std::thread::sleep(d);
                    last = rdtsc();
                }
            }
        }
        self.flush(&mut out);
        0
    }

    /// The learning switch over one burst from `in_port`.
    #[inline]
    fn forward(&self, in_port: usize, burst: &mut MbufBurst, now: u32, out: &mut Outputs) {
        let mut t = Tally::default();
        let n = burst.len();
        let c = &self.counters.ports[in_port];
        // Start loading every header of the burst before touching the first.
        for i in 0..n {
            burst.prefetch(i);
        }
        let mut bytes = 0u64;
        let policy = &self.policies[in_port];
        for mut m in burst.drain() {
            bytes += m.len() as u64;
            let Some(h) = L2Header::parse(m.data()) else {
                t.malformed += 1;
                continue;
            };
            let Some(vlan) = policy.ingress(h.vid()) else {
                t.vlan += 1;
                continue;
            };
            if matches!(
                self.macs.learn(vlan, h.src, in_port as u32, now),
                Learn::Learned | Learn::Moved { .. }
            ) {
                t.learned += 1;
            }
            if !is_group(h.dst) {
                if let Some(dst) = self.macs.lookup(vlan, h.dst, now) {
                    let dst = dst as usize;
                    if dst == in_port {
                        t.hairpin += 1;
                    } else if let Some(e) = self.policies.get(dst).and_then(|p| p.egress(vlan)) {
                        if set_egress_tag(&mut m, h.tci, e) {
                            push(out, dst, m);
                            t.forwarded += 1;
                        } else {
                            t.nomem += 1;
                        }
                    } else {
                        t.no_output += 1;
                    }
                    continue;
                }
            }
            self.flood(in_port, vlan, h.tci, m, out, &mut t);
        }
        c.rx_packets.add(n as u64);
        c.rx_bytes.add(bytes);
        c.forwarded.add(t.forwarded);
        c.flooded.add(t.flooded);
        c.drop_malformed.add(t.malformed);
        c.drop_vlan.add(t.vlan);
        c.drop_hairpin.add(t.hairpin);
        c.drop_no_output.add(t.no_output);
        c.drop_nomem.add(t.nomem);
        self.counters.learned.add(t.learned);
    }

    /// Sends a copy to every other port of the VLAN. Copies share the buffer
    /// until a port needs a different tag, when the edit makes its own copy.
    #[inline]
    fn flood(
        &self,
        in_port: usize,
        vlan: u16,
        tci: Option<u16>,
        m: Mbuf,
        out: &mut Outputs,
        t: &mut Tally,
    ) {
        out.flood.clear();
        for (p, policy) in self.policies.iter().enumerate() {
            if p != in_port && policy.egress(vlan).is_some() {
                out.flood.push(p);
            }
        }
        let Some((&last, rest)) = out.flood.split_last() else {
            t.no_output += 1;
            return;
        };
        t.flooded += 1;
        for i in 0..rest.len() {
            let p = out.flood[i];
            let copy = m.share();
            emit(out, p, copy, tci, self.egress(p, vlan));
        }
        emit(out, last, m, tci, self.egress(last, vlan));
    }

    #[inline]
    fn egress(&self, port: usize, vlan: u16) -> Egress {
        self.policies[port].egress(vlan).unwrap_or(Egress::Untagged)
    }

    /// Hands every port's pending packets to its tx queue; what it refuses is dropped.
    #[inline]
    fn flush(&mut self, out: &mut Outputs) {
        for (p, buf) in out.bufs.iter_mut().enumerate() {
            if buf.is_empty() && out.failed[p] == 0 {
                continue;
            }
            let c = &self.counters.ports[p];
            let sent = self.tx[p].tx_burst(buf);
            c.tx_packets.add(sent as u64);
            c.tx_dropped
                .add(buf.free_all() as u64 + std::mem::take(&mut out.failed[p]));
        }
    }
}

#[inline]
fn emit(out: &mut Outputs, port: usize, mut m: Mbuf, tci: Option<u16>, e: Egress) {
    if set_egress_tag(&mut m, tci, e) {
        push(out, port, m);
    } else {
        out.failed[port] += 1;
    }
}

#[inline]
fn push(out: &mut Outputs, port: usize, m: Mbuf) {
    // One rx burst puts at most one copy per packet on a port, and buffers are
    // flushed after every rx burst, so a buffer has room; if a future change
    // breaks that, the packet is counted as a tx drop rather than lost silently.
    if out.bufs[port].push(m).is_err() {
        out.failed[port] += 1;
    }
}
