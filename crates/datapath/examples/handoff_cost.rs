//! What handing a packet to the worker that owns its connection costs
//! (docs/conntrack.md, "Several workers"): the owner's hash of the frame
//! ([`conntrack::shard_of_frame`]) and one push and one pop on a bounded ring (crossbeam's
//! `ArrayQueue`, as `crate::handoff` uses it), with an entry the size of the datapath's.
//!
//! ```text
//! cargo build --release -p datapath --example handoff_cost
//! # instructions per packet (callgrind, independent of the machine's load):
//! valgrind --tool=callgrind --toggle-collect=handoff_measured target/release/examples/handoff_cost icount 100000
//! # wall-clock between two threads on two CPUs (under the CPU lock; noisy on a shared machine):
//! flock /tmp/cpu.lock taskset -c 0,1 target/release/examples/handoff_cost threads 10000000
//! ```
//!
//! Nothing here starts DPDK's EAL (no EAL arguments, so no --no-pci to give).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

/// The size of the datapath's ring entry: an mbuf pointer, the ingress slot and the
/// tunnel metadata.
type Entry = (usize, u16, Option<(u32, u32, [u8; 4], [u8; 4])>);

/// A 60-byte Ethernet/IPv4/UDP frame of connection `k`.
fn frame(k: u32) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&(0x0a00_0001 + k).to_be_bytes());
    f.extend_from_slice(&0x0ac8_0001u32.to_be_bytes());
    f.extend_from_slice(&(1024 + (k % 64) as u16).to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(60, 0x5a);
    f
}

#[inline(never)]
#[no_mangle]
fn handoff_measured(frames: &[Vec<u8>], q: &ArrayQueue<Entry>) -> usize {
    let mut acc = 0;
    for (i, f) in frames.iter().enumerate() {
        let owner = conntrack::shard_of_frame(f, 2).unwrap_or(0);
        let _ = q.push((i, owner as u16, None));
        if let Some(e) = q.pop() {
            acc += e.0 + usize::from(e.1);
        }
    }
    acc
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("icount");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match mode {
        "icount" => {
            let frames: Vec<Vec<u8>> = (0..n as u32).map(|k| frame(k % 10_000)).collect();
            let q = ArrayQueue::new(1024);
            println!("{}", black_box(handoff_measured(&frames, &q)));
            println!("handoff: {n} packets measured");
        }
        _ => {
            // One thread hands n entries over, the other takes them: the cost per packet
            // with the ring's cache lines moving between the two CPUs.
            let q: Arc<ArrayQueue<Entry>> = Arc::new(ArrayQueue::new(1024));
            let rx = Arc::clone(&q);
            let t = Instant::now();
            let consumer = std::thread::spawn(move || {
                let mut got = 0usize;
                let mut acc = 0usize;
                while got < n {
                    if let Some(e) = rx.pop() {
                        acc += e.0;
                        got += 1;
                    }
                }
                acc
            });
            let mut i = 0;
            while i < n {
                if q.push((i, 1, None)).is_ok() {
                    i += 1;
                }
            }
            black_box(consumer.join().unwrap());
            let ns = t.elapsed().as_nanos() as f64 / n as f64;
            println!("handoff: {n} entries between two threads, {ns:.1} ns per entry");
        }
    }
}
