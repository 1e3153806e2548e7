//! Flow key extraction with OpenFlow 1.3 semantics.
//!
//! One pass, no allocation, every header read through a `new_checked` view so no input can
//! make it index out of bounds. A header that is cut short or inconsistent stops the walk:
//! fields already read stay, the header's layer bit and everything after it stay unset.

use crate::key::{ipv6_exthdr as ieh, pos, FlowKey, Layers, OFPVID_PRESENT};
use crate::wire::ethertype as et;
use crate::wire::ip_proto as ipp;
use crate::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, mpls, pbb, sctp, tcp, udp, vlan};

/// Type/length values below this are 802.3 lengths.
const LLC_MIN_ETHERTYPE: u16 = 0x0600;
/// 802.2 LLC (DSAP, SSAP, control) plus SNAP (OUI, type).
const LLC_SNAP_LEN: usize = 8;
/// ETH_TYPE of an 802.3 frame without a SNAP header of OUI 0.
pub const OFP_DL_TYPE_NOT_ETH_TYPE: u16 = 0x05ff;

/// Offsets in the key are 16-bit: bytes past this are never looked at (no Ethernet frame,
/// jumbo or not, comes close).
pub const MAX_PARSED_LEN: usize = u16::MAX as usize;

/// Parses `frame` into a fresh key. `in_port` fills in_port and in_phy_port (the caller
/// overwrites in_phy_port for logical ports, and sets metadata/tunnel_id if it has them).
///
/// Semantics: eth_type is the ethertype after all VLAN tags; vlan_vid/vlan_pcp come from the
/// outermost tag (vlan_vid carries OFPVID_PRESENT, untagged is OFPVID_NONE); MPLS exposes the
/// top label only; PBB exposes the I-SID only (eth fields stay the backbone ones); IP
/// fragments other than the first have no L4 fields; IPv6 extension headers are walked to
/// the L4 header and summarized in ipv6_exthdr.
#[inline]
pub fn extract(frame: &[u8], in_port: u32) -> FlowKey {
    let mut key = FlowKey::default();
    extract_into(frame, in_port, &mut key);
    key
}

/// [`extract`] into a key the caller owns (a worker keeps one per packet of a burst): the
/// key is built where it is used instead of being returned by value and copied, which cost
/// about 18 cycles per packet. Whatever `key` held before is overwritten.
#[inline]
pub fn extract_into(frame: &[u8], in_port: u32, key: &mut FlowKey) {
    key.reset();
    key.put(pos::IN_PORT, u64::from(in_port));
    key.put(pos::IN_PHY_PORT, u64::from(in_port));
    if !ipv4_tcp_udp(frame, key) {
        parse_frame(frame, key);
    }
}

/// The key of a packet whose headers nobody reads (a pipeline that matches only in_port
/// and only outputs): in_port and in_phy_port set, nothing parsed, every other field zero
/// and no layer. Costs a key reset instead of a parse.
#[inline]
pub fn extract_port_only(in_port: u32, key: &mut FlowKey) {
    key.reset();
    key.put(pos::IN_PORT, u64::from(in_port));
    key.put(pos::IN_PHY_PORT, u64::from(in_port));
}

/// How far a pipeline version needs its packets parsed ([`ExtractPlan::parse`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Parse {
    /// Nothing: the key holds in_port, in_phy_port and zero metadata and tunnel_id.
    InPort,
    /// Ethernet addresses, VLAN tags and eth_type (key words 3 and 4), as [`extract`]
    /// fills them; nothing above L2 and no L3/L4 layer bit.
    L2,
    /// Everything [`extract`] parses.
    #[default]
    Full,
}

/// What a pipeline version needs in its packets' keys, compiled from its tables (the
/// fields their entries match and what their actions read or edit): how far to parse,
/// and whether the register and connection-tracking words must start at zero (only when
/// some table matches them or some action reads them; otherwise nothing looks at them,
/// so leaving whatever an earlier packet put there changes no result).
///
/// [`ExtractPlan::extract`] writes exactly the words a version can read; the other
/// words keep stale values from earlier packets, which is why a key made under one plan
/// is only for the version it was compiled for (a worker extracts with the version it
/// walks the burst with). [`ExtractPlan::FULL`] is [`extract_into`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtractPlan {
    pub parse: Parse,
    /// Zero the registers (words [`crate::REG_WORD`]..[`crate::CT_WORD`]).
    pub registers: bool,
    /// Zero the connection-tracking words ([`crate::CT_WORD`] to the end).
    pub conntrack: bool,
    /// IPv4 destinations whose packets are parsed in full although `parse` is
    /// [`Parse::L2`] (nonzero, in descending order; 0: an unused slot): the only entries
    /// of the version that read above L2 match one of them exactly (a metadata-service
    /// DNAT entry, `ip,nw_dst=169.254.169.254,...`), and only their own actions edit
    /// headers. Every other packet is parsed to L2 and gets ipv4_dst 0, which none of
    /// those entries matches (as a full parse would not: its ipv4_dst is the destination
    /// tested here, or 0), so the usual packet does not pay for the few that reach them.
    /// Set by [`ExtractPlan::only_for_ipv4_dst`], kept by [`ExtractPlan::union`]; empty
    /// whenever `parse` is [`Parse::Full`].
    pub full_for: [u32; FULL_FOR_DSTS],
}

/// [`ExtractPlan::extract_as`]'s `guarded`: no destination test, one slot in use, any.
const UNGUARDED: u8 = 0;
const ONE_DST: u8 = 1;
const ANY_DST: u8 = 2;

/// The most IPv4 destinations an [`ExtractPlan`] parses in full for while parsing the
/// rest to L2: each costs a compare per packet; a version with more parses every packet.
pub const FULL_FOR_DSTS: usize = 4;

impl Default for ExtractPlan {
    fn default() -> Self {
        ExtractPlan::FULL
    }
}

impl ExtractPlan {
    /// The whole key, as [`extract_into`] makes it.
    pub const FULL: ExtractPlan = ExtractPlan {
        parse: Parse::Full,
        registers: true,
        conntrack: true,
        full_for: [0; FULL_FOR_DSTS],
    };
    /// The least: in_port (and in_phy_port), zero metadata and tunnel_id.
    pub const IN_PORT: ExtractPlan = ExtractPlan {
        parse: Parse::InPort,
        registers: false,
        conntrack: false,
        full_for: [0; FULL_FOR_DSTS],
    };

    /// A plan that parses as far as `parse` says, nothing conditional.
    pub const fn parsing(parse: Parse, registers: bool, conntrack: bool) -> ExtractPlan {
        ExtractPlan {
            parse,
            registers,
            conntrack,
            full_for: [0; FULL_FOR_DSTS],
        }
    }

    /// A plan that gives what either needs.
    pub fn union(self, other: ExtractPlan) -> ExtractPlan {
        let mut p = ExtractPlan {
            parse: self.parse.max(other.parse),
            registers: self.registers || other.registers,
            conntrack: self.conntrack || other.conntrack,
            full_for: self.full_for,
        };
        for d in other.full_for {
            if d == 0 || p.full_for.contains(&d) {
                continue;
            }
            match p.full_for.iter_mut().find(|x| **x == 0) {
                Some(slot) => *slot = d,
                // Too many: every packet parsed in full.
                None => p.parse = Parse::Full,
            }
        }
        p.normalized()
    }

    /// What this plan needs (the reads of an entry's match and instructions), with the
    /// full parse only for IPv4 packets to `dst` ([`ExtractPlan::full_for`]): for an
    /// entry whose match holds only for IPv4 packets to `dst` (eth_type 0x0800 and an
    /// exact ipv4_dst), whose instructions run only on packets it matched. Unchanged
    /// when it parses no more than L2 anyway, or `dst` is 0 (which an unparsed packet
    /// gets).
    pub fn only_for_ipv4_dst(self, dst: u32) -> ExtractPlan {
        if self.parse != Parse::Full || dst == 0 {
            return self;
        }
        let mut full_for = [0; FULL_FOR_DSTS];
        full_for[0] = dst;
        ExtractPlan {
            parse: Parse::L2,
            full_for,
            ..self
        }
    }

    /// One form per set of needs (so that equal needs compare equal): no destinations
    /// under a full parse, at least L2 with them (their test reads eth_type), sorted.
    fn normalized(mut self) -> ExtractPlan {
        if self.parse == Parse::Full {
            self.full_for = [0; FULL_FOR_DSTS];
        } else if self.full_for.iter().any(|&d| d != 0) {
            self.parse = self.parse.max(Parse::L2);
            self.full_for.sort_unstable_by(|a, b| b.cmp(a));
        }
        self
    }

    /// The plan a read of key word `word` needs (a match on it, or an action reading it).
    pub fn for_word(word: usize) -> ExtractPlan {
        let mut p = ExtractPlan::IN_PORT;
        match word {
            0..=2 => {}
            3 | 4 => p.parse = Parse::L2,
            w if w < crate::REG_WORD => p.parse = Parse::Full,
            w if w < crate::CT_WORD => p.registers = true,
            _ => p.conntrack = true,
        }
        p
    }

    /// The plan a read of `field` needs.
    pub fn for_field(field: crate::Field) -> ExtractPlan {
        let p = field.pos();
        let last = usize::from(p.word) + usize::from(p.bits > 64);
        ExtractPlan::for_word(usize::from(p.word)).union(ExtractPlan::for_word(last))
    }

    /// Fills `key` for `frame` arriving on `in_port` as far as the plan says: the words
    /// it covers and the layers and offsets are exactly what [`extract_into`] would make
    /// (for [`Parse::L2`], without the layers above L2); words outside it are left alone.
    #[inline]
    pub fn extract(self, frame: &[u8], in_port: u32, key: &mut FlowKey) {
        let guarded = if self.full_for.iter().any(|&d| d != 0) {
            ANY_DST
        } else {
            UNGUARDED
        };
        self.extract_as(
            self.parse,
            guarded,
            self.registers,
            self.conntrack,
            frame,
            in_port,
            key,
        );
    }

    /// [`Self::extract`] for each packet of a run (a burst: `packets`, whose frame and
    /// in_port `frame` gives) into `keys` in order (as many as both have): the plan's
    /// tests are made once for the run, and each frame runs the code of its plan alone (a
    /// loop per plan without registers or conntrack words to zero, and one for
    /// [`ExtractPlan::FULL`]; the others test per frame as [`Self::extract`] does).
    #[inline(always)]
    pub fn extract_each<'a, T>(
        self,
        packets: &'a [T],
        mut frame: impl FnMut(&'a T) -> (&'a [u8], u32),
        keys: &mut [FlowKey],
    ) {
        let each = packets.iter().zip(keys.iter_mut());
        // Everything (a version tracking connections): its own loop too.
        if self == ExtractPlan::FULL {
            for (p, key) in each {
                let (f, port) = frame(p);
                self.extract_as(Parse::Full, UNGUARDED, true, true, f, port, key);
            }
            return;
        }
        if self.registers || self.conntrack {
            for (p, key) in each {
                let (f, port) = frame(p);
                self.extract(f, port, key);
            }
            return;
        }
        match (self.parse, self.full_for.iter().any(|&d| d != 0)) {
            (Parse::InPort, _) => {
                for (p, key) in each {
                    let (f, port) = frame(p);
                    self.extract_as(Parse::InPort, UNGUARDED, false, false, f, port, key);
                }
            }
            (Parse::L2, false) => {
                for (p, key) in each {
                    let (f, port) = frame(p);
                    self.extract_as(Parse::L2, UNGUARDED, false, false, f, port, key);
                }
            }
            // One destination (B1k's metadata address): one compare per IPv4 packet,
            // not one per slot.
            (Parse::L2, true) if self.full_for[1] == 0 => {
                for (p, key) in each {
                    let (f, port) = frame(p);
                    self.extract_as(Parse::L2, ONE_DST, false, false, f, port, key);
                }
            }
            (Parse::L2, true) => {
                for (p, key) in each {
                    let (f, port) = frame(p);
                    self.extract_as(Parse::L2, ANY_DST, false, false, f, port, key);
                }
            }
            (Parse::Full, _) => {
                for (p, key) in each {
                    let (f, port) = frame(p);
                    self.extract_as(Parse::Full, UNGUARDED, false, false, f, port, key);
                }
            }
        }
    }

    /// [`Self::extract`] with the plan's parts as arguments, so that a caller passing
    /// constants ([`Self::extract_each`]) gets only their code.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn extract_as(
        self,
        parse: Parse,
        guarded: u8,
        registers: bool,
        conntrack: bool,
        frame: &[u8],
        in_port: u32,
        key: &mut FlowKey,
    ) {
        let w = &mut key.words;
        w[0] = (u64::from(in_port) << pos::IN_PORT.shift) | u64::from(in_port);
        w[1] = 0;
        w[2] = 0;
        // tun_src/tun_dst are packet metadata like tunnel_id: zero unless decapsulation
        // sets them after extraction. Always written, because an output to a flow-based
        // tunnel port reads tun_dst whatever the tables match (a stale one would pick the
        // previous packet's remote).
        w[crate::TUN_WORD] = 0;
        // Geneve options likewise: an output to a Geneve port sends the nonzero ones.
        w[crate::TUN_METADATA_WORD] = 0;
        if registers {
            for x in &mut w[crate::REG_WORD..crate::CT_WORD] {
                *x = 0;
            }
        }
        if conntrack {
            for x in &mut w[crate::CT_WORD..] {
                *x = 0;
            }
        }
        key.layers = Layers::default();
        key.offsets = Default::default();
        match parse {
            Parse::InPort => {}
            Parse::L2 => {
                let cut = &frame[..frame.len().min(MAX_PARSED_LEN)];
                // The fast path writes words 3 and 4 whole; the general walk needs them zero.
                if !untagged_l2(cut, key) {
                    key.words[3] = 0;
                    key.words[4] = 0;
                    parse_l2(cut, key);
                }
                if guarded != UNGUARDED {
                    if self.wants_full(cut, key, guarded == ONE_DST) {
                        key.layers = Layers::default();
                        key.offsets = Default::default();
                        full(frame, key);
                    } else {
                        key.words[usize::from(pos::IPV4_DST.word)] = 0;
                    }
                }
            }
            Parse::Full => full(frame, key),
        }
    }

    /// Whether a packet whose L2 is in `key` is IPv4 to one of [`Self::full_for`]'s
    /// destinations (read where a full parse reads it: 16 bytes into the IPv4 header).
    /// `one`: only the first slot is in use (one compare).
    #[inline(always)]
    fn wants_full(&self, frame: &[u8], key: &FlowKey, one: bool) -> bool {
        if key.words[usize::from(pos::ETH_TYPE.word)] & 0xffff != u64::from(et::IPV4) {
            return false;
        }
        let at = usize::from(key.offsets.l3) + 16;
        let Some(&[a, b, c, d]) = frame.get(at..at + 4) else {
            return false;
        };
        let dst = u32::from_be_bytes([a, b, c, d]);
        if one {
            return dst == self.full_for[0];
        }
        self.full_for.contains(&dst)
    }
}

/// [`Parse::Full`]: everything [`extract_into`] fills but in_port, the registers and the
/// conntrack words, into a key whose layers and offsets are default.
#[inline(always)]
fn full(frame: &[u8], key: &mut FlowKey) {
    // The fast path writes words 3-6 whole; the general walk needs them zero.
    for x in &mut key.words[7..crate::REG_WORD] {
        *x = 0;
    }
    if !ipv4_tcp_udp(frame, key) {
        for x in &mut key.words[3..7] {
            *x = 0;
        }
        parse_frame(frame, key);
    }
}

/// [`parse_l2`] for the common frame (no VLAN tag, an ethertype rather than an 802.3
/// length) at fixed offsets. False (and `key` untouched) for any other frame.
#[inline]
fn untagged_l2(frame: &[u8], key: &mut FlowKey) -> bool {
    if frame.len() < ethernet::HEADER_LEN {
        return false;
    }
    let ethertype = be16_at(frame, 12);
    if ethertype < LLC_MIN_ETHERTYPE || ethertype == et::VLAN || ethertype == et::QINQ {
        return false;
    }
    key.words[usize::from(pos::ETH_DST.word)] = mac_high(frame, 0) | u64::from(ethertype);
    key.words[usize::from(pos::ETH_SRC.word)] = mac_high(frame, 6);
    key.layers = Layers::ETH;
    key.offsets.l3 = ethernet::HEADER_LEN as u16;
    true
}

#[inline(always)]
fn be16_at(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

/// The MAC address at `o` in bits 63..16 (where the key keeps eth_dst and eth_src), from
/// one 8-byte load: `b` must hold 8 bytes from `o` (the two after the address are
/// masked off).
#[inline(always)]
fn mac_high(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_be_bytes(w) & !0xffff
}

/// The common frame (untagged Ethernet, IPv4 without options, not a fragment, a complete
/// TCP or UDP header) read at fixed offsets straight into the key words, as
/// [`parse_frame`] would fill them: a third of its instructions. False (and `key`
/// untouched) for any other frame, which then takes the general walk.
#[inline]
fn ipv4_tcp_udp(frame: &[u8], key: &mut FlowKey) -> bool {
    const L3: usize = ethernet::HEADER_LEN;
    const L4: usize = L3 + 20;
    // 54 bytes cover a TCP header without options, and more than a UDP one.
    if frame.len() < L4 + 20 || frame.len() > MAX_PARSED_LEN {
        return false;
    }
    if be16_at(frame, 12) != et::IPV4 || frame[L3] != 0x45 {
        return false;
    }
    // More-fragments flag or a fragment offset.
    if be16_at(frame, L3 + 6) & 0x3fff != 0 {
        return false;
    }
    let proto = frame[L3 + 9];
    // The IPv4 payload ends at the total length (or the frame's end).
    let payload = usize::from(be16_at(frame, L3 + 2)).min(frame.len() - L3);
    let l4_len = payload.saturating_sub(20);
    let layer = match proto {
        ipp::TCP => {
            let hl = usize::from(frame[L4 + 12] >> 4) * 4;
            if l4_len < 20 || hl < 20 || hl > l4_len {
                return false;
            }
            Layers::TCP
        }
        ipp::UDP if l4_len >= udp::HEADER_LEN => Layers::UDP,
        _ => return false,
    };
    let tos = frame[L3 + 1];
    key.words[usize::from(pos::ETH_DST.word)] = mac_high(frame, 0) | u64::from(et::IPV4);
    key.words[usize::from(pos::ETH_SRC.word)] = mac_high(frame, 6);
    key.words[usize::from(pos::IPV4_SRC.word)] = (u64::from(u32::from_be_bytes([
        frame[L3 + 12],
        frame[L3 + 13],
        frame[L3 + 14],
        frame[L3 + 15],
    ])) << 32)
        | u64::from(u32::from_be_bytes([
            frame[L3 + 16],
            frame[L3 + 17],
            frame[L3 + 18],
            frame[L3 + 19],
        ]));
    key.words[usize::from(pos::IP_PROTO.word)] = (u64::from(proto) << 56)
        | (u64::from(tos >> 2) << 50)
        | (u64::from(tos & 3) << 48)
        | (u64::from(be16_at(frame, L4)) << 16)
        | u64::from(be16_at(frame, L4 + 2));
    key.layers = Layers::ETH | Layers::IPV4 | layer;
    key.offsets.l3 = L3 as u16;
    key.offsets.ip_proto = (L3 + ipv4::PROTOCOL_OFFSET) as u16;
    key.offsets.l4 = L4 as u16;
    true
}

#[inline(always)]
fn mac(m: ethernet::Mac) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// Fills everything from L2 up; the key's packet fields must be zero.
pub(crate) fn parse_frame(frame: &[u8], key: &mut FlowKey) {
    let frame = &frame[..frame.len().min(MAX_PARSED_LEN)];
    if let Some((ethertype, off)) = parse_l2(frame, key) {
        parse_l3(frame, key, ethertype, off);
    }
}

/// The Ethernet part of [`parse_frame`] (addresses, VLAN tags, 802.3/SNAP, eth_type):
/// the innermost ethertype and where its header starts, or `None` when nothing above
/// L2 can be parsed. `frame` is already cut to [`MAX_PARSED_LEN`]; words 3 and 4 of the
/// key must be zero.
fn parse_l2(frame: &[u8], key: &mut FlowKey) -> Option<(u16, usize)> {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return None;
    };
    key.put(pos::ETH_DST, mac(eth.dst()));
    key.put(pos::ETH_SRC, mac(eth.src()));
    key.layers.insert(Layers::ETH);

    let mut ethertype = eth.ethertype();
    let mut off = ethernet::HEADER_LEN;
    let mut tags: u16 = 0;
    while ethertype == et::VLAN || ethertype == et::QINQ {
        let Ok(tag) = vlan::Tag::new_checked(&frame[off..]) else {
            break;
        };
        if tags == 0 {
            key.put(pos::VLAN_VID, u64::from(tag.vid() | OFPVID_PRESENT));
            key.put(pos::VLAN_PCP, u64::from(tag.pcp()));
            key.layers.insert(Layers::VLAN);
        } else {
            key.layers.insert(Layers::VLAN_QINQ);
        }
        tags += 1;
        ethertype = tag.ethertype();
        off += vlan::TAG_LEN;
    }
    if ethertype < LLC_MIN_ETHERTYPE {
        // An 802.3 length, not a type (OpenFlow 1.3.5, OXM_OF_ETH_TYPE): 802.2 LLC with a
        // SNAP header of OUI 0 carries its type in the SNAP header, and what follows it is
        // parsed as under that type; any other 802.3 frame is 0x05FF, with nothing above.
        match frame.get(off..off + LLC_SNAP_LEN) {
            Some([0xaa, 0xaa, 0x03, 0, 0, 0, t0, t1]) => {
                ethertype = u16::from_be_bytes([*t0, *t1]);
                off += LLC_SNAP_LEN;
            }
            _ => {
                key.put(pos::ETH_TYPE, u64::from(OFP_DL_TYPE_NOT_ETH_TYPE));
                key.offsets.l3 = off as u16;
                key.offsets.vlan_tags = tags;
                return None;
            }
        }
    }
    key.put(pos::ETH_TYPE, u64::from(ethertype));
    key.offsets.l3 = off as u16;
    key.offsets.vlan_tags = tags;
    Some((ethertype, off))
}

/// Parses what follows the innermost ethertype at `off`. Used by `extract` and by edits that
/// change what sits there (MPLS push/pop, ip_proto...).
pub(crate) fn parse_l3(frame: &[u8], key: &mut FlowKey, ethertype: u16, off: usize) {
    let Some(rest) = frame.get(off..frame.len().min(MAX_PARSED_LEN)) else {
        return;
    };
    match ethertype {
        et::IPV4 => parse_ipv4(rest, off, key),
        et::IPV6 => parse_ipv6(rest, off, key),
        et::ARP => {
            if let Ok(a) = arp::Packet::new_checked(rest) {
                key.put(pos::ARP_OP, u64::from(a.operation()));
                key.put(pos::ARP_SPA, u64::from(u32::from_be_bytes(a.spa())));
                key.put(pos::ARP_TPA, u64::from(u32::from_be_bytes(a.tpa())));
                key.put(pos::ARP_SHA, mac(a.sha()));
                key.put(pos::ARP_THA, mac(a.tha()));
                key.layers.insert(Layers::ARP);
            }
        }
        et::MPLS | et::MPLS_MCAST => {
            if let Ok(l) = mpls::Label::new_checked(rest) {
                key.put(pos::MPLS_LABEL, u64::from(l.label()));
                key.put(pos::MPLS_TC, u64::from(l.tc()));
                key.put(pos::MPLS_BOS, u64::from(l.bos()));
                key.layers.insert(Layers::MPLS);
            }
        }
        et::PBB => {
            if let Ok(t) = pbb::ITag::new_checked(rest) {
                key.put(pos::PBB_ISID, u64::from(t.isid()));
                key.layers.insert(Layers::PBB);
            }
        }
        _ => {}
    }
}

fn parse_ipv4(rest: &[u8], off: usize, key: &mut FlowKey) {
    let Ok(ip) = ipv4::Packet::new_checked(rest) else {
        return;
    };
    key.layers.insert(Layers::IPV4);
    key.put(pos::IPV4_SRC, u64::from(u32::from_be_bytes(ip.src())));
    key.put(pos::IPV4_DST, u64::from(u32::from_be_bytes(ip.dst())));
    let proto = ip.protocol();
    key.put(pos::IP_PROTO, u64::from(proto));
    key.put(pos::IP_DSCP, u64::from(ip.dscp()));
    key.put(pos::IP_ECN, u64::from(ip.ecn()));
    key.offsets.ip_proto = (off + ipv4::PROTOCOL_OFFSET) as u16;
    if ip.is_fragment() {
        key.layers.insert(Layers::IP_FRAG);
        if ip.frag_offset() != 0 {
            key.layers.insert(Layers::IP_LATER_FRAG);
            return;
        }
    }
    parse_l4(ip.payload(), off + ip.header_len(), proto, false, key);
}

/// Tracks the OFPIEH_* bits while walking IPv6 extension headers. Ranks follow RFC 8200's
/// recommended order; a destination options header before any routing/fragment/AH/ESP is
/// the "for routing" one, a later one the final one.
#[derive(Default)]
struct ExtWalk {
    flags: u16,
    last_rank: u8,
    dest_count: u8,
}

impl ExtWalk {
    fn note(&mut self, nh: u8) {
        let (flag, rank) = match nh {
            ipp::HOPOPT => (ieh::HOP, 1),
            ipp::IPV6_OPTS => {
                let rank = if self.dest_count == 0 && self.last_rank <= 2 {
                    2
                } else {
                    7
                };
                (ieh::DEST, rank)
            }
            ipp::IPV6_ROUTE => (ieh::ROUTER, 3),
            ipp::IPV6_FRAG => (ieh::FRAG, 4),
            ipp::AH => (ieh::AUTH, 5),
            ipp::ESP => (ieh::ESP, 6),
            _ => return,
        };
        let repeated = if flag == ieh::DEST {
            self.dest_count += 1;
            self.dest_count > 2
        } else {
            self.flags & flag != 0
        };
        if repeated {
            self.flags |= ieh::UNREP;
        }
        if rank < self.last_rank || (flag == ieh::HOP && self.last_rank != 0) {
            self.flags |= ieh::UNSEQ;
        }
        self.flags |= flag;
        self.last_rank = self.last_rank.max(rank);
    }
}

fn parse_ipv6(rest: &[u8], off: usize, key: &mut FlowKey) {
    let Ok(ip) = ipv6::Packet::new_checked(rest) else {
        return;
    };
    key.layers.insert(Layers::IPV6);
    key.set_pos(pos::IPV6_SRC, u128::from_be_bytes(ip.src()));
    key.set_pos(pos::IPV6_DST, u128::from_be_bytes(ip.dst()));
    key.put(pos::IPV6_FLABEL, u64::from(ip.flow_label()));
    key.put(pos::IP_DSCP, u64::from(ip.dscp()));
    key.put(pos::IP_ECN, u64::from(ip.ecn()));

    let payload = ip.payload();
    let payload_off = off + ipv6::HEADER_LEN;
    let mut nh = ip.next_header();
    let mut nh_off = off + ipv6::NEXT_HEADER_OFFSET;
    let mut at = 0usize;
    let mut walk = ExtWalk::default();
    let mut has_l4 = true;
    loop {
        let hdr = &payload[at..];
        match nh {
            ipp::HOPOPT | ipp::IPV6_ROUTE | ipp::IPV6_OPTS => {
                walk.note(nh);
                let Ok(h) = ipv6::ExtHeader::new_checked(hdr) else {
                    has_l4 = false;
                    break;
                };
                nh_off = payload_off + at;
                nh = h.next_header();
                at += h.header_len();
            }
            ipp::IPV6_FRAG => {
                walk.note(nh);
                let Ok(h) = ipv6::FragmentHeader::new_checked(hdr) else {
                    has_l4 = false;
                    break;
                };
                key.layers.insert(Layers::IP_FRAG);
                nh_off = payload_off + at;
                nh = h.next_header();
                at += ipv6::FRAGMENT_HEADER_LEN;
                if h.frag_offset() != 0 {
                    key.layers.insert(Layers::IP_LATER_FRAG);
                    has_l4 = false;
                    break;
                }
            }
            ipp::AH => {
                walk.note(nh);
                let Ok(h) = ipv6::AuthHeader::new_checked(hdr) else {
                    has_l4 = false;
                    break;
                };
                nh_off = payload_off + at;
                nh = h.next_header();
                at += h.header_len();
            }
            ipp::ESP => {
                walk.note(nh);
                has_l4 = false;
                break;
            }
            ipp::IPV6_NONXT => {
                walk.flags |= ieh::NONEXT;
                has_l4 = false;
                break;
            }
            _ => break,
        }
    }
    key.put(pos::IP_PROTO, u64::from(nh));
    key.put(pos::IPV6_EXTHDR, u64::from(walk.flags));
    key.offsets.ip_proto = nh_off as u16;
    if has_l4 {
        parse_l4(&payload[at..], payload_off + at, nh, true, key);
    }
}

fn parse_l4(l4: &[u8], off: usize, proto: u8, is_v6: bool, key: &mut FlowKey) {
    let layer = match proto {
        ipp::TCP => {
            let Ok(t) = tcp::Packet::new_checked(l4) else {
                return;
            };
            key.put(pos::TP_SRC, u64::from(t.src_port()));
            key.put(pos::TP_DST, u64::from(t.dst_port()));
            Layers::TCP
        }
        ipp::UDP => {
            let Ok(u) = udp::Packet::new_checked(l4) else {
                return;
            };
            key.put(pos::TP_SRC, u64::from(u.src_port()));
            key.put(pos::TP_DST, u64::from(u.dst_port()));
            Layers::UDP
        }
        ipp::SCTP => {
            let Ok(s) = sctp::Packet::new_checked(l4) else {
                return;
            };
            key.put(pos::TP_SRC, u64::from(s.src_port()));
            key.put(pos::TP_DST, u64::from(s.dst_port()));
            Layers::SCTP
        }
        ipp::ICMP if !is_v6 => {
            let Ok(i) = icmpv4::Packet::new_checked(l4) else {
                return;
            };
            key.put(pos::ICMP_TYPE, u64::from(i.msg_type()));
            key.put(pos::ICMP_CODE, u64::from(i.code()));
            Layers::ICMPV4
        }
        ipp::ICMPV6 if is_v6 => {
            let Ok(i) = icmpv6::Packet::new_checked(l4) else {
                return;
            };
            key.put(pos::ICMP_TYPE, u64::from(i.msg_type()));
            key.put(pos::ICMP_CODE, u64::from(i.code()));
            if i.is_nd() {
                parse_nd(l4, off, i.msg_type(), key);
            }
            Layers::ICMPV6
        }
        _ => return,
    };
    key.layers.insert(layer);
    key.offsets.l4 = off as u16;
}

/// NS/NA target, then the first Ethernet SLL option of an NS or TLL option of an NA (the
/// only combinations OpenFlow's prerequisites allow to match).
fn parse_nd(l4: &[u8], off: usize, msg_type: u8, key: &mut FlowKey) {
    let Ok(nd) = icmpv6::NdMessage::new_checked(l4) else {
        return;
    };
    key.set_pos(pos::IPV6_ND_TARGET, u128::from_be_bytes(nd.target()));
    let (layer, wanted, ll_pos, ll_layer) = if msg_type == icmpv6::ND_NEIGHBOR_SOLICIT {
        (
            Layers::ND_NS,
            icmpv6::ND_OPT_SLL,
            pos::IPV6_ND_SLL,
            Layers::ND_SLL,
        )
    } else {
        (
            Layers::ND_NA,
            icmpv6::ND_OPT_TLL,
            pos::IPV6_ND_TLL,
            Layers::ND_TLL,
        )
    };
    key.layers.insert(layer);
    for opt in nd.options() {
        let Ok((at, opt)) = opt else {
            break;
        };
        if opt.opt_type() != wanted {
            continue;
        }
        if let Some(addr) = opt.link_layer_addr() {
            key.put(ll_pos, mac(addr));
            key.layers.insert(ll_layer);
            key.offsets.nd_option = (off + at) as u16;
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Field, Offsets, CT_WORD as CT, REG_WORD as REG};

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn llc_snap_frames_match_by_their_snap_type_and_other_802_3_frames_by_05ff() {
        // 802.2 LLC + SNAP, OUI 0, type IPv4, then an IPv4/UDP header.
        let mut f = eth(60);
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 7, 0, 9, 0, 8, 0, 0]);
        f.resize(64, 0);
        let k = extract(&f, 1);
        assert_eq!(k.eth_type(), 0x0800);
        assert_eq!(k.offsets.l3, 22);
        assert!(
            k.layers.contains(Layers::IPV4),
            "parsed under the SNAP type"
        );
        // A SNAP header with another OUI, plain LLC (STP), and a frame cut inside the LLC
        // header: 0x05FF and nothing above.
        for llc in [
            &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0x00][..],
            &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0][..],
            &[0xaa, 0xaa][..],
        ] {
            let mut f = eth(38);
            f.extend_from_slice(llc);
            let k = extract(&f, 1);
            assert_eq!(k.eth_type(), OFP_DL_TYPE_NOT_ETH_TYPE, "{llc:x?}");
            assert!(!k.layers.contains(Layers::IPV4));
        }
        // Behind a VLAN tag too.
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 5, 0, 46, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x06]);
        assert_eq!(extract(&f, 1).eth_type(), 0x0806);
    }

    /// What the general walk alone makes of `frame`.
    fn general(frame: &[u8], in_port: u32) -> FlowKey {
        let mut key = FlowKey::default();
        key.put(pos::IN_PORT, u64::from(in_port));
        key.put(pos::IN_PHY_PORT, u64::from(in_port));
        parse_frame(frame, &mut key);
        key
    }

    fn l4_frame(proto: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0xb9, 0, 40, 0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x04, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10]);
        f.extend_from_slice(&[0x20, 0, 0, 0, 0, 0]);
        f.resize(60, 0);
        f
    }

    /// The fixed-offset path must give exactly the general walk's key, for the frames it
    /// takes and for every near miss: each byte of a TCP and a UDP frame set to values that
    /// flip a check, and every length.
    #[test]
    fn ipv4_fast_path_matches_general_walk() {
        let values = [
            0x00, 0x01, 0x05, 0x06, 0x08, 0x11, 0x14, 0x20, 0x28, 0x3f, 0x40, 0x44, 0x45, 0x46,
            0x50, 0x55, 0x81, 0xf0, 0xff,
        ];
        let mut fast = 0;
        for proto in [ipp::TCP, ipp::UDP, ipp::ICMP] {
            let base = l4_frame(proto);
            let mut cases = vec![base.clone()];
            for len in 0..base.len() + 8 {
                let mut f = base.clone();
                f.resize(len, 0);
                cases.push(f);
            }
            for i in 0..base.len() {
                for v in values {
                    let mut f = base.clone();
                    f[i] = v;
                    cases.push(f);
                }
            }
            for f in cases {
                let mut key = FlowKey::default();
                extract_into(&f, 9, &mut key);
                assert_eq!(key, general(&f, 9), "frame {f:02x?}");
                let mut probe = FlowKey::default();
                fast += usize::from(ipv4_tcp_udp(&f, &mut probe));
            }
        }
        assert!(fast > 100, "the fast path took only {fast} frames");
    }

    /// Every plan writes exactly what `extract_into` would in the words it covers (over a
    /// key full of another packet's stale values): FULL everything, L2 the Ethernet words,
    /// layers and offsets, IN_PORT in_port; registers and conntrack words zero only when
    /// asked, left alone otherwise; tun_src/tun_dst and the Geneve option word always zero
    /// (an output to a tunnel port reads them whatever the tables match).
    /// Frames around the fast path's checks: other ethertypes, short frames, and each of
    /// the first 40 bytes of a TCP, a UDP and an ICMP frame set to values that flip a
    /// check.
    fn plan_cases() -> Vec<Vec<u8>> {
        let values = [0x00, 0x05, 0x06, 0x08, 0x11, 0x45, 0x81, 0x88, 0xa8, 0xff];
        let mut cases = vec![
            eth(0x0806),
            eth(0x8100),
            eth(60),
            eth(0x88cc),
            vec![1, 2, 3],
        ];
        for proto in [ipp::TCP, ipp::UDP, ipp::ICMP] {
            let base = l4_frame(proto);
            for len in [0, 13, 14, 15, 17, 18, 30, 33, 34, base.len()] {
                cases.push(base[..len.min(base.len())].to_vec());
            }
            for i in 0..base.len().min(40) {
                for v in values {
                    let mut f = base.clone();
                    f[i] = v;
                    cases.push(f);
                }
            }
        }
        cases
    }

    /// A key full of another packet's values.
    fn stale_key() -> FlowKey {
        let mut stale = FlowKey::default();
        for (i, w) in stale.words.iter_mut().enumerate() {
            *w = 0x9e37_79b9_7f4a_7c15u64.rotate_left(i as u32);
        }
        stale.layers = Layers(u32::MAX);
        stale
    }

    /// A plan that parses in full only for some IPv4 destinations gives exactly the full
    /// key (registers and conntrack words aside) for packets a full parse finds going
    /// there, and for every other packet its L2 words, layers and offsets with ipv4_dst
    /// 0: so an entry matching one of those destinations exactly matches the same
    /// packets under either key. Frames: [`plan_cases`], VLAN-tagged and 802.3/SNAP
    /// IPv4 to the destinations, IPv4 with options.
    #[test]
    fn plans_parse_in_full_only_for_their_destinations() {
        let mut cases = plan_cases();
        let tcp = l4_frame(ipp::TCP);
        let mut tagged = tcp[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&tcp[12..]);
        cases.push(tagged.clone());
        let mut qinq = tcp[..12].to_vec();
        qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x05]);
        qinq.extend_from_slice(&tcp[12..]);
        cases.push(qinq);
        let mut snap = tcp[..12].to_vec();
        snap.extend_from_slice(&[0x00, 0x40, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        snap.extend_from_slice(&tcp[14..]);
        cases.push(snap);
        let mut options = tcp.clone();
        options[14] = 0x46;
        options.splice(34..34, [1, 1, 1, 1]);
        cases.push(options);
        let mut to_first = tcp.clone();
        to_first[33] = 1;
        cases.push(to_first);
        let stale = stale_key();
        let (mut full_parses, mut l2_parses) = (0, 0);
        for dsts in [
            &[0x0a00_0002u32][..],
            &[0x0a00_0001, 0x0a00_0002],
            &[0x0505_0505],
        ] {
            let plan = dsts
                .iter()
                .fold(ExtractPlan::parsing(Parse::L2, false, false), |p, &d| {
                    p.union(ExtractPlan::FULL.only_for_ipv4_dst(d))
                });
            assert_eq!(plan.parse, Parse::L2, "{plan:?}");
            for f in &cases {
                let full = general(f, 7);
                let mut key = stale;
                plan.extract(f, 7, &mut key);
                let to = full.get(crate::Field::Ipv4Dst) as u32;
                if full.layers.contains(Layers::IPV4) && dsts.contains(&to) {
                    full_parses += 1;
                    assert_eq!(key.words[..REG], full.words[..REG], "{plan:?} {f:02x?}");
                    assert_eq!((key.layers, key.offsets), (full.layers, full.offsets));
                } else {
                    l2_parses += 1;
                    assert_eq!(key.words[..5], full.words[..5], "{plan:?} {f:02x?}");
                    assert_eq!(key.get(crate::Field::Ipv4Dst), 0, "{plan:?} {f:02x?}");
                    let want = Layers(full.layers.0 & Layers::L2.0);
                    assert_eq!(key.layers, want, "{plan:?} {f:02x?}");
                    assert_eq!(key.offsets.l3, full.offsets.l3, "{f:02x?}");
                }
            }
            // A burst's loop (one loop per plan; one destination has its own) makes the
            // keys the per-packet call makes.
            // (Without the register and conntrack words, whose plans test per packet.)
            let plan = ExtractPlan {
                registers: false,
                conntrack: false,
                ..plan
            };
            let mut keys = vec![stale; cases.len()];
            plan.extract_each(&cases, |f| (&f[..], 7), &mut keys);
            for (f, key) in cases.iter().zip(&keys) {
                let mut want = stale;
                plan.extract(f, 7, &mut want);
                assert_eq!(key.words, want.words, "{plan:?} {f:02x?}");
                assert_eq!((key.layers, key.offsets), (want.layers, want.offsets));
            }
        }
        assert!(
            full_parses > 50 && l2_parses > 50,
            "{full_parses} / {l2_parses}"
        );
    }

    /// Unions keep the destinations (in one order), drop them under a full parse, and
    /// parse everything in full past [`FULL_FOR_DSTS`] of them.
    #[test]
    fn plan_unions_keep_their_destinations() {
        let only = |d| ExtractPlan::FULL.only_for_ipv4_dst(d);
        let l2 = ExtractPlan::parsing(Parse::L2, false, false);
        assert_eq!(only(5).parse, Parse::L2);
        assert!(only(5).registers && only(5).conntrack);
        assert_eq!(only(0), ExtractPlan::FULL, "0 is what unparsed packets get");
        assert_eq!(l2.only_for_ipv4_dst(5), l2, "nothing to spare");
        assert_eq!(only(5).union(only(6)), only(6).union(only(5)));
        assert_eq!(only(5).union(only(5)), only(5));
        assert_eq!(ExtractPlan::IN_PORT.union(only(5)).parse, Parse::L2);
        assert_eq!(only(5).union(ExtractPlan::FULL), ExtractPlan::FULL);
        let four = (1..=4).fold(l2, |p, d| p.union(only(d)));
        assert_eq!(four.parse, Parse::L2);
        assert_eq!(four.full_for, [4, 3, 2, 1]);
        let five = four.union(only(9));
        assert_eq!(
            (five.parse, five.full_for),
            (Parse::Full, [0; FULL_FOR_DSTS])
        );
    }

    #[test]
    fn plans_fill_their_words_as_extract_into_does() {
        let cases = plan_cases();
        let stale = stale_key();
        for f in &cases {
            let full = general(f, 7);
            let mut key = stale;
            ExtractPlan::FULL.extract(f, 7, &mut key);
            assert_eq!(key, full, "FULL, frame {f:02x?}");
            for (registers, conntrack) in [(false, false), (true, false), (false, true)] {
                for parse in [Parse::InPort, Parse::L2] {
                    let plan = ExtractPlan::parsing(parse, registers, conntrack);
                    let mut key = stale;
                    plan.extract(f, 7, &mut key);
                    let upto = if parse == Parse::L2 { 5 } else { 3 };
                    assert_eq!(key.words[..upto], full.words[..upto], "{plan:?} {f:02x?}");
                    assert_eq!(key.words[upto..REG], stale.words[upto..REG], "{plan:?}");
                    let regs = if registers { &full } else { &stale };
                    assert_eq!(key.words[REG..CT], regs.words[REG..CT], "{plan:?}");
                    let ct = if conntrack { &full } else { &stale };
                    let tun = crate::TUN_WORD;
                    assert_eq!(key.words[CT..tun], ct.words[CT..tun], "{plan:?}");
                    assert_eq!(key.words[tun], 0, "{plan:?}: a stale tun_src/tun_dst stays");
                    let md = crate::TUN_METADATA_WORD;
                    assert_eq!(key.words[tun + 1..md], ct.words[tun + 1..md], "{plan:?}");
                    assert_eq!(key.words[md], 0, "{plan:?}: stale Geneve options stay");
                    if parse == Parse::L2 {
                        let want = Layers(full.layers.0 & Layers::L2.0);
                        assert_eq!(key.layers, want, "L2 layers, frame {f:02x?}");
                        assert_eq!(key.offsets.l3, full.offsets.l3, "frame {f:02x?}");
                        assert_eq!(key.offsets.vlan_tags, full.offsets.vlan_tags);
                        assert_eq!((key.offsets.l4, key.offsets.ip_proto), (0, 0));
                    } else {
                        assert_eq!(key.layers, Layers::default());
                        assert_eq!(key.offsets, Offsets::default());
                    }
                }
            }
        }
    }

    #[test]
    fn extract_into_overwrites_the_previous_key() {
        let mut arp = eth(0x0806);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        let mut key = extract(&arp, 3);
        assert!(key.layers.contains(Layers::ARP));
        let short = eth(0x88cc);
        extract_into(&short, 5, &mut key);
        assert_eq!(key, extract(&short, 5));
        assert_eq!(key.in_port(), 5);
        assert!(!key.layers.contains(Layers::ARP));
    }

    #[test]
    fn short_frames_only_have_in_port() {
        for n in 0..14 {
            let k = extract(&vec![0u8; n], 7);
            assert_eq!(k.in_port(), 7);
            assert_eq!(k.get(Field::InPhyPort), 7);
            assert_eq!(k.layers, Layers::NONE);
        }
    }

    #[test]
    fn qinq_takes_outer_tag_and_inner_ethertype() {
        let mut f = eth(0x88a8);
        f.extend_from_slice(&[0xa0, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x06]);
        let k = extract(&f, 1);
        assert_eq!(k.vlan_vid(), 0x1064);
        assert_eq!(k.get(Field::VlanPcp), 5);
        assert_eq!(k.eth_type(), 0x0806);
        assert!(k.layers.contains(Layers::VLAN | Layers::VLAN_QINQ));
        assert!(!k.layers.contains(Layers::ARP), "ARP body missing");
        assert_eq!(k.offsets.l3, 22);
        assert_eq!(k.offsets.vlan_tags, 2);
    }

    #[test]
    fn truncated_tag_leaves_tpid_as_eth_type() {
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0x00, 0x05]);
        let k = extract(&f, 1);
        assert_eq!((k.eth_type(), k.vlan_vid()), (0x8100, 0));
        assert!(!k.layers.contains(Layers::VLAN));
    }

    #[test]
    fn exthdr_bits_follow_order_rules() {
        let mut w = ExtWalk::default();
        for nh in [
            ipp::HOPOPT,
            ipp::IPV6_OPTS,
            ipp::IPV6_ROUTE,
            ipp::IPV6_FRAG,
            ipp::AH,
            ipp::IPV6_OPTS,
        ] {
            w.note(nh);
        }
        assert_eq!(
            w.flags,
            ieh::HOP | ieh::DEST | ieh::ROUTER | ieh::FRAG | ieh::AUTH
        );
        let mut w = ExtWalk::default();
        w.note(ipp::IPV6_ROUTE);
        w.note(ipp::HOPOPT);
        assert_eq!(w.flags, ieh::ROUTER | ieh::HOP | ieh::UNSEQ);
        let mut w = ExtWalk::default();
        w.note(ipp::IPV6_FRAG);
        w.note(ipp::IPV6_FRAG);
        assert_eq!(w.flags, ieh::FRAG | ieh::UNREP);
        let mut w = ExtWalk::default();
        w.note(ipp::IPV6_OPTS);
        w.note(ipp::IPV6_OPTS);
        w.note(ipp::IPV6_OPTS);
        assert_eq!(w.flags, ieh::DEST | ieh::UNREP);
    }
}
