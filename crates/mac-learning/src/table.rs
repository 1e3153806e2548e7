use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{is_group, Mac};

/// Slots probed from a key's home slot before the table counts as full for it.
const PROBE: usize = 8;
const USED: u64 = 1 << 63;

/// A learned address, as the control plane lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacEntry {
    pub vlan: u16,
    pub mac: Mac,
    pub port: u32,
    /// Seconds since the address was last seen.
    pub age: u32,
}

/// What [`MacTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Known on this port and seen recently: nothing written.
    Known,
    /// Known on this port; its last-seen time was refreshed.
    Refreshed,
    /// A new address.
    Learned,
    /// The address moved from another port.
    Moved { from: u32 },
    /// No free slot near the address's home: it stays unknown (frames to it flood).
    Full,
    /// A group address: never learned.
    Ignored,
}

/// A slot's key and value side by side, 16-byte aligned: a lookup or a learn touches one
/// cache line per slot probed instead of one in a key array and one in a value array.
#[repr(C, align(16))]
struct Slot {
    key: AtomicU64,
    value: AtomicU64,
}

/// A fixed-size open-addressing table of (VLAN, MAC) -> port, shared without
/// locks. A slot's `key` word holds USED | vlan << 48 | mac; its `value` word
/// holds the port (low 32 bits) and the last-seen second (high 32 bits) .
///
/// Writers claim a slot with a compare-and-swap on `key`, then store `value`.
/// A reader that catches a slot between the two, or a value written for a
/// slot's previous key, sees a stale port: the frame goes to a port that
/// recently had the address or floods, exactly as when learning had not
/// happened yet. The value therefore carries a check of the key it was written
/// for (8 bits of the key's hash in the port field's top byte).
pub struct MacTable {
    slots: Box<[Slot]>,
    mask: usize,
    aging: u32,
}

impl std::fmt::Debug for MacTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacTable")
            .field("capacity", &self.slots.len())
            .field("aging", &self.aging)
            .finish()
    }
}

#[inline]
fn key_of(vlan: u16, mac: Mac) -> u64 {
    USED | (u64::from(vlan & 0xfff) << 48) | (mac & 0xffff_ffff_ffff)
}

#[inline]
fn hash(key: u64) -> u64 {
    // A multiplicative hash: the table is power-of-two sized, so take the high bits.
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[inline]
fn check_of(key: u64) -> u32 {
    ((hash(key) >> 24) as u32 & 0xff) << 24
}

/// The low 24 bits of a slot's value hold the port. OpenFlow's reserved ports
/// (0xffffff00 and up: LOCAL, IN_PORT, ...) are stored as 0xffff00 and up and read back
/// in their own range, so an address learned on LOCAL is sent to LOCAL; the ports in
/// between (0x00ffff00..0xffffff00) do not fit and are never reported `Known`.
#[inline(always)]
fn stored_port(value: u64) -> u32 {
    let p = value as u32 & 0x00ff_ffff;
    if p >= 0x00ff_ff00 {
        p | 0xff00_0000
    } else {
        p
    }
}

/// Whether `port` reads back from a slot as itself (see [`stored_port`]).
#[inline(always)]
fn storable(port: u32) -> bool {
    !(0x00ff_ff00..0xffff_ff00).contains(&port)
}

#[inline]
fn pack(port: u32, key: u64, now: u32) -> u64 {
    (u64::from(now) << 32) | u64::from((port & 0x00ff_ffff) | check_of(key))
}

impl MacTable {
    /// A table for about `capacity` addresses (rounded up to a power of two)
    /// that forgets an address `aging` seconds after it was last seen.
    /// Port numbers are stored in 24 bits.
    pub fn new(capacity: usize, aging: u32) -> MacTable {
        let size = capacity.max(PROBE).next_power_of_two();
        MacTable {
            slots: (0..size)
                .map(|_| Slot {
                    key: AtomicU64::new(0),
                    value: AtomicU64::new(0),
                })
                .collect(),
            mask: size - 1,
            aging,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn aging(&self) -> u32 {
        self.aging
    }

    /// The port that `mac` was last seen on in `vlan`, if within the aging time.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: Mac, now: u32) -> Option<u32> {
        self.view().lookup(key_of(vlan, mac), now)
    }

    /// Records that `mac` in `vlan` was seen on `port` at second `now`.
    #[inline]
    pub fn learn(&self, vlan: u16, mac: Mac, port: u32, now: u32) -> Learn {
        if is_group(mac) {
            return Learn::Ignored;
        }
        self.view().learn(key_of(vlan, mac), port, now)
    }

    /// [`learn`](Self::learn) of `src` on `port`, then [`lookup`](Self::lookup) of `dst`,
    /// both in `vlan`: what NORMAL does for every frame. One call so that the table's
    /// shape (slots, mask, aging) is read once and the VLAN part of both keys is built
    /// once; a group `dst` is not looked up (it floods).
    #[inline]
    pub fn learn_and_lookup(
        &self,
        vlan: u16,
        src: Mac,
        port: u32,
        dst: Mac,
        now: u32,
    ) -> (Learn, Option<u32>) {
        let view = self.view();
        let vlan_bits = USED | (u64::from(vlan & 0xfff) << 48);
        let learned = if is_group(src) {
            Learn::Ignored
        } else {
            view.learn(vlan_bits | (src & 0xffff_ffff_ffff), port, now)
        };
        let known = if is_group(dst) {
            None
        } else {
            view.lookup(vlan_bits | (dst & 0xffff_ffff_ffff), now)
        };
        (learned, known)
    }

    #[inline(always)]
    fn view(&self) -> View<'_> {
        View {
            slots: &self.slots,
            mask: self.mask,
            aging: self.aging,
        }
    }

    /// Forgets every address learned on `port` (the port went away).
    pub fn flush_port(&self, port: u32) {
        for Slot { key: k, value: v } in self.slots.iter() {
            if k.load(Relaxed) != 0 && stored_port(v.load(Relaxed)) == port {
                // Expire rather than empty the slot: emptying would cut the probe
                // chains of keys stored after it.
                v.store(0, Relaxed);
            }
        }
    }

    /// Every live entry (for the control plane; walks the whole table).
    pub fn entries(&self, now: u32) -> Vec<MacEntry> {
        self.slots
            .iter()
            .filter_map(|Slot { key: k, value: v }| {
                let (k, v) = (k.load(Relaxed), v.load(Relaxed));
                (k != 0 && (v as u32) & 0xff00_0000 == check_of(k) && self.view().live(v, now))
                    .then(|| MacEntry {
                        vlan: ((k >> 48) & 0xfff) as u16,
                        mac: k & 0xffff_ffff_ffff,
                        port: stored_port(v),
                        age: now.wrapping_sub((v >> 32) as u32),
                    })
            })
            .collect()
    }
}

/// The table's shape copied into locals for one packet: the slot stores of a learn
/// would otherwise make the compiler reload it from the table for the lookup after.
#[derive(Clone, Copy)]
struct View<'a> {
    slots: &'a [Slot],
    mask: usize,
    aging: u32,
}

impl View<'_> {
    #[inline(always)]
    fn live(self, value: u64, now: u32) -> bool {
        now.wrapping_sub((value >> 32) as u32) <= self.aging
    }

    #[inline(always)]
    fn lookup(self, key: u64, now: u32) -> Option<u32> {
        let h = hash(key);
        let home = (h >> 32) as usize & self.mask;
        for i in 0..PROBE {
            let slot = &self.slots[(home + i) & self.mask];
            let k = slot.key.load(Relaxed);
            if k == key {
                let v = slot.value.load(Relaxed);
                let port = v as u32;
                return (port & 0xff00_0000 == check_of(key) && self.live(v, now))
                    .then_some(stored_port(v));
            }
            if k == 0 {
                return None;
            }
        }
        None
    }

    /// `key` is not a group address's.
    #[inline(always)]
    fn learn(self, key: u64, port: u32, now: u32) -> Learn {
        let h = hash(key);
        let home = (h >> 32) as usize & self.mask;
        // What the slot holds when this address was already seen on this port this
        // second: the usual case, decided by one compare and no store.
        let current = pack(port, key, now);
        let mut reusable = None;
        for i in 0..PROBE {
            let index = (home + i) & self.mask;
            let slot = &self.slots[index];
            let k = slot.key.load(Relaxed);
            if k == key {
                let v = slot.value.load(Relaxed);
                if v == current && storable(port) {
                    return Learn::Known;
                }
                let old = stored_port(v);
                let valid = (v as u32) & 0xff00_0000 == check_of(key) && self.live(v, now);
                slot.value.store(current, Relaxed);
                return if valid && old == port {
                    Learn::Refreshed
                } else if valid {
                    Learn::Moved { from: old }
                } else {
                    Learn::Learned
                };
            }
            if k == 0 {
                reusable.get_or_insert((index, 0));
                break;
            }
            if reusable.is_none() && !self.live(slot.value.load(Relaxed), now) {
                reusable = Some((index, k));
            }
        }
        let Some((index, seen)) = reusable else {
            return Learn::Full;
        };
        // Another worker may claim the same slot at the same moment: the loser
        // just does not learn this time; the next frame will.
        if self.slots[index]
            .key
            .compare_exchange(seen, key, Relaxed, Relaxed)
            .is_err()
        {
            return Learn::Full;
        }
        self.slots[index].value.store(current, Relaxed);
        Learn::Learned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    const A: Mac = 0x02_00_00_00_00_01;
    const B: Mac = 0x02_00_00_00_00_02;

    #[test]
    fn learn_lookup_move_age() {
        let t = MacTable::new(64, 300);
        assert_eq!(t.lookup(0, A, 10), None);
        assert_eq!(t.learn(0, A, 1, 10), Learn::Learned);
        assert_eq!(t.learn(0, A, 1, 10), Learn::Known);
        assert_eq!(t.learn(0, A, 1, 11), Learn::Refreshed);
        assert_eq!(t.lookup(0, A, 11), Some(1));
        // VLANs are separate address spaces.
        assert_eq!(t.lookup(5, A, 11), None);
        assert_eq!(t.learn(0, A, 2, 12), Learn::Moved { from: 1 });
        assert_eq!(t.lookup(0, A, 12), Some(2));
        assert_eq!(t.lookup(0, A, 12 + 300), Some(2));
        assert_eq!(t.lookup(0, A, 12 + 301), None, "aged out");
        assert_eq!(t.learn(0, A, 3, 12 + 301), Learn::Learned);
    }

    #[test]
    fn learn_and_lookup_is_learn_then_lookup() {
        let t = MacTable::new(64, 300);
        // The destination is unknown until it sends; the source is learned first, so a
        // frame to itself finds it.
        assert_eq!(t.learn_and_lookup(0, A, 1, B, 10), (Learn::Learned, None));
        assert_eq!(t.learn_and_lookup(0, A, 1, A, 10), (Learn::Known, Some(1)));
        assert_eq!(
            t.learn_and_lookup(0, B, 2, A, 10),
            (Learn::Learned, Some(1))
        );
        assert_eq!(
            t.learn_and_lookup(0, A, 1, B, 11),
            (Learn::Refreshed, Some(2))
        );
        assert_eq!(
            t.learn_and_lookup(0, A, 3, B, 11),
            (Learn::Moved { from: 1 }, Some(2))
        );
        // Group addresses: a broadcast source is not learned, a group destination is
        // never looked up (it floods), and both leave the table as it was.
        let bcast = 0xff_ff_ff_ff_ff_ff;
        assert_eq!(
            t.learn_and_lookup(0, bcast, 1, A, 11),
            (Learn::Ignored, Some(3))
        );
        assert_eq!(
            t.learn_and_lookup(0, B, 2, bcast, 11),
            (Learn::Refreshed, None)
        );
        assert_eq!(
            t.learn_and_lookup(7, B, 2, A, 11),
            (Learn::Learned, None),
            "other VLAN"
        );
        assert_eq!(t.entries(11).len(), 3);
        // A port number beyond the 24 bits stored is never reported as known.
        assert_ne!(t.learn(0, A, 3 | 1 << 24, 11), Learn::Known);
    }

    #[test]
    fn reserved_ports_read_back_as_themselves() {
        const LOCAL: u32 = 0xffff_fffe;
        let t = MacTable::new(64, 300);
        assert_eq!(t.learn(0, A, LOCAL, 10), Learn::Learned);
        assert_eq!(t.lookup(0, A, 10), Some(LOCAL));
        assert_eq!(t.learn(0, A, LOCAL, 10), Learn::Known);
        assert_eq!(t.learn(0, A, LOCAL, 11), Learn::Refreshed);
        assert_eq!(
            t.learn_and_lookup(0, B, 2, A, 11),
            (Learn::Learned, Some(LOCAL))
        );
        assert_eq!(
            t.entries(11).iter().find(|e| e.mac == A).unwrap().port,
            LOCAL
        );
        assert_eq!(t.learn(0, A, 3, 12), Learn::Moved { from: LOCAL });
        t.learn(0, B, LOCAL, 12);
        t.flush_port(LOCAL);
        assert_eq!(t.lookup(0, B, 12), None);
        assert_eq!(t.lookup(0, A, 12), Some(3));
    }

    #[test]
    fn group_addresses_are_not_learned() {
        let t = MacTable::new(64, 300);
        assert_eq!(t.learn(0, 0xff_ff_ff_ff_ff_ff, 1, 0), Learn::Ignored);
        assert_eq!(t.learn(0, 0x01_00_5e_00_00_01, 1, 0), Learn::Ignored);
        assert_eq!(t.lookup(0, 0xff_ff_ff_ff_ff_ff, 0), None);
    }

    #[test]
    fn flush_port_forgets_only_that_port() {
        let t = MacTable::new(64, 300);
        t.learn(0, A, 1, 0);
        t.learn(0, B, 2, 0);
        t.flush_port(1);
        assert_eq!(t.lookup(0, A, 0), None);
        assert_eq!(t.lookup(0, B, 0), Some(2));
        assert_eq!(t.entries(0).len(), 1);
    }

    #[test]
    fn full_neighbourhood_reports_full_and_reuses_expired() {
        let t = MacTable::new(8, 10);
        let mut learned = 0;
        for i in 0..64u64 {
            if t.learn(0, 0x0200_0000_0000 + i, 1, 0) == Learn::Learned {
                learned += 1;
            }
        }
        assert_eq!(learned, 8);
        assert_eq!(t.learn(0, 0x0200_0000_1000, 1, 0), Learn::Full);
        // After aging, slots are reused.
        assert_eq!(t.learn(0, 0x0200_0000_1000, 1, 11), Learn::Learned);
        assert_eq!(t.lookup(0, 0x0200_0000_1000, 11), Some(1));
    }

    #[test]
    fn concurrent_learners_never_return_a_port_nobody_wrote() {
        let t = Arc::new(MacTable::new(1024, 300));
        let threads: Vec<_> = (0..4u32)
            .map(|w| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for round in 0..2000u32 {
                        for m in 0..200u64 {
                            // Each MAC only ever lives on ports 100+m or 200+m.
                            let port = if (round + w) % 2 == 0 {
                                100 + m as u32
                            } else {
                                200 + m as u32
                            };
                            t.learn(0, 0x0200_0000_0000 + m, port, round / 100);
                            if let Some(p) = t.lookup(0, 0x0200_0000_0000 + m, round / 100) {
                                assert!(
                                    p == 100 + m as u32 || p == 200 + m as u32,
                                    "mac {m} on port {p}"
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let entries = t.entries(20);
        let by_mac: HashMap<_, _> = entries.iter().map(|e| (e.mac, e.port)).collect();
        assert_eq!(by_mac.len(), 200);
    }

    proptest::proptest! {
        /// Against a HashMap model (one writer, no aging): the table answers as
        /// the model does for every address it could store.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((0u16..3, 0u64..40, 1u32..5), 1..300)) {
            let t = MacTable::new(256, 1000);
            let mut model = HashMap::new();
            for (vlan, m, port) in ops {
                let mac = 0x0200_0000_0000 + m;
                let r = t.learn(vlan, mac, port, 0);
                proptest::prop_assert_ne!(r, Learn::Full);
                model.insert((vlan, mac), port);
            }
            for ((vlan, mac), port) in &model {
                proptest::prop_assert_eq!(t.lookup(*vlan, *mac, 0), Some(*port));
            }
            proptest::prop_assert_eq!(t.entries(0).len(), model.len());
        }
    }
}
