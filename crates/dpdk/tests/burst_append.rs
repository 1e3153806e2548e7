//! `MbufBurst::append` (a burst moved whole onto one port's tx batch) moves the mbufs in
//! order, as many as fit, and leaves the rest at the front of the source; nothing is
//! freed or leaked.
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit;
//! nothing busy-polls, so /tmp/cpu.lock is not needed.

use dpdk::{Eal, Mbuf, MbufBurst, Mempool, BURST_SIZE};

#[test]
fn append_moves_what_fits_in_order_and_leaves_the_rest() {
    let args: Vec<String> = [
        "burst-append-test",
        "-l",
        "0",
        "--no-pci",
        "--in-memory",
        "--file-prefix",
        "ff-t-dpdk-burst-append",
        "--socket-limit",
        "64",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)");
    let pool = Mempool::pktmbuf(&eal, "burstappend", 255, 0, 2048 + 128).expect("mempool");
    let fill = |b: &mut MbufBurst, from: u8, n: usize| {
        for i in 0..n {
            let m = Mbuf::from_bytes(&pool, &[from + i as u8; 60]).expect("mbuf");
            assert!(b.push(m).is_ok());
        }
    };
    let firsts = |b: &MbufBurst| b.as_slice().iter().map(|m| m.data()[0]).collect::<Vec<_>>();

    // Room for all: everything moves, in order, after what the batch held.
    let mut batch = MbufBurst::new();
    let mut from = MbufBurst::new();
    fill(&mut batch, 0, 3);
    fill(&mut from, 100, 10);
    assert_eq!(batch.append(&mut from), 10);
    assert!(from.is_empty());
    assert_eq!(
        firsts(&batch),
        [0, 1, 2, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109]
    );

    // Room for some: the first ones move, the rest stay at the front of `from`.
    fill(&mut from, 200, 25);
    assert_eq!(batch.append(&mut from), BURST_SIZE - 13);
    assert!(batch.is_full());
    assert_eq!(from.len(), 25 - (BURST_SIZE - 13));
    assert_eq!(firsts(&from), [219, 220, 221, 222, 223, 224]);
    assert_eq!(firsts(&batch)[13..], (200..219).collect::<Vec<u8>>()[..]);
    // A full batch takes nothing.
    assert_eq!(batch.append(&mut from), 0);
    assert_eq!(from.len(), 6);

    assert_eq!(pool.in_use(), (BURST_SIZE + 6) as u32);
    assert_eq!(batch.free_all() + from.free_all(), BURST_SIZE + 6);
    assert_eq!(pool.in_use(), 0, "every mbuf back once");
}
