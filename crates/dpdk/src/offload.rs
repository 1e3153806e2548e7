//! TCP segmentation on the way out, for frames a guest sent with TSO.
//!
//! A vhost-user port whose guest negotiated TSO (devarg `tso=1`) receives TCP
//! frames of up to 64 KiB: the vhost library marks them `RTE_MBUF_F_RX_LRO`
//! with the guest's MSS in `tso_segsz` (chained mbufs, checksum completed by
//! the PMD). Such a frame must never reach a wire whole. Per output port:
//! - the driver segments it (net_tap; a vhost guest that negotiated TSO
//!   itself, where the vhost library writes the virtio-net header): the frame
//!   leaves whole with `RTE_MBUF_F_TX_TCP_SEG` and its header lengths;
//! - otherwise DPDK's librte_gso cuts it into MTU-sized segments whose
//!   checksums are computed here (TCP over IPv4, what librte_gso can do);
//! - otherwise (TCP over IPv6, no mbufs) it is dropped and counted as
//!   oversize ([`TxDrops::oversize`]).
//!
//! Only bursts holding such a frame come here (`MbufBurst::oversize`), so the
//! per-packet cost elsewhere is one flags test when the packet is queued.

use std::ptr;

use dpdk_sys::rte_mbuf;

use crate::mbuf::MbufBurst;
use crate::port::TxQueue;

const RX_LRO: u64 = 1 << 16;
const TX_TCP_SEG: u64 = 1 << 50;
const TX_TCP_CKSUM: u64 = 1 << 52;
const TX_IP_CKSUM: u64 = 1 << 54;
const TX_IPV4: u64 = 1 << 55;
const TX_IPV6: u64 = 1 << 56;

/// A frame longer than one MTU of TCP: a guest's TSO (vhost, compliant
/// offload flags) or a frame a sender marked for TSO (legacy flags).
pub(crate) const SEGMENTATION_FLAGS: u64 = RX_LRO | TX_TCP_SEG;

const TX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
const TX_OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
const TX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;
const TX_OFFLOAD_TCP_TSO: u64 = 1 << 5;
const TX_OFFLOAD_MULTI_SEGS: u64 = 1 << 15;

/// The tx offloads a port is configured with, where its driver has them.
pub(crate) const WANTED_TX_OFFLOADS: u64 = TX_OFFLOAD_IPV4_CKSUM
    | TX_OFFLOAD_UDP_CKSUM
    | TX_OFFLOAD_TCP_CKSUM
    | TX_OFFLOAD_TCP_TSO
    | TX_OFFLOAD_MULTI_SEGS;

/// virtio-net feature bits: the guest takes partial checksums and TSO frames.
const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
const VIRTIO_NET_F_GUEST_TSO6: u64 = 1 << 8;

/// Segments gathered before a tx call: a 64 KiB frame at a 1500-byte MTU
/// makes 45.
const OUT: usize = 256;

/// Frames the segmenting tx path did not send, for the port's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxDrops {
    /// Frames or segments the driver refused (ring full, link down).
    pub dropped: u64,
    /// TSO frames that could be neither passed to the driver nor segmented.
    pub oversize: u64,
}

/// Header lengths of a TCP frame, from its first segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpHeaders {
    l2: u16,
    l3: u16,
    l4: u16,
    ipv4: bool,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Ethernet (VLAN tags included), IPv4 or IPv6 without extension headers, TCP.
fn tcp_headers(d: &[u8]) -> Option<TcpHeaders> {
    let mut l2 = 14;
    let mut ty = be16(d, 12)?;
    while ty == 0x8100 || ty == 0x88a8 {
        ty = be16(d, l2 + 2)?;
        l2 += 4;
    }
    let (l3, proto, ipv4) = match ty {
        0x0800 => {
            let b = *d.get(l2)?;
            (usize::from(b & 0xf) * 4, *d.get(l2 + 9)?, true)
        }
        0x86dd => (40, *d.get(l2 + 6)?, false),
        _ => return None,
    };
    if proto != 6 || l3 < 20 {
        return None;
    }
    let l4 = usize::from(*d.get(l2 + l3 + 12)? >> 4) * 4;
    if l4 < 20 || d.len() < l2 + l3 + l4 {
        return None;
    }
    Some(TcpHeaders {
        l2: l2 as u16,
        l3: l3 as u16,
        l4: l4 as u16,
        ipv4,
    })
}

impl TxQueue {
    /// What was dropped in the segmenting path since the last call.
    #[inline]
    pub fn take_drops(&mut self) -> TxDrops {
        std::mem::take(&mut self.drops)
    }

    /// Whether the driver segments TCP over IPv4 and over IPv6 itself.
    fn tso(&self) -> (bool, bool) {
        if self.vhost {
            // The guest's features change when it reconnects: asked each time.
            // SAFETY: plain lookups on a valid port id; -1 when no guest is attached.
            let vid = unsafe { dpdk_sys::ff_vhost_vid_of_port(self.port) };
            let mut f = 0u64;
            // SAFETY: f is a valid out pointer; a failure leaves f zero.
            if vid < 0 || unsafe { dpdk_sys::rte_vhost_get_negotiated_features(vid, &mut f) } != 0 {
                return (false, false);
            }
            let csum = f & VIRTIO_NET_F_GUEST_CSUM != 0;
            (
                csum && f & VIRTIO_NET_F_GUEST_TSO4 != 0,
                csum && f & VIRTIO_NET_F_GUEST_TSO6 != 0,
            )
        } else {
            // librte_gso, which net_tap segments with, does TCP over IPv4 only.
            (self.offloads & TX_OFFLOAD_TCP_TSO != 0, false)
        }
    }

    fn mtu(&self) -> u16 {
        let mut mtu = 0u16;
        // SAFETY: mtu is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.port, &mut mtu) };
        if ret < 0 || mtu == 0 {
            1500
        } else {
            mtu
        }
    }

    /// Sends `out[..*n]`, frees what the driver refused (counted), empties it.
    fn send(&mut self, out: &mut [*mut rte_mbuf; OUT], n: &mut usize) -> usize {
        if *n == 0 {
            return 0;
        }
        // SAFETY: one sender (&mut self); the driver owns the mbufs it takes.
        let sent = unsafe {
            dpdk_sys::ff_eth_tx_burst(self.port, self.queue_id(), out.as_mut_ptr(), *n as u16)
        } as usize;
        for &m in &out[sent..*n] {
            // SAFETY: the driver refused these: still ours.
            unsafe { dpdk_sys::ff_pktmbuf_free(m) };
        }
        self.drops.dropped += (*n - sent) as u64;
        *n = 0;
        sent
    }

    /// The burst, its TSO frames made fit for this port; everything in the
    /// burst is sent or freed (and counted in `drops`). Returns what was sent.
    #[cold]
    pub(crate) fn tx_burst_segmenting(&mut self, burst: &mut MbufBurst) -> usize {
        let (tso4, tso6) = self.tso();
        let mtu = u32::from(self.mtu());
        let mut out = [ptr::null_mut(); OUT];
        let mut n = 0;
        let mut sent = 0;
        for m in burst.drain() {
            let raw = m.into_raw();
            // SAFETY: raw is a valid mbuf that we own.
            let flags = unsafe { (*raw).ol_flags };
            if flags & SEGMENTATION_FLAGS == 0 {
                if n == OUT {
                    sent += self.send(&mut out, &mut n);
                }
                out[n] = raw;
                n += 1;
                continue;
            }
            // SAFETY: the first segment's data_len bytes at mtod are initialised.
            let first = unsafe {
                std::slice::from_raw_parts(
                    ((*raw).buf_addr as *const u8).add(usize::from((*raw).data_off)),
                    usize::from((*raw).data_len),
                )
            };
            let Some(h) = tcp_headers(first) else {
                self.drop_oversize(raw);
                continue;
            };
            let keep = flags & !(TX_TCP_SEG | TX_TCP_CKSUM | TX_IP_CKSUM | TX_IPV4 | TX_IPV6);
            if (h.ipv4 && tso4) || (!h.ipv4 && tso6) {
                let ip = if h.ipv4 {
                    TX_IPV4 | TX_IP_CKSUM
                } else {
                    TX_IPV6
                };
                if !self.vhost {
                    // net_tap refuses a TSO frame whose MSS plus headers, Ethernet
                    // included, exceed the MTU: the MSS shrinks to fit (segments of
                    // at most MTU bytes with their Ethernet header).
                    let fit = (mtu as u16).saturating_sub(h.l2 + h.l3 + h.l4);
                    // SAFETY: reads and writes a field of an mbuf that is ours.
                    unsafe {
                        let mss = dpdk_sys::ff_mbuf_tso_segsz(raw);
                        if mss == 0 || mss > fit {
                            dpdk_sys::ff_mbuf_set_tso_segsz(raw, fit);
                        }
                    }
                }
                // SAFETY: raw is ours; the driver reads these fields for TSO.
                unsafe {
                    dpdk_sys::ff_mbuf_set_tx_offload(
                        raw,
                        keep | TX_TCP_SEG | TX_TCP_CKSUM | ip,
                        h.l2,
                        h.l3,
                        h.l4,
                    )
                };
                if n == OUT {
                    sent += self.send(&mut out, &mut n);
                }
                out[n] = raw;
                n += 1;
                continue;
            }
            if !h.ipv4 {
                self.drop_oversize(raw);
                continue;
            }
            let hdrs = u32::from(h.l2 + h.l3 + h.l4);
            // SAFETY: reads fields of a valid mbuf.
            let (pkt_len, mss) =
                unsafe { ((*raw).pkt_len, u32::from(dpdk_sys::ff_mbuf_tso_segsz(raw))) };
            let mut frame = mtu + u32::from(h.l2);
            if mss > 0 {
                frame = frame.min(hdrs + mss);
            }
            if frame <= hdrs {
                self.drop_oversize(raw);
                continue;
            }
            if pkt_len <= frame {
                // Fits as it is: only the checksums (a TSO port before may have
                // left a pseudo-header sum in the shared buffer).
                // SAFETY: raw is ours with its headers in the first segment.
                unsafe {
                    dpdk_sys::ff_tcp4_fill_checksums(raw, h.l2);
                    dpdk_sys::ff_mbuf_set_tx_offload(raw, keep & !RX_LRO, h.l2, h.l3, h.l4);
                }
                if n == OUT {
                    sent += self.send(&mut out, &mut n);
                }
                out[n] = raw;
                n += 1;
                continue;
            }
            let segments = (pkt_len - hdrs).div_ceil(frame - hdrs) as usize;
            if segments > OUT {
                self.drop_oversize(raw);
                continue;
            }
            if OUT - n < segments {
                sent += self.send(&mut out, &mut n);
            }
            let ctx = dpdk_sys::rte_gso_ctx {
                direct_pool: self.pool,
                indirect_pool: self.pool,
                flag: 0,
                gso_types: TX_OFFLOAD_TCP_TSO as u32,
                gso_size: frame as u16,
            };
            // SAFETY: raw is ours; librte_gso reads these fields.
            unsafe {
                dpdk_sys::ff_mbuf_set_tx_offload(raw, keep | TX_TCP_SEG | TX_IPV4, h.l2, h.l3, h.l4)
            };
            // SAFETY: out has OUT - n free slots; on success the segments hold the
            // references to raw's data and raw is no longer ours; on failure it is.
            let made = unsafe {
                dpdk_sys::rte_gso_segment(raw, &ctx, out.as_mut_ptr().add(n), (OUT - n) as u16)
            };
            if made < 0 {
                self.drop_oversize(raw);
                continue;
            }
            if made == 0 {
                // Nothing to cut after all: the frame goes as it is.
                // SAFETY: raw is ours with its headers in the first segment.
                unsafe {
                    dpdk_sys::ff_tcp4_fill_checksums(raw, h.l2);
                    dpdk_sys::ff_mbuf_set_tx_offload(raw, keep & !RX_LRO, h.l2, h.l3, h.l4);
                }
                out[n] = raw;
                n += 1;
                continue;
            }
            for &seg in &out[n..n + made as usize] {
                // SAFETY: each segment is a new mbuf whose headers (copied) are
                // in its first, private, mbuf.
                unsafe {
                    dpdk_sys::ff_tcp4_fill_checksums(seg, h.l2);
                    dpdk_sys::ff_mbuf_set_tx_offload(seg, 0, h.l2, h.l3, h.l4);
                }
            }
            // SAFETY: the segments hold their own references to the payload
            // (librte_gso leaves the input to its caller).
            unsafe { dpdk_sys::ff_pktmbuf_free(raw) };
            n += made as usize;
        }
        sent + self.send(&mut out, &mut n)
    }

    fn drop_oversize(&mut self, raw: *mut rte_mbuf) {
        // SAFETY: raw is ours and not queued anywhere.
        unsafe { dpdk_sys::ff_pktmbuf_free(raw) };
        self.drops.oversize += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Eal, Mbuf, Mempool, Port, PortConfig};

    /// Ones' complement sum of 16-bit words.
    fn sum(mut acc: u32, d: &[u8]) -> u32 {
        for c in d.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        acc
    }

    fn fold(mut acc: u32) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// The bytes of a chained mbuf.
    fn bytes(m: &Mbuf) -> Vec<u8> {
        let mut out = Vec::new();
        let mut seg = m.as_raw();
        while !seg.is_null() {
            // SAFETY: a valid chain: each segment's data_len bytes at mtod.
            unsafe {
                out.extend_from_slice(std::slice::from_raw_parts(
                    ((*seg).buf_addr as *const u8).add(usize::from((*seg).data_off)),
                    usize::from((*seg).data_len),
                ));
                seg = (*seg).next;
            }
        }
        out
    }

    /// Ethernet, IPv4 or IPv6, TCP (no options), `payload` bytes.
    fn tcp_frame(ipv4: bool, payload: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if ipv4 {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0]);
            f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        } else {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
            f.extend_from_slice(&[6, 64]);
            f.extend_from_slice(&[0xfd; 32]);
        }
        f.extend_from_slice(&[0x13, 0x88, 0x14, 0x51, 0, 0, 0, 100, 0, 0, 0, 0, 0x50, 0x18]);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..payload).map(|i| (i % 251) as u8));
        f
    }

    /// A frame as the vhost PMD hands over a guest's TSO frame: chained mbufs,
    /// RX_LRO, the guest's MSS.
    fn tso_mbuf(pool: &Mempool, frame: &[u8], mss: u16) -> Mbuf {
        let mut parts = frame.chunks(1800);
        let head = Mbuf::from_bytes(pool, parts.next().unwrap()).unwrap();
        for p in parts {
            let tail = Mbuf::from_bytes(pool, p).unwrap();
            // SAFETY: two valid mbufs; the head takes ownership of the tail.
            assert_eq!(
                unsafe { dpdk_sys::ff_pktmbuf_chain(head.as_raw(), tail.into_raw()) },
                0
            );
        }
        // SAFETY: the mbuf is ours.
        unsafe {
            (*head.as_raw()).ol_flags = RX_LRO;
            dpdk_sys::ff_mbuf_set_tso_segsz(head.as_raw(), mss);
        }
        head
    }

    /// Through a net_ring port (no TSO, a loopback): a 6000-byte TCP/IPv4 frame
    /// leaves as segments of the guest's MSS whose payloads add up to the
    /// original and whose IPv4 and TCP checksums are right; a TCP/IPv6 one
    /// cannot be segmented and is counted as oversize, not sent.
    #[test]
    fn tso_frames_are_segmented_in_software_or_counted_as_oversize() {
        let args: Vec<String> = [
            "offload-test",
            "-l",
            "0",
            "--no-pci",
            "--in-memory",
            "--file-prefix",
            "ff-t-dpdk-offload",
            "--socket-limit",
            "128",
            "--log-level",
            "lib.eal:error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let eal = Eal::init(&args).expect("EAL (hugepages: tests/setup-host.sh)");
        let pool = Mempool::pktmbuf(&eal, "offload_test", 2047, 0, 2048 + 128).unwrap();
        let port = Port::probe(&eal, "net_ring_offload0").unwrap();
        let cfg = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 512,
            tx_descriptors: 512,
        };
        let (mut rx, mut tx) = port.configure(&cfg, &pool).unwrap();
        let (mut rx, mut tx) = (rx.remove(0), tx.remove(0));
        port.start().unwrap();

        let frame = tcp_frame(true, 6000);
        let mut burst = MbufBurst::new();
        burst.push(tso_mbuf(&pool, &frame, 1000)).unwrap();
        assert!(burst.oversize);
        let sent = tx.tx_burst(&mut burst);
        assert_eq!((sent, tx.take_drops()), (6, TxDrops::default()));
        let mut got = MbufBurst::new();
        assert_eq!(rx.rx_burst(&mut got), 6);
        let mut payload = Vec::new();
        for (i, m) in got.drain().enumerate() {
            let b = bytes(&m);
            assert_eq!(b.len(), 54 + 1000, "segment {i}");
            assert_eq!(fold(sum(0, &b[14..34])), 0xffff, "IPv4 checksum {i}");
            assert_eq!(
                usize::from(u16::from_be_bytes([b[16], b[17]])),
                b.len() - 14
            );
            let tcp = &b[34..];
            let pseudo = sum(sum(0, &b[26..34]), &[0, 6]) + tcp.len() as u32;
            assert_eq!(fold(sum(pseudo, tcp)), 0xffff, "TCP checksum {i}");
            // Sequence numbers follow the payload.
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            assert_eq!(seq, 100 + 1000 * i as u32);
            payload.extend_from_slice(&tcp[20..]);
        }
        assert_eq!(payload, &frame[54..]);

        let mut burst = MbufBurst::new();
        burst
            .push(tso_mbuf(&pool, &tcp_frame(false, 6000), 1000))
            .unwrap();
        assert_eq!(tx.tx_burst(&mut burst), 0);
        assert_eq!(
            tx.take_drops(),
            TxDrops {
                dropped: 0,
                oversize: 1
            }
        );
        assert_eq!(rx.rx_burst(&mut got), 0);
        port.stop().unwrap();
        port.remove().unwrap();
    }

    fn frame(eth: &[u8], ip: &[u8], tcp_doff: u8) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(eth);
        f.extend_from_slice(ip);
        let mut tcp = vec![0u8; usize::from(tcp_doff) * 4];
        tcp[12] = tcp_doff << 4;
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn tcp_header_lengths_of_plain_tagged_and_v6_frames() {
        let mut v4 = vec![0x45u8; 20];
        v4[9] = 6;
        assert_eq!(
            tcp_headers(&frame(&[0x08, 0x00], &v4, 5)),
            Some(TcpHeaders {
                l2: 14,
                l3: 20,
                l4: 20,
                ipv4: true
            })
        );
        let mut opts = vec![0x46u8; 24];
        opts[9] = 6;
        assert_eq!(
            tcp_headers(&frame(&[0x81, 0x00, 0, 7, 0x08, 0x00], &opts, 8)),
            Some(TcpHeaders {
                l2: 18,
                l3: 24,
                l4: 32,
                ipv4: true
            })
        );
        let mut v6 = vec![0x60u8; 40];
        v6[6] = 6;
        assert_eq!(
            tcp_headers(&frame(&[0x86, 0xdd], &v6, 5)).map(|h| (h.l3, h.ipv4)),
            Some((40, false))
        );
        // UDP, and a TCP header cut short: not segmentable.
        v4[9] = 17;
        assert_eq!(tcp_headers(&frame(&[0x08, 0x00], &v4, 5)), None);
        v4[9] = 6;
        let mut short = frame(&[0x08, 0x00], &v4, 5);
        short.truncate(40);
        assert_eq!(tcp_headers(&short), None);
    }
}
