//! Connection tracking over several workers: each connection belongs to one worker, the
//! owner of its tracker shard ([`conntrack::shard_of_frame`], a hash of the connection's two
//! endpoints that is the same both ways, which NAT keeps true after translation). When the
//! current pipeline version runs `ct` somewhere ([`pipeline::Pipeline::tracks`]), a worker
//! hands every IP packet whose connection another worker owns to that worker, before the
//! walk, through a bounded single-producer ring per (sender, owner) pair; the owner walks
//! it as if it had come from the sender's port. Nothing is locked per packet: a push and a
//! pop on a ring no other pair uses. A full ring drops the packet (counted:
//! `handoff_dropped`, and as a drop on its ingress port), it never waits.
//!
//! Packets of one direction of a connection come from one rx queue, so they travel in
//! order through one ring. With one worker there are no rings and nothing changes.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use dpdk::Mbuf;

/// Packets each (sender, owner) ring holds: four bursts of 32 at each of 8 ports. A full
/// ring drops (and counts) what does not fit; an owner takes up to
/// [`HANDOFF_TAKE_PER_TURN`] per ring per turn of its loop.
pub const HANDOFF_RING: usize = 1024;

/// Packets an owner takes from one ring per turn of its loop: the bound on the time it
/// spends on other workers' packets before polling its own queues again.
pub(crate) const HANDOFF_TAKE_PER_TURN: usize = 4 * dpdk::BURST_SIZE;

/// What a decapsulated packet brings to its walk: its tunnel port, VNI, and outer IPv4
/// source and destination (`tun_src`, `tun_dst`), and the key's Geneve option word
/// ([`packet::TUN_METADATA_WORD`]).
pub(crate) type DecapMeta = (u32, u32, [u8; 4], [u8; 4], u64);

/// A packet on its way to the worker that owns its connection.
pub(crate) struct Handed {
    pub m: Mbuf,
    /// The slot of the port it arrived on (the owner walks it as from there).
    pub slot: u16,
    /// Set when it was decapsulated from a tunnel (the walk needs the tunnel metadata).
    pub tunnel: Option<DecapMeta>,
}

/// One worker's ends of the rings.
pub(crate) struct Handoff {
    /// By owner: the ring to that worker (`None` for this worker itself).
    pub to: Box<[Option<Arc<ArrayQueue<Handed>>>]>,
    /// The rings from every other worker.
    pub from: Box<[Arc<ArrayQueue<Handed>>]>,
}

impl Handoff {
    /// Workers connections are spread over.
    pub fn shards(&self) -> usize {
        self.to.len()
    }
}

/// The rings between `workers` workers, one end set per worker; `None` for each with a
/// single worker (no hand-off).
pub(crate) fn mesh(workers: usize) -> Vec<Option<Handoff>> {
    if workers <= 1 {
        return (0..workers).map(|_| None).collect();
    }
    // rings[from][to]
    let rings: Vec<Vec<Option<Arc<ArrayQueue<Handed>>>>> = (0..workers)
        .map(|from| {
            (0..workers)
                .map(|to| (from != to).then(|| Arc::new(ArrayQueue::new(HANDOFF_RING))))
                .collect()
        })
        .collect();
    (0..workers)
        .map(|w| {
            Some(Handoff {
                to: rings[w].clone().into(),
                from: (0..workers)
                    .filter_map(|from| rings[from][w].clone())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every worker reaches every other through a ring of its own, and is reached by each
    /// through the same ring the sender pushes to.
    #[test]
    fn mesh_connects_every_pair_once() {
        assert!(mesh(1).iter().all(Option::is_none));
        let m = mesh(3);
        for (w, h) in m.iter().enumerate() {
            let h = h.as_ref().unwrap();
            assert_eq!(h.shards(), 3);
            assert!(h.to[w].is_none());
            assert_eq!(h.from.len(), 2);
            for (o, ring) in h.to.iter().enumerate() {
                if let Some(ring) = ring {
                    let theirs = m[o].as_ref().unwrap();
                    assert_eq!(
                        theirs.from.iter().filter(|r| Arc::ptr_eq(r, ring)).count(),
                        1,
                        "{w} -> {o}"
                    );
                }
            }
        }
    }
}
