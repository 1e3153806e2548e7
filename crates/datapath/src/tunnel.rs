//! Tunnel ports (VXLAN, Geneve) and the underlay they use.
//!
//! A tunnel port is not an ethdev: it has an OpenFlow number, and its packets leave and
//! arrive encapsulated on an **uplink**, an ordinary port. Workers encapsulate on output
//! to a tunnel port ([`Tunnels`], read-only for them apart from atomics) and decapsulate
//! on rx from an uplink *before* the pipeline, so the pipeline sees the inner frame with
//! `in_port` = the tunnel port and `tunnel_id` = the VNI.
//!
//! The switch owns each tunnel's `local_ip` on its uplink. The underlay's slow work,
//! answering ARP and ICMP echo for it and resolving next hops by ARP, runs on the control
//! plane ([`Underlay::tick`]): workers hand it ARP and ICMP for a local IP through a
//! bounded queue (full: dropped and counted) and read the resolved MACs from atomics.
//! Nothing is taken from the host kernel's routing or neighbour tables.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dpdk::Mbuf;
use packet::tunnel::TunnelKind;
use packet::wire::ethernet::Mac;
use packet::wire::{arp, checksum, ethertype, icmpv4, ip_proto, ipv4};
use serde::Serialize;

/// One tunnel port to create, as the control plane decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    pub name: String,
    pub ofport: u32,
    pub kind: TunnelKind,
    /// OpenFlow number of the port the outer packets use.
    pub uplink: u32,
    /// The switch's address on the uplink, and the length of the uplink's on-link prefix.
    pub local_ip: [u8; 4],
    pub local_prefix: u8,
    /// The far endpoint; [`REMOTE_FROM_FLOW`] (0.0.0.0, OVS's `remote_ip=flow`): each
    /// packet's `tun_dst`, and any remote accepted on rx.
    pub remote_ip: [u8; 4],
    /// The VNI; `None`: taken from the flow's `tunnel_id` on output, any VNI accepted on rx.
    pub vni: Option<u32>,
    pub dst_port: u16,
    /// Fill the outer UDP checksum.
    pub csum: bool,
    pub ttl: u8,
}

/// The `remote_ip` of a flow-based tunnel port (`remote_ip = "flow"`): the outer
/// destination is each packet's `tun_dst`. 0.0.0.0 is never a remote endpoint.
pub const REMOTE_FROM_FLOW: [u8; 4] = [0; 4];

impl TunnelSpec {
    /// Whether the remote endpoint comes from the packet's `tun_dst`.
    #[inline]
    pub fn remote_is_flow(&self) -> bool {
        self.remote_ip == REMOTE_FROM_FLOW
    }
}

/// A Geneve option that the TLV map (`ovs-ofctl add-tlv-map`) assigns to a
/// `tun_metadataN` field: its class, type and data length in bytes (0 or 4: the key keeps
/// 4 bytes per field, [`packet::TUN_METADATA_FIELDS`] fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeneveOption {
    pub class: u16,
    pub type_: u8,
    pub len: u8,
}

/// The TLV map as workers use it, by `tun_metadata` index.
pub type GeneveOptionMap = [Option<GeneveOption>; packet::TUN_METADATA_FIELDS];

/// The TLV map in one atomic word, so a change reaches the workers without a new
/// [`Tunnels`]: 32 bits per index, `class << 16 | type << 8 | 0x80 (mapped) | len / 4`.
#[derive(Debug, Default)]
pub(crate) struct GeneveMapCell(AtomicU64);

impl GeneveMapCell {
    pub(crate) fn store(&self, map: &GeneveOptionMap) {
        let mut w = 0u64;
        for (i, o) in map.iter().enumerate() {
            if let Some(o) = o {
                let v = (u32::from(o.class) << 16)
                    | (u32::from(o.type_) << 8)
                    | 0x80
                    | u32::from(o.len / 4);
                w |= u64::from(v) << (32 * (1 - i));
            }
        }
        self.0.store(w, Relaxed);
    }

    #[inline]
    pub(crate) fn load(&self) -> GeneveOptionMap {
        let w = self.0.load(Relaxed);
        let mut map = GeneveOptionMap::default();
        for (i, m) in map.iter_mut().enumerate() {
            let v = (w >> (32 * (1 - i))) as u32;
            if v & 0x80 != 0 {
                *m = Some(GeneveOption {
                    class: (v >> 16) as u16,
                    type_: (v >> 8) as u8,
                    len: (v as u8 & 0x7f) * 4,
                });
            }
        }
        map
    }
}

/// The key's Geneve option word ([`packet::TUN_METADATA_WORD`]) for a decapsulated
/// frame's options: the data of each option the map names (the first one if repeated).
pub fn options_to_word(map: &GeneveOptionMap, options: &[u8]) -> u64 {
    if map.iter().all(Option::is_none) {
        return 0;
    }
    let mut w = 0u64;
    for o in packet::wire::geneve::Options::new(options).map_while(Result::ok) {
        for (i, m) in map.iter().enumerate() {
            let Some(m) = m else { continue };
            if m.class == o.class && m.type_ == o.type_ && o.data.len() == usize::from(m.len) {
                let mut d = [0u8; 4];
                d[4 - o.data.len()..].copy_from_slice(o.data);
                w |= u64::from(u32::from_be_bytes(d)) << (32 * (1 - i));
            }
        }
    }
    w
}

/// Encodes the options to send for a key's option word into `out` (room for every
/// index): each mapped option whose data is nonzero (the key has no presence bit, so
/// an option whose value is zero is not sent). Returns the bytes written.
pub fn word_to_options(map: &GeneveOptionMap, word: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    for (i, m) in map.iter().enumerate() {
        let Some(m) = m else { continue };
        let data = ((word >> (32 * (1 - i))) as u32).to_be_bytes();
        if m.len == 0 || data == [0; 4] {
            continue;
        }
        n += packet::wire::geneve::emit_option(&mut out[n..], m.class, m.type_, &data);
    }
    n
}

/// Room [`word_to_options`] needs: a header and 4 bytes per index.
pub const GENEVE_OPTIONS_ROOM: usize = 8 * packet::TUN_METADATA_FIELDS;

/// Underlay settings shared by every tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderlaySettings {
    /// Routes to remote endpoints not on the uplink's prefix: (prefix, length, next hop),
    /// longest prefix first wins.
    pub routes: Vec<([u8; 4], u8, [u8; 4])>,
    /// Next hop for everything else off-link.
    pub gateway: Option<[u8; 4]>,
    /// A resolved neighbour is asked again after this long.
    pub neighbour_timeout: Duration,
    /// Largest outer IPv4 packet the uplink carries (its MTU).
    pub uplink_mtu: u16,
    /// Static next hops (IP, MAC), on every uplink: resolved from the start, never asked
    /// by ARP, never expire, not changed by ARP they send (`state` "permanent").
    pub static_neighbours: Vec<([u8; 4], Mac)>,
}

impl Default for UnderlaySettings {
    fn default() -> Self {
        UnderlaySettings {
            routes: Vec::new(),
            gateway: None,
            neighbour_timeout: Duration::from_secs(60),
            uplink_mtu: 1500,
            static_neighbours: Vec::new(),
        }
    }
}

/// A counter several workers add to (tunnel traffic crosses workers): atomic adds.
#[derive(Debug, Default)]
pub struct SharedCounter(AtomicU64);

impl SharedCounter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per tunnel port (and so per remote endpoint: a port has one).
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub tx_packets: SharedCounter,
    pub tx_bytes: SharedCounter,
    pub rx_packets: SharedCounter,
    pub rx_bytes: SharedCounter,
    /// Not sent: the next hop's MAC is not known (yet).
    pub no_neighbour: SharedCounter,
    /// Not sent: too big for the uplink's MTU once encapsulated.
    pub mtu_drops: SharedCounter,
    /// Not sent: no buffer for the copy, or no headroom.
    pub encap_failed: SharedCounter,
    /// Not sent: output to a `remote_ip = "flow"` port without a `tun_dst` (or with one
    /// no route reaches).
    pub no_tun_dst: SharedCounter,
    /// Of `mtu_drops`: IPv4 with DF, handed to the control plane to answer with ICMP
    /// fragmentation-needed.
    pub frag_needed: SharedCounter,
}

/// Oversized IPv4 frames with DF set, for the control plane to answer with ICMP
/// fragmentation-needed: (the slot they came in on, the inner IP MTU to advertise, the
/// frame). Bounded by [`TOO_BIG_QUEUE`]: past it they are only dropped (`mtu_drops`).
pub(crate) type TooBigQueue = ArrayQueue<(usize, u16, Mbuf)>;
/// Its bound.
pub(crate) const TOO_BIG_QUEUE: usize = 64;

/// Frames on an uplink addressed to a local IP that were not decapsulated, by reason.
#[derive(Debug, Default)]
pub struct UnderlayCounters {
    /// Outer IPv4/UDP or tunnel header cut short or inconsistent.
    pub truncated: SharedCounter,
    /// Outer IPv4 or UDP checksum wrong.
    pub bad_checksum: SharedCounter,
    /// UDP to a local IP on a port no tunnel listens on.
    pub wrong_port: SharedCounter,
    /// A VNI (or remote) no tunnel port has.
    pub wrong_vni: SharedCounter,
    /// Other protocols to a local IP, fragments, Geneve frames the switch does not take.
    pub other: SharedCounter,
    /// ARP and ICMP handed to the control plane.
    pub slow_path: SharedCounter,
    /// ... and dropped because its queue was full.
    pub slow_path_dropped: SharedCounter,
}

/// A next hop's MAC as workers read it: 0 unresolved, else `1 << 48 | mac`.
#[derive(Debug, Default)]
pub(crate) struct NeighbourMac(AtomicU64);

impl NeighbourMac {
    #[inline]
    pub fn get(&self) -> Option<Mac> {
        let v = self.raw();
        (v != 0).then(|| mac_of_raw(v))
    }
    /// The cell's value as it is stored (0: unresolved): what a tunnel output carries to
    /// the end of the walk, one word instead of six bytes and a flag to unpack.
    #[inline]
    pub fn raw(&self) -> u64 {
        self.0.load(Relaxed)
    }
    fn set(&self, mac: Option<Mac>) {
        self.0.store(raw_of_mac(mac), Relaxed);
    }
}

/// A MAC in [`NeighbourMac`]'s encoding: 0 for none, else `1 << 48 | mac`.
#[inline]
pub(crate) fn raw_of_mac(mac: Option<Mac>) -> u64 {
    mac.map_or(0, |m| {
        u64::from_be_bytes([0, 1, m[0], m[1], m[2], m[3], m[4], m[5]])
    })
}

/// The MAC in a [`NeighbourMac`] value (zero for 0, unresolved).
#[inline]
pub(crate) fn mac_of_raw(v: u64) -> Mac {
    let b = (v << 16).to_be_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// A tunnel port as workers use it.
#[derive(Debug)]
pub(crate) struct TunnelPort {
    pub spec: TunnelSpec,
    pub uplink_slot: usize,
    pub uplink_mac: Mac,
    pub next_hop: [u8; 4],
    pub neighbour: Arc<NeighbourMac>,
    pub counters: Arc<TunnelCounters>,
    /// Largest inner frame (Ethernet header included) that fits the uplink.
    pub max_inner: usize,
    /// The outer headers' constant bytes (uplink MAC, UDP port, TTL, tunnel flags).
    pub template: packet::tunnel::EncapTemplate,
    /// With a fixed remote and VNI: the whole outer headers but the next hop's MAC and
    /// the lengths, checksum and source port, for the packets that leave from the port's
    /// `local_ip` without Geneve options (all of them, unless a flow sets `tun_src` or
    /// option data).
    pub fixed: Option<packet::tunnel::FixedEncap>,
}

/// Every tunnel port, for the workers: immutable apart from atomics; a change makes a
/// new one ([`crate::datapath::Command::SetTunnels`]).
#[derive(Debug)]
pub(crate) struct Tunnels {
    /// Sorted by OpenFlow number.
    pub ports: Vec<TunnelPort>,
    /// Slots of the uplinks (few: a linear scan).
    pub uplinks: Vec<usize>,
    pub underlay: Arc<UnderlayCounters>,
    /// Routes and gateway, for the next hops of `remote_ip = "flow"` ports.
    pub settings: UnderlaySettings,
    /// The next hops of `remote_ip = "flow"` ports (kept across changes of the set).
    pub flow_hops: Arc<FlowHops>,
    /// Frames to answer with ICMP fragmentation-needed (kept across changes of the set).
    pub too_big: Arc<TooBigQueue>,
    /// Encapsulated frames whose next hop is unresolved, for the control plane to hold.
    pub pending: Arc<PendingQueue>,
    /// The Geneve TLV map (kept across changes of the set).
    pub geneve_map: Arc<GeneveMapCell>,
}

/// Encapsulated frames waiting for their next hop's MAC: (uplink slot, next hop, frame
/// with a zero Ethernet destination). The control plane moves them to the neighbour's
/// own queue ([`NEIGHBOUR_QUEUE`]); this hand-over is bounded by [`PENDING_QUEUE`] (full:
/// dropped and counted as `no_neighbour_drops`).
pub(crate) type PendingQueue = ArrayQueue<(usize, [u8; 4], Mbuf)>;
/// Its bound.
pub(crate) const PENDING_QUEUE: usize = 64;
/// Frames held per unresolved next hop: sent when its ARP reply arrives, dropped (and
/// counted) past this many or when it stops answering (three requests, about 3 s).
pub const NEIGHBOUR_QUEUE: usize = 16;

impl Default for Tunnels {
    fn default() -> Self {
        Tunnels {
            ports: Vec::new(),
            uplinks: Vec::new(),
            underlay: Arc::default(),
            settings: UnderlaySettings::default(),
            flow_hops: Arc::default(),
            too_big: Arc::new(TooBigQueue::new(TOO_BIG_QUEUE)),
            pending: Arc::new(PendingQueue::new(PENDING_QUEUE)),
            geneve_map: Arc::default(),
        }
    }
}

/// Next hops that `remote_ip = "flow"` tunnels reached, which workers find by (uplink, IP)
/// without a lock: the control plane assigns a cell on a worker's request (a bounded
/// queue) and copies the neighbour table's MAC into it every tick. At most
/// [`FLOW_HOPS`] next hops: beyond that, packets to new ones are dropped and counted as
/// `no_neighbour_drops` (a flow-based tunnel to more next hops than that needs routes
/// through a gateway).
#[derive(Debug)]
pub(crate) struct FlowHops {
    cells: Box<[FlowHop]>,
    /// (uplink slot, local IP, next hop) the workers want resolved.
    requests: ArrayQueue<(usize, [u8; 4], [u8; 4])>,
}

/// How many next hops flow-based tunnels can use at once.
pub const FLOW_HOPS: usize = 64;

#[derive(Debug, Default)]
struct FlowHop {
    /// 0: free; else `1 << 48 | slot << 32 | ip`.
    key: AtomicU64,
    mac: NeighbourMac,
}

impl Default for FlowHops {
    fn default() -> Self {
        FlowHops {
            cells: (0..FLOW_HOPS).map(|_| FlowHop::default()).collect(),
            requests: ArrayQueue::new(FLOW_HOPS),
        }
    }
}

fn hop_key(slot: usize, ip: [u8; 4]) -> u64 {
    (1 << 48) | ((slot as u64 & 0xffff) << 32) | u64::from(u32::from_be_bytes(ip))
}

impl FlowHops {
    /// The MAC of next hop `ip` on uplink `slot`; unknown: asks the control plane to
    /// resolve it (a full request queue drops the ask: the next packet asks again).
    pub fn mac(&self, slot: usize, local_ip: [u8; 4], ip: [u8; 4]) -> Option<Mac> {
        let k = hop_key(slot, ip);
        if let Some(c) = self.cells.iter().find(|c| c.key.load(Relaxed) == k) {
            return c.mac.get();
        }
        let _ = self.requests.push((slot, local_ip, ip));
        None
    }
}

/// The next hop toward `remote` from a local address on `local/len`: the remote itself
/// on-link, else the longest matching route, else the gateway.
pub fn route(
    settings: &UnderlaySettings,
    local: [u8; 4],
    len: u8,
    remote: [u8; 4],
) -> Option<[u8; 4]> {
    if in_prefix(remote, local, len) {
        return Some(remote);
    }
    settings
        .routes
        .iter()
        .filter(|r| in_prefix(remote, r.0, r.1))
        .max_by_key(|r| r.1)
        .map(|r| r.2)
        .or(settings.gateway)
}

/// What the uplink's rx does with one frame.
pub(crate) enum Rx {
    /// Not the tunnel layer's: through the pipeline as it came.
    Pass,
    /// ARP or ICMP for a local IP: to the control plane.
    Slow,
    /// Addressed to a local IP but no good: dropped (counted already).
    Drop,
    /// For tunnel port `ports[.0]` with VNI `.1`; the inner frame starts at `.2`; the
    /// outer IPv4 source is `.3`; `.4` the mapped Geneve options' key word.
    Decap(usize, u32, usize, [u8; 4], u64),
}

impl Tunnels {
    #[inline]
    pub fn is_uplink(&self, slot: usize) -> bool {
        !self.uplinks.is_empty() && self.uplinks.contains(&slot)
    }

    #[inline]
    pub fn get(&self, ofport: u32) -> Option<&TunnelPort> {
        self.index_of(ofport).map(|i| &self.ports[i])
    }

    /// Where tunnel port `ofport` is in [`Tunnels::ports`].
    #[inline]
    pub fn index_of(&self, ofport: u32) -> Option<usize> {
        if self.ports.is_empty() {
            return None;
        }
        self.ports
            .binary_search_by_key(&ofport, |p| p.spec.ofport)
            .ok()
    }

    /// Whether the switch owns `ip` on uplink `slot` (a tunnel's `local_ip` there).
    #[inline]
    pub fn owns(&self, slot: usize, ip: [u8; 4]) -> bool {
        self.is_local(slot, ip)
    }

    fn is_local(&self, slot: usize, ip: [u8; 4]) -> bool {
        self.ports
            .iter()
            .any(|p| p.uplink_slot == slot && p.spec.local_ip == ip)
    }

    /// Classifies a frame received on uplink `slot`.
    pub fn classify(&self, slot: usize, f: &[u8]) -> Rx {
        use packet::tunnel::{parse_outer, parse_tunnel, verify_udp_checksum, DecapError};
        if f.len() < 14 {
            return Rx::Pass;
        }
        let et = u16::from_be_bytes([f[12], f[13]]);
        if et == ethertype::ARP {
            return match arp::Packet::new_checked(&f[14..]) {
                Ok(a) if self.is_local(slot, a.tpa()) => Rx::Slow,
                _ => Rx::Pass,
            };
        }
        if et != ethertype::IPV4 || f.len() < 34 {
            return Rx::Pass;
        }
        let dst = [f[30], f[31], f[32], f[33]];
        if !self.is_local(slot, dst) {
            return Rx::Pass;
        }
        let proto = f[23];
        if proto == ip_proto::ICMP {
            return Rx::Slow;
        }
        if proto != ip_proto::UDP {
            self.underlay.other.add(1);
            return Rx::Drop;
        }
        let count = |e: DecapError| {
            let c = &self.underlay;
            match e {
                DecapError::Truncated | DecapError::BadTunnelHeader => c.truncated.add(1),
                DecapError::Ipv4Checksum | DecapError::UdpChecksum => c.bad_checksum.add(1),
                DecapError::Fragment | DecapError::GeneveUnsupported => c.other.add(1),
            }
            Rx::Drop
        };
        let o = match parse_outer(f) {
            Ok(Some(o)) => o,
            Ok(None) => {
                self.underlay.truncated.add(1);
                return Rx::Drop;
            }
            Err(e) => return count(e),
        };
        let mut port_known = false;
        let mut checked = false;
        // A port with this remote wins over a flow-based one (any remote), as in OVS.
        let mut from_flow = None;
        for (i, p) in self.ports.iter().enumerate() {
            let s = &p.spec;
            if p.uplink_slot != slot || s.local_ip != o.ip_dst || s.dst_port != o.dst_port {
                continue;
            }
            port_known = true;
            if !checked {
                if let Err(e) = verify_udp_checksum(f, &o) {
                    return count(e);
                }
                checked = true;
            }
            let t = match parse_tunnel(f, &o, s.kind) {
                Ok(t) => t,
                Err(e) => return count(e),
            };
            if s.vni.is_some_and(|v| v != t.vni) {
                continue;
            }
            let md = || {
                if t.options.1 > t.options.0 {
                    options_to_word(&self.geneve_map.load(), &f[t.options.0..t.options.1])
                } else {
                    0
                }
            };
            if s.remote_ip == o.ip_src {
                return Rx::Decap(i, t.vni, t.inner_offset, o.ip_src, md());
            }
            if s.remote_is_flow() && from_flow.is_none() {
                from_flow = Some(Rx::Decap(i, t.vni, t.inner_offset, o.ip_src, md()));
            }
        }
        if let Some(rx) = from_flow {
            return rx;
        }
        if port_known {
            self.underlay.wrong_vni.add(1);
        } else {
            self.underlay.wrong_port.add(1);
        }
        Rx::Drop
    }
}

/// A neighbour as `ferroflowctl tunnel neighbours` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NeighbourStatus {
    pub ip: String,
    /// Empty while unresolved.
    pub mac: String,
    pub uplink: u32,
    /// Seconds since the last ARP from it (none yet: -1).
    pub age_s: i64,
    pub state: &'static str,
    /// ARP requests sent for it.
    pub requests: u64,
}

/// A tunnel port's counters as the control plane reports them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TunnelStatus {
    pub name: String,
    pub ofport: u32,
    pub kind: &'static str,
    pub local_ip: String,
    pub remote_ip: String,
    pub vni: String,
    pub dst_port: u16,
    pub next_hop: String,
    pub next_hop_mac: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub no_neighbour_drops: u64,
    pub mtu_drops: u64,
    pub encap_failed: u64,
    /// `remote_ip = "flow"` ports: outputs without a `tun_dst` (or none routable).
    pub no_tun_dst_drops: u64,
    /// Of `mtu_drops`: IPv4 with DF, answered with ICMP fragmentation-needed.
    pub frag_needed: u64,
}

/// Underlay counters as the control plane reports them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct UnderlayStatus {
    pub decap_truncated: u64,
    pub decap_bad_checksum: u64,
    pub decap_wrong_port: u64,
    pub decap_wrong_vni: u64,
    pub decap_other: u64,
    pub slow_path: u64,
    pub slow_path_dropped: u64,
    pub arp_replies_sent: u64,
    pub icmp_echo_replies_sent: u64,
    /// ICMP fragmentation-needed sent back to senders of oversized IPv4 with DF.
    pub icmp_frag_needed_sent: u64,
    /// Encapsulated frames held while their next hop resolved; sent once it did; dropped
    /// because the next hop's queue was full; dropped because it never answered.
    pub neighbour_queued: u64,
    pub neighbour_queue_sent: u64,
    pub neighbour_queue_overflow: u64,
    pub neighbour_queue_timeouts: u64,
}

/// Frames the workers hand to the control plane, by uplink slot.
pub(crate) type SlowQueue = ArrayQueue<(usize, Mbuf)>;
/// Its bound: a flood of ARP at a local IP costs at most this many buffers.
pub(crate) const SLOW_QUEUE: usize = 256;

/// One next hop the control plane resolves.
struct Neighbour {
    uplink_slot: usize,
    uplink_ofport: u32,
    uplink_mac: Mac,
    /// The local IP ARP requests come from.
    local_ip: [u8; 4],
    ip: [u8; 4],
    mac: Arc<NeighbourMac>,
    learned: Option<Instant>,
    last_request: Option<Instant>,
    /// Requests sent since the last answer.
    unanswered: u32,
    requests: u64,
    /// Encapsulated frames waiting for the MAC (at most [`NEIGHBOUR_QUEUE`]).
    queue: std::collections::VecDeque<Mbuf>,
    /// A static entry ([`UnderlaySettings::static_neighbours`]): no ARP, no expiry.
    permanent: bool,
}

/// The control plane's side of the underlay: the neighbour table, ARP and ICMP answers.
#[derive(Default)]
pub(crate) struct Underlay {
    neighbours: Vec<Neighbour>,
    pub settings: UnderlaySettings,
    arp_replies: u64,
    echo_replies: u64,
    frag_needed: u64,
    queued: u64,
    queue_sent: u64,
    queue_overflow: u64,
    queue_timeouts: u64,
}

/// Requests for an unresolved neighbour go out this often.
const REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// A neighbour that answered none of this many requests is forgotten (unresolved).
const MAX_UNANSWERED: u32 = 3;

/// Packets per tick the control plane takes from the slow-path queue.
const SLOW_PER_TICK: usize = 256;

/// Whether `ip` is in `prefix/len`.
pub fn in_prefix(ip: [u8; 4], prefix: [u8; 4], len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from_be_bytes(ip) & mask == u32::from_be_bytes(prefix) & mask
}

impl Underlay {
    /// The next hop toward `remote` from a local address on `local/len`: the remote itself
    /// on-link, else the longest matching route, else the gateway.
    pub fn next_hop(&self, local: [u8; 4], len: u8, remote: [u8; 4]) -> Option<[u8; 4]> {
        route(&self.settings, local, len, remote)
    }

    /// Moves the workers' frames for unresolved next hops to their neighbours' queues, and
    /// sends every queued frame whose next hop is resolved. Bounded: [`PENDING_QUEUE`]
    /// frames taken, [`NEIGHBOUR_QUEUE`] held per next hop.
    fn hold_pending(&mut self, tunnels: &Tunnels, send: &mut dyn FnMut(usize, &[u8])) {
        for _ in 0..PENDING_QUEUE {
            let Some((slot, ip, m)) = tunnels.pending.pop() else {
                break;
            };
            match self
                .neighbours
                .iter_mut()
                .find(|n| n.uplink_slot == slot && n.ip == ip)
            {
                Some(n) if n.queue.len() < NEIGHBOUR_QUEUE => {
                    n.queue.push_back(m);
                    self.queued += 1;
                }
                _ => self.queue_overflow += 1,
            }
        }
        for n in &mut self.neighbours {
            let Some(mac) = n.mac.get() else {
                continue;
            };
            while let Some(mut m) = n.queue.pop_front() {
                if let Some(f) = m.data_mut() {
                    f[0..6].copy_from_slice(&mac);
                    send(n.uplink_slot, f);
                    self.queue_sent += 1;
                }
            }
        }
    }

    /// Takes the flow-based tunnels' requests for next hops (bounded by the queue) into
    /// the neighbour table and copies the resolved MACs to the cells workers read.
    fn sync_flow_hops(&mut self, tunnels: &Tunnels) {
        let hops = &tunnels.flow_hops;
        while let Some((slot, local_ip, ip)) = hops.requests.pop() {
            let k = hop_key(slot, ip);
            if hops.cells.iter().any(|c| c.key.load(Relaxed) == k) {
                continue;
            }
            let Some(up) = tunnels.ports.iter().find(|p| p.uplink_slot == slot) else {
                continue;
            };
            let Some(free) = hops.cells.iter().find(|c| c.key.load(Relaxed) == 0) else {
                tracing::warn!(ip = ?ip, "flow-based tunnel next hops full ({FLOW_HOPS}): not resolved");
                continue;
            };
            let (ofport, mac) = (up.spec.uplink, up.uplink_mac);
            self.neighbour(slot, ofport, mac, local_ip, ip);
            free.mac.set(None);
            free.key.store(k, Relaxed);
        }
        for c in hops.cells.iter() {
            let k = c.key.load(Relaxed);
            if k == 0 {
                continue;
            }
            let mac = self
                .neighbours
                .iter()
                .find(|n| hop_key(n.uplink_slot, n.ip) == k)
                .and_then(|n| n.mac.get());
            c.mac.set(mac);
        }
    }

    /// Applies the static neighbours of the settings to the table: entries named there
    /// take their MAC and stop being asked; entries no longer named go back to ARP.
    pub fn apply_static_neighbours(&mut self) {
        for n in &mut self.neighbours {
            let pinned = self
                .settings
                .static_neighbours
                .iter()
                .find(|s| s.0 == n.ip)
                .map(|s| s.1);
            match pinned {
                Some(mac) => {
                    n.mac.set(Some(mac));
                    n.permanent = true;
                    n.unanswered = 0;
                }
                None if n.permanent => {
                    n.permanent = false;
                    n.mac.set(None);
                    n.learned = None;
                    n.last_request = None;
                }
                None => {}
            }
        }
    }

    /// The shared MAC cell for a next hop, created (unresolved, or with its static MAC)
    /// on first use.
    pub fn neighbour(
        &mut self,
        uplink_slot: usize,
        uplink_ofport: u32,
        uplink_mac: Mac,
        local_ip: [u8; 4],
        ip: [u8; 4],
    ) -> Arc<NeighbourMac> {
        if let Some(n) = self
            .neighbours
            .iter()
            .find(|n| n.uplink_slot == uplink_slot && n.ip == ip)
        {
            return Arc::clone(&n.mac);
        }
        let mac = Arc::new(NeighbourMac::default());
        self.neighbours.push(Neighbour {
            uplink_slot,
            uplink_ofport,
            uplink_mac,
            local_ip,
            ip,
            mac: Arc::clone(&mac),
            learned: None,
            last_request: None,
            unanswered: 0,
            requests: 0,
            queue: std::collections::VecDeque::new(),
            permanent: false,
        });
        self.apply_static_neighbours();
        mac
    }

    /// Answers what the workers queued and sends the ARP requests that are due; `send`
    /// puts a frame out of an uplink slot. Bounded: [`SLOW_PER_TICK`] queued frames and one
    /// request per neighbour.
    pub fn tick(
        &mut self,
        queue: &SlowQueue,
        tunnels: &Tunnels,
        now: Instant,
        send: &mut dyn FnMut(usize, &[u8]),
    ) {
        for _ in 0..SLOW_PER_TICK {
            let Some((slot, m)) = queue.pop() else {
                break;
            };
            self.handle(slot, m.data(), tunnels, now, send);
        }
        for _ in 0..TOO_BIG_QUEUE {
            let Some((slot, mtu, m)) = tunnels.too_big.pop() else {
                break;
            };
            if let Some(reply) = frag_needed(m.data(), mtu) {
                send(slot, &reply);
                self.frag_needed += 1;
            }
        }
        self.sync_flow_hops(tunnels);
        self.hold_pending(tunnels, send);
        let timeout = self.settings.neighbour_timeout;
        for n in &mut self.neighbours {
            if n.permanent {
                continue;
            }
            let fresh = n.learned.is_some_and(|t| now.duration_since(t) < timeout);
            let asked_recently = n
                .last_request
                .is_some_and(|t| now.duration_since(t) < REQUEST_INTERVAL);
            if fresh || asked_recently {
                continue;
            }
            if n.unanswered >= MAX_UNANSWERED && n.mac.get().is_some() {
                tracing::warn!(ip = ?n.ip, "tunnel next hop stopped answering ARP: unresolved");
                n.mac.set(None);
                n.learned = None;
            }
            if n.unanswered >= MAX_UNANSWERED && n.mac.get().is_none() && !n.queue.is_empty() {
                self.queue_timeouts += n.queue.len() as u64;
                n.queue.clear();
            }
            let frame = arp_frame(
                arp::OP_REQUEST,
                n.uplink_mac,
                n.local_ip,
                [0xff; 6],
                [0; 6],
                n.ip,
            );
            send(n.uplink_slot, &frame);
            n.last_request = Some(now);
            n.unanswered = n.unanswered.saturating_add(1);
            n.requests += 1;
        }
    }

    fn handle(
        &mut self,
        slot: usize,
        f: &[u8],
        tunnels: &Tunnels,
        now: Instant,
        send: &mut dyn FnMut(usize, &[u8]),
    ) {
        let Some(port) = tunnels.ports.iter().find(|p| p.uplink_slot == slot) else {
            return;
        };
        let our_mac = port.uplink_mac;
        let et = u16::from_be_bytes([f[12], f[13]]);
        if et == ethertype::ARP {
            let Ok(a) = arp::Packet::new_checked(&f[14..]) else {
                return;
            };
            // Any ARP from a next hop refreshes it: a changed MAC takes effect at once.
            for n in &mut self.neighbours {
                if n.uplink_slot == slot && n.ip == a.spa() && !n.permanent {
                    if n.mac.get() != Some(a.sha()) {
                        tracing::info!(ip = ?n.ip, mac = ?a.sha(), "tunnel next hop resolved");
                    }
                    n.mac.set(Some(a.sha()));
                    n.learned = Some(now);
                    n.unanswered = 0;
                }
            }
            if a.operation() == arp::OP_REQUEST && tunnels.is_local(slot, a.tpa()) {
                let reply = arp_frame(arp::OP_REPLY, our_mac, a.tpa(), a.sha(), a.sha(), a.spa());
                send(slot, &reply);
                self.arp_replies += 1;
            }
            return;
        }
        // ICMP to a local IP: answer echo requests.
        let Ok(ip) = ipv4::Packet::new_checked(&f[14..]) else {
            return;
        };
        let hl = ip.header_len();
        let total = usize::from(ip.total_len());
        if ip.protocol() != ip_proto::ICMP || total > f.len() - 14 || ip.is_fragment() {
            return;
        }
        let icmp = &f[14 + hl..14 + total];
        if icmp.len() < 8 || icmp[0] != icmpv4::ECHO_REQUEST {
            return;
        }
        let mut out = Vec::with_capacity(14 + 20 + icmp.len());
        out.extend_from_slice(&f[6..12]);
        out.extend_from_slice(&our_mac);
        out.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        out.extend_from_slice(&[0u8; 20]);
        out.extend_from_slice(icmp);
        {
            let mut o = ipv4::Packet::new_unchecked(&mut out[14..34]);
            o.set_version_and_header_len(20);
            o.set_total_len((20 + icmp.len()) as u16);
            o.set_ident(ip.ident());
            o.set_frag(false, false, 0);
            o.set_ttl(64);
            o.set_protocol(ip_proto::ICMP);
            o.set_src(ip.dst());
            o.set_dst(ip.src());
            o.fill_checksum();
        }
        let m = &mut out[34..];
        m[0] = icmpv4::ECHO_REPLY;
        m[2..4].fill(0);
        let c = checksum::internet(m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        send(slot, &out);
        self.echo_replies += 1;
    }

    pub fn neighbours(&self, now: Instant) -> Vec<NeighbourStatus> {
        self.neighbours
            .iter()
            .map(|n| {
                let mac = n.mac.get();
                NeighbourStatus {
                    ip: ip_string(n.ip),
                    mac: mac.map(mac_string).unwrap_or_default(),
                    uplink: n.uplink_ofport,
                    age_s: n
                        .learned
                        .map_or(-1, |t| now.duration_since(t).as_secs() as i64),
                    state: match (mac, n.learned) {
                        _ if n.permanent => "permanent",
                        (None, _) => "incomplete",
                        (Some(_), Some(t))
                            if now.duration_since(t) < self.settings.neighbour_timeout =>
                        {
                            "reachable"
                        }
                        _ => "stale",
                    },
                    requests: n.requests,
                }
            })
            .collect()
    }

    pub fn status(&self, c: &UnderlayCounters) -> UnderlayStatus {
        UnderlayStatus {
            decap_truncated: c.truncated.get(),
            decap_bad_checksum: c.bad_checksum.get(),
            decap_wrong_port: c.wrong_port.get(),
            decap_wrong_vni: c.wrong_vni.get(),
            decap_other: c.other.get(),
            slow_path: c.slow_path.get(),
            slow_path_dropped: c.slow_path_dropped.get(),
            arp_replies_sent: self.arp_replies,
            icmp_echo_replies_sent: self.echo_replies,
            icmp_frag_needed_sent: self.frag_needed,
            neighbour_queued: self.queued,
            neighbour_queue_sent: self.queue_sent,
            neighbour_queue_overflow: self.queue_overflow,
            neighbour_queue_timeouts: self.queue_timeouts,
        }
    }
}

/// Whether an (untagged) inner frame is IPv4 with DF set: a sender that asked not to be
/// fragmented, which ICMP fragmentation-needed tells the path MTU.
pub(crate) fn ipv4_df(f: &[u8]) -> bool {
    f.len() >= 34 && f[12..14] == ethertype::IPV4.to_be_bytes() && f[20] & 0x40 != 0
}

/// ICMP destination unreachable, fragmentation needed (type 3 code 4, RFC 1191), from the
/// frame's destination back to its sender, advertising `mtu`; it quotes the IP header and
/// the first 8 bytes of its payload (enough for the sender to find its socket). `None`
/// for what is not a complete IPv4 header, or an ICMP error itself (never answered).
fn frag_needed(f: &[u8], mtu: u16) -> Option<Vec<u8>> {
    let ip = ipv4::Packet::new_checked(f.get(14..)?).ok()?;
    let hl = ip.header_len();
    if ip.protocol() == ip_proto::ICMP && f.get(14 + hl).is_some_and(|t| ![0, 8].contains(t)) {
        return None;
    }
    let quoted = &f[14..(14 + hl + 8).min(f.len())];
    let mut out = Vec::with_capacity(14 + 20 + 8 + quoted.len());
    out.extend_from_slice(&f[6..12]);
    out.extend_from_slice(&f[0..6]);
    out.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quoted);
    {
        let mut o = ipv4::Packet::new_unchecked(&mut out[14..34]);
        o.set_version_and_header_len(20);
        o.set_total_len((20 + 8 + quoted.len()) as u16);
        o.set_ident(0);
        o.set_frag(true, false, 0);
        o.set_ttl(64);
        o.set_protocol(ip_proto::ICMP);
        o.set_src(ip.dst());
        o.set_dst(ip.src());
        o.fill_checksum();
    }
    let c = checksum::internet(&out[34..]);
    out[36..38].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

fn arp_frame(op: u16, sha: Mac, spa: [u8; 4], eth_dst: Mac, tha: Mac, tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&sha);
    f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
    let mut a = arp::Packet::new_unchecked(&mut f[14..]);
    a.init_ethernet_ipv4();
    a.set_operation(op);
    a.set_sha(sha);
    a.set_spa(spa);
    a.set_tha(tha);
    a.set_tpa(tpa);
    f
}

pub fn ip_string(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

pub fn mac_string(m: Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

pub(crate) fn tunnel_status(p: &TunnelPort) -> TunnelStatus {
    let s = &p.spec;
    let c = &p.counters;
    TunnelStatus {
        name: s.name.clone(),
        ofport: s.ofport,
        kind: match s.kind {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        },
        local_ip: ip_string(s.local_ip),
        remote_ip: if s.remote_is_flow() {
            "flow".into()
        } else {
            ip_string(s.remote_ip)
        },
        vni: s.vni.map_or("flow".into(), |v| v.to_string()),
        dst_port: s.dst_port,
        next_hop: if s.remote_is_flow() {
            String::new()
        } else {
            ip_string(p.next_hop)
        },
        next_hop_mac: p.neighbour.get().map(mac_string).unwrap_or_default(),
        tx_packets: c.tx_packets.get(),
        tx_bytes: c.tx_bytes.get(),
        rx_packets: c.rx_packets.get(),
        rx_bytes: c.rx_bytes.get(),
        no_neighbour_drops: c.no_neighbour.get(),
        mtu_drops: c.mtu_drops.get(),
        encap_failed: c.encap_failed.get(),
        no_tun_dst_drops: c.no_tun_dst.get(),
        frag_needed: c.frag_needed.get(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops() {
        let mut u = Underlay::default();
        u.settings.routes = vec![
            ([10, 0, 0, 0], 8, [192, 0, 2, 9]),
            ([10, 1, 0, 0], 16, [192, 0, 2, 8]),
        ];
        u.settings.gateway = Some([192, 0, 2, 254]);
        let l = [192, 0, 2, 1];
        assert_eq!(u.next_hop(l, 24, [192, 0, 2, 2]), Some([192, 0, 2, 2]));
        assert_eq!(u.next_hop(l, 24, [10, 1, 2, 3]), Some([192, 0, 2, 8]));
        assert_eq!(u.next_hop(l, 24, [10, 2, 2, 3]), Some([192, 0, 2, 9]));
        assert_eq!(u.next_hop(l, 24, [198, 51, 100, 1]), Some([192, 0, 2, 254]));
        u.settings.gateway = None;
        assert_eq!(u.next_hop(l, 24, [198, 51, 100, 1]), None);
    }

    #[test]
    fn static_neighbours_are_resolved_and_never_asked() {
        let mut u = Underlay::default();
        let mac = [2, 0, 0, 0, 0xee, 2];
        u.settings.static_neighbours = vec![([192, 0, 2, 2], mac)];
        let l = [192, 0, 2, 1];
        let up = [2, 0, 0, 0, 0, 1];
        let pinned = u.neighbour(0, 2, up, l, [192, 0, 2, 2]);
        let asked = u.neighbour(0, 2, up, l, [192, 0, 2, 3]);
        assert_eq!(pinned.get(), Some(mac));
        assert_eq!(asked.get(), None);
        // A tick asks only the dynamic one (the static one never expires).
        let queue = SlowQueue::new(4);
        let tunnels = Tunnels::default();
        let mut sent = Vec::new();
        let now = Instant::now();
        u.tick(&queue, &tunnels, now, &mut |_, f: &[u8]| {
            sent.push(f.to_vec())
        });
        u.tick(
            &queue,
            &tunnels,
            now + Duration::from_secs(3600),
            &mut |_, f: &[u8]| sent.push(f.to_vec()),
        );
        assert_eq!(sent.len(), 2, "one request a tick, for 192.0.2.3 only");
        assert!(sent.iter().all(|f| f[38..42] == [192, 0, 2, 3]));
        let st = u.neighbours(now);
        assert_eq!(st[0].state, "permanent");
        assert_eq!(st[0].mac, "02:00:00:00:ee:02");
        assert_eq!(st[0].requests, 0);
        // Taken out of the settings: back to ARP, unresolved until it answers.
        u.settings.static_neighbours.clear();
        u.apply_static_neighbours();
        assert_eq!(pinned.get(), None);
        assert_eq!(u.neighbours(now)[0].state, "incomplete");
    }

    #[test]
    fn fragmentation_needed_quotes_the_sender() {
        let mut f = vec![0u8; 14 + 20 + 8 + 1400];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..34]);
            ip.set_version_and_header_len(20);
            ip.set_total_len(1428);
            ip.set_frag(true, false, 0);
            ip.set_ttl(64);
            ip.set_protocol(ip_proto::ICMP);
            ip.set_src([10, 0, 0, 1]);
            ip.set_dst([10, 0, 0, 2]);
            ip.fill_checksum();
        }
        f[34] = icmpv4::ECHO_REQUEST;
        assert!(ipv4_df(&f));
        let r = frag_needed(&f, 1450).expect("an answer");
        assert_eq!(&r[0..6], &f[6..12]);
        assert_eq!(&r[6..12], &f[0..6]);
        let ip = ipv4::Packet::new_checked(&r[14..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), ([10, 0, 0, 2], [10, 0, 0, 1]));
        assert_eq!(usize::from(ip.total_len()), r.len() - 14);
        assert_eq!(&r[34..36], &[3, 4]);
        assert_eq!(u16::from_be_bytes([r[40], r[41]]), 1450);
        assert_eq!(&r[42..], &f[14..14 + 28]);
        assert_eq!(checksum::internet(&r[34..]), 0);
        // Not DF: no answer asked for; an ICMP error: never answered.
        f[20] = 0;
        assert!(!ipv4_df(&f));
        f[34] = 3;
        assert_eq!(frag_needed(&f, 1450), None);
    }

    #[test]
    fn geneve_options_through_the_map() {
        let mut map = GeneveOptionMap::default();
        map[1] = Some(GeneveOption {
            class: 0x0102,
            type_: 1,
            len: 4,
        });
        let cell = GeneveMapCell::default();
        cell.store(&map);
        assert_eq!(cell.load(), map);
        // Options as a peer sends them: an unmapped one, then the mapped one.
        let mut opts = [0u8; 16];
        let n = packet::wire::geneve::emit_option(&mut opts, 0xffff, 0x80, &[9, 9, 9, 9]);
        let m = packet::wire::geneve::emit_option(&mut opts[n..], 0x0102, 1, &[0, 0, 0x12, 0x34]);
        let word = options_to_word(&map, &opts[..n + m]);
        assert_eq!(word, 0x1234, "tun_metadata1 is the low half");
        assert_eq!(options_to_word(&GeneveOptionMap::default(), &opts), 0);
        let mut out = [0u8; GENEVE_OPTIONS_ROOM];
        let len = word_to_options(&map, word, &mut out);
        assert_eq!(&out[..len], &opts[n..n + m]);
        // A zero field is not sent; an unmapped index never.
        assert_eq!(word_to_options(&map, 0, &mut out), 0);
        assert_eq!(word_to_options(&map, 0x5555_0000_0000_0000, &mut out), 0);
    }

    #[test]
    fn neighbour_mac_cell() {
        let n = NeighbourMac::default();
        assert_eq!(n.get(), None);
        n.set(Some([0, 0, 0, 0, 0, 0]));
        assert_eq!(n.get(), Some([0; 6]));
        n.set(Some([2, 3, 4, 5, 6, 7]));
        assert_eq!(n.get(), Some([2, 3, 4, 5, 6, 7]));
        n.set(None);
        assert_eq!(n.get(), None);
    }
}
