//! `MbufBurst::free_all` (one `rte_pktmbuf_free_bulk` per burst) gives back exactly what
//! dropping each mbuf would: every segment of a chain, and a shared buffer only when its
//! last reference goes.
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit;
//! nothing busy-polls, so /tmp/cpu.lock is not needed.

use dpdk::{Eal, Mbuf, MbufBurst, Mempool, BURST_SIZE};

#[test]
fn a_bulk_free_returns_every_segment_and_last_reference_to_the_pool() {
    let args: Vec<String> = [
        "burst-free-test",
        "-l",
        "0",
        "--no-pci",
        "--in-memory",
        "--file-prefix",
        "ff-t-dpdk-burst-free",
        "--socket-limit",
        "64",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)");
    let pool = Mempool::pktmbuf(&eal, "burstfree", 255, 0, 2048 + 128).expect("mempool");
    assert_eq!(pool.in_use(), 0);

    let mut burst = MbufBurst::new();
    // A full burst of plain mbufs.
    for i in 0..BURST_SIZE {
        let m = Mbuf::from_bytes(&pool, &[i as u8; 60]).expect("mbuf");
        assert!(burst.push(m).is_ok());
    }
    assert_eq!(pool.in_use(), BURST_SIZE as u32);
    assert_eq!(burst.free_all(), BURST_SIZE);
    assert!(burst.is_empty());
    assert_eq!(pool.in_use(), 0, "every mbuf back");

    // A chain of three segments, and a buffer shared with a reference kept outside.
    let mut head = Mbuf::from_bytes(&pool, &[1; 100]).expect("mbuf");
    for _ in 0..2 {
        head.chain(Mbuf::from_bytes(&pool, &[2; 100]).expect("mbuf"))
            .expect("chain");
    }
    let kept = Mbuf::from_bytes(&pool, &[3; 60]).expect("mbuf");
    assert!(burst.push(head).is_ok());
    assert!(burst.push(kept.share()).is_ok());
    assert_eq!(pool.in_use(), 4);
    assert_eq!(burst.free_all(), 2);
    assert_eq!(
        pool.in_use(),
        1,
        "the chain freed whole, the shared buffer still held"
    );
    assert_eq!(
        kept.data(),
        &[3; 60][..],
        "the kept reference still reads its data"
    );
    drop(kept);
    assert_eq!(pool.in_use(), 0);
    assert_eq!(burst.free_all(), 0, "an empty burst frees nothing");
}
