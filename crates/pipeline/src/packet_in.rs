//! Packet-in records from workers to the control plane: a bounded lock-free queue that
//! never blocks a worker. When it is full the record is dropped and counted (the
//! controller connection is the bottleneck then, and back-pressure on the fast path would
//! only spread the loss to every other packet).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_queue::ArrayQueue;
use openflow::consts::{OFPP_MAX, OFP_NO_BUFFER};
use openflow::messages::{PacketIn, PacketInReason};
use openflow::{Match as OfMatch, OxmField, OxmTlv};

/// One packet for the controller. `data` is the frame cut to the requested max_len (the
/// switch does not buffer packets: buffer_id is always OFP_NO_BUFFER).
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
    /// Length of the whole frame.
    pub total_len: u16,
    pub data: Vec<u8>,
}

impl PacketInRecord {
    /// The PACKET_IN message body: the match carries in_port, and in_phy_port, metadata and
    /// tunnel_id when they say something.
    pub fn to_message(&self) -> PacketIn {
        let mut fields = vec![OxmTlv::in_port(self.in_port)];
        if self.in_phy_port != self.in_port && self.in_port <= OFPP_MAX {
            if let Some(f) = OxmTlv::exact(OxmField::InPhyPort, self.in_phy_port.into()) {
                fields.push(f);
            }
        }
        if self.metadata != 0 {
            fields.push(OxmTlv::metadata(self.metadata, None));
        }
        if self.tunnel_id != 0 {
            fields.push(OxmTlv::tunnel_id(self.tunnel_id, None));
        }
        PacketIn {
            buffer_id: OFP_NO_BUFFER,
            total_len: self.total_len,
            reason: self.reason,
            table_id: self.table_id,
            cookie: self.cookie,
            match_: OfMatch::new(fields),
            data: self.data.clone(),
        }
    }
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

    pub fn pop(&self) -> Option<PacketInRecord> {
        self.queue.pop()
    }

    /// Everything queued now.
    pub fn drain(&self) -> Vec<PacketInRecord> {
        std::iter::from_fn(|| self.queue.pop()).collect()
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
