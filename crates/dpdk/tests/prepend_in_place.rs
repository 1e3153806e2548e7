//! `Mbuf::prepend_in_place` (a tunnel output's outer headers pushed into the packet's own
//! headroom) writes only into a buffer no one else sees: a shared buffer, one without
//! the headroom, is left exactly as it was, and `Mbuf::prepend` still copies a shared one
//! rather than write under another owner.
//!
//! EAL runs with --no-pci, its own --file-prefix, --in-memory and --socket-limit;
//! nothing busy-polls, so /tmp/cpu.lock is not needed.

use dpdk::{Eal, Mbuf, Mempool};

#[test]
fn prepend_in_place_only_on_a_private_direct_buffer_with_headroom() {
    let args: Vec<String> = [
        "prepend-test",
        "-l",
        "0",
        "--no-pci",
        "--in-memory",
        "--file-prefix",
        "ff-t-dpdk-prepend",
        "--socket-limit",
        "64",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)");
    let pool = Mempool::pktmbuf(&eal, "prepend", 63, 0, 2048 + 128).expect("mempool");
    let frame: Vec<u8> = (0..60u8).collect();

    // Private and direct, DPDK's 128 bytes of headroom: the whole frame comes back,
    // the new bytes in front of the untouched inner frame.
    let mut m = Mbuf::from_bytes(&pool, &frame).expect("mbuf");
    assert!(m.is_direct());
    assert_eq!(m.headroom(), 128);
    let id = m.id();
    let f = m.prepend_in_place(50).expect("room for a VXLAN header");
    assert_eq!(f.len(), 110);
    f[..50].fill(0xee);
    assert_eq!(m.id(), id, "the same buffer, not a copy");
    assert_eq!(m.len(), 110);
    assert_eq!(m.headroom(), 78);
    assert_eq!(&m.data()[50..], &frame[..]);
    assert_eq!(&m.data()[..50], &[0xee; 50][..]);

    // Not enough headroom left: nothing changes.
    assert!(m.prepend_in_place(79).is_none());
    assert_eq!((m.len(), m.headroom()), (110, 78));

    // Shared with another owner (a flood's other output): refused, both views intact.
    let mut m = Mbuf::from_bytes(&pool, &frame).expect("mbuf");
    let other = m.share();
    assert!(m.prepend_in_place(50).is_none());
    assert_eq!(m.data(), &frame[..]);
    assert_eq!(other.data(), &frame[..]);
    // prepend copies first: the other owner still sees the frame as it was.
    let f = m.prepend(50).expect("a copy with headroom");
    f[..50].fill(0xaa);
    assert_ne!(m.id(), other.id());
    assert_eq!(&m.data()[50..], &frame[..]);
    assert_eq!(other.data(), &frame[..]);
    drop(other);
    drop(m);
    assert_eq!(pool.in_use(), 1, "only the first test's mbuf left");
}
