//! Open vSwitch (Nicira) extensions as `ovs-ofctl -O OpenFlow13` puts them on the wire:
//! experimenter actions with vendor [`NX_VENDOR_ID`] and a 16-bit subtype (`NXAST_*` in
//! Open vSwitch's `lib/ofp-actions.c`), and the NXM OXM classes 0x0000/0x0001 plus the
//! OpenFlow 1.5 packet-register class 0x8001 (`include/openvswitch/meta-flow.h`).
//!
//! Real flow tables (OpenStack's firewall driver, OVN, the seed's staged tables) are written
//! with these; a switch that refuses them cannot run those tables. Every encoding here was
//! checked against `ovs-ofctl -O OpenFlow13 -mmmmm parse-flow`, which prints the bytes it
//! would send.
//!
//! Actions keep the field headers they came with (a `move` from `NXM_OF_ETH_SRC` is sent
//! back as `NXM_OF_ETH_SRC`), so a dump prints exactly what OVS prints for the same flow.
//! New extensions (connection tracking, tunnels) add a subtype constant, an [`NxAction`]
//! variant with its arms in [`NxAction::encode_body`]/[`NxAction::decode`], and their
//! fields to [`NxmField`].

use crate::error::DecodeError;
use crate::oxm::{oxm_header, OxmField, OxmTlv, OFPXMC_OPENFLOW_BASIC};
use crate::wire::{put_u16, put_u32, put_u64, put_u8, put_zeros, Reader};

/// The Nicira vendor id every Open vSwitch extension action and message carries.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

/// Subtypes (`enum nx_action_subtype`).
pub const NXAST_RESUBMIT: u16 = 1;
pub const NXAST_REG_MOVE: u16 = 6;
pub const NXAST_REG_LOAD: u16 = 7;
pub const NXAST_NOTE: u16 = 8;
pub const NXAST_RESUBMIT_TABLE: u16 = 14;
pub const NXAST_REG_LOAD2: u16 = 33;
pub const NXAST_CONJUNCTION: u16 = 34;
pub const NXAST_CT: u16 = 35;
pub const NXAST_NAT: u16 = 36;
pub const NXAST_CT_CLEAR: u16 = 43;

/// `ct` flags (`NX_CT_F_*`).
pub const NX_CT_F_COMMIT: u16 = 1;
pub const NX_CT_F_FORCE: u16 = 2;
/// `recirc_table` of a `ct` without `table=`.
pub const NX_CT_RECIRC_NONE: u8 = 0xff;
/// `nat` flags (`NX_NAT_F_*`).
pub const NX_NAT_F_SRC: u16 = 1;
pub const NX_NAT_F_DST: u16 = 2;
pub const NX_NAT_F_PERSISTENT: u16 = 4;
pub const NX_NAT_F_PROTO_HASH: u16 = 8;
pub const NX_NAT_F_PROTO_RANDOM: u16 = 16;
/// `nat` range_present bits (`NX_NAT_RANGE_*`).
pub const NX_NAT_RANGE_IPV4_MIN: u16 = 1;
pub const NX_NAT_RANGE_IPV4_MAX: u16 = 2;
pub const NX_NAT_RANGE_IPV6_MIN: u16 = 4;
pub const NX_NAT_RANGE_IPV6_MAX: u16 = 8;
pub const NX_NAT_RANGE_PROTO_MIN: u16 = 16;
pub const NX_NAT_RANGE_PROTO_MAX: u16 = 32;

/// The conntrack fields' numbers in class 0x0001 (`meta-flow.h`).
const CT_FIELDS: &[(u8, NxmField)] = &[
    (105, NxmField::CtState),
    (106, NxmField::CtZone),
    (107, NxmField::CtMark),
    (108, NxmField::CtLabel),
    (119, NxmField::CtNwProto),
    (120, NxmField::CtNwSrc),
    (121, NxmField::CtNwDst),
    (124, NxmField::CtTpSrc),
    (125, NxmField::CtTpDst),
];

/// OXM class of NXM_OF_* fields (OpenFlow 1.0 fields in Open vSwitch's NXM format).
pub const NXM_0: u16 = 0x0000;
/// OXM class of NXM_NX_* fields (registers, conntrack, tunnels...).
pub const NXM_1: u16 = 0x0001;
/// OXM class OFPXMC_PACKET_REGS (OpenFlow 1.5; Open vSwitch sends `xregN` with it).
pub const OFPXMC_PACKET_REGS: u16 = 0x8001;

/// The in_port value of a `resubmit(,T)`: OpenFlow 1.0's OFPP_IN_PORT, "keep in_port".
pub const NX_IN_PORT: u16 = 0xfff8;

/// Registers an Open vSwitch flow can use: `reg0`-`reg15`.
pub const N_REGS: u8 = 16;
/// 64-bit registers `xreg0`-`xreg7` (each the pair `reg2n`:`reg2n+1`).
pub const N_XREGS: u8 = 8;

/// A field outside OPENFLOW_BASIC that a match, set-field or reg-load can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NxmField {
    /// `reg0`-`reg15`: NXM_NX_REGn, class 0x0001, field n, 32 bits.
    Reg(u8),
    /// `xreg0`-`xreg7`: OXM_OF_PKT_REGn, class 0x8001, field n, 64 bits.
    Xreg(u8),
    /// `conj_id`: NXM_NX_CONJ_ID, class 0x0001, field 37, 32 bits (not maskable).
    ConjId,
    /// Connection tracking (class 0x0001): `ct_state` (105, 32 bits, the `CS_*` bits),
    /// `ct_zone` (106, 16, exact), `ct_mark` (107, 32), `ct_label` (108, 128),
    /// `ct_nw_proto` (119, 8, exact), `ct_nw_src`/`ct_nw_dst` (120/121, 32: the original
    /// direction's addresses), `ct_tp_src`/`ct_tp_dst` (124/125, 16).
    CtState,
    CtZone,
    CtMark,
    CtLabel,
    CtNwProto,
    CtNwSrc,
    CtNwDst,
    CtTpSrc,
    CtTpDst,
    /// The outer IPv4 source of a decapsulated packet (`tun_src`, NXM_NX_TUN_IPV4_SRC:
    /// class 0x0001, field 31, 32 bits, maskable).
    TunSrc,
    /// The outer IPv4 destination: on decap the local endpoint, before output to a
    /// `remote_ip=flow` tunnel port the remote (`tun_dst`, NXM_NX_TUN_IPV4_DST, field 32).
    TunDst,
    /// `tun_metadata0`-`tun_metadata63` (NXM_NX_TUN_METADATAn: class 0x0001, field 40+n,
    /// maskable): the data of the Geneve option the switch's TLV map assigns to index n.
    /// On the wire its length varies (ovs-ofctl sends only the significant bytes, 1 to
    /// 124); this codec holds the [`TUN_METADATA_BYTES`] bytes the switch stores per
    /// option and refuses a value or mask with more significant bytes than that.
    TunMetadata(u8),
}

/// How many `tun_metadataN` fields OpenFlow has (NXM_NX_TUN_METADATA0-63).
pub const N_TUN_METADATA: u8 = 64;
/// The NXM field number of `tun_metadata0`.
pub const NXM_TUN_METADATA0: u8 = 40;
/// Bytes of option data the switch keeps per `tun_metadataN` (its width in this codec).
pub const TUN_METADATA_BYTES: usize = 4;
/// The longest option data Geneve (and Open vSwitch's TLV map) allows.
pub const TLV_MAX_OPT_SIZE: usize = 124;

impl NxmField {
    /// The field for an OXM class and field number, if this codec knows it.
    pub fn from_class_field(class: u16, field: u8) -> Option<NxmField> {
        match (class, field) {
            (NXM_1, n) if n < N_REGS => Some(NxmField::Reg(n)),
            (NXM_1, 37) => Some(NxmField::ConjId),
            (NXM_1, f) if (NXM_TUN_METADATA0..NXM_TUN_METADATA0 + N_TUN_METADATA).contains(&f) => {
                Some(NxmField::TunMetadata(f - NXM_TUN_METADATA0))
            }
            (NXM_1, 31) => Some(NxmField::TunSrc),
            (NXM_1, 32) => Some(NxmField::TunDst),
            (NXM_1, f) => CT_FIELDS.iter().find(|c| c.0 == f).map(|c| c.1),
            (OFPXMC_PACKET_REGS, n) if n < N_XREGS => Some(NxmField::Xreg(n)),
            _ => None,
        }
    }

    pub const fn class(self) -> u16 {
        match self {
            NxmField::Xreg(_) => OFPXMC_PACKET_REGS,
            _ => NXM_1,
        }
    }

    pub const fn field(self) -> u8 {
        match self {
            NxmField::Reg(n) | NxmField::Xreg(n) => n,
            NxmField::ConjId => 37,
            NxmField::CtState => 105,
            NxmField::CtZone => 106,
            NxmField::CtMark => 107,
            NxmField::CtLabel => 108,
            NxmField::CtNwProto => 119,
            NxmField::CtNwSrc => 120,
            NxmField::CtNwDst => 121,
            NxmField::CtTpSrc => 124,
            NxmField::CtTpDst => 125,
            NxmField::TunSrc => 31,
            NxmField::TunDst => 32,
            NxmField::TunMetadata(n) => NXM_TUN_METADATA0 + n,
        }
    }

    /// Payload bytes of the value.
    pub const fn width(self) -> usize {
        match self {
            NxmField::Reg(_)
            | NxmField::ConjId
            | NxmField::CtState
            | NxmField::CtMark
            | NxmField::CtNwSrc
            | NxmField::CtNwDst
            | NxmField::TunSrc
            | NxmField::TunDst => 4,
            NxmField::TunMetadata(_) => TUN_METADATA_BYTES,
            NxmField::Xreg(_) => 8,
            NxmField::CtZone | NxmField::CtTpSrc | NxmField::CtTpDst => 2,
            NxmField::CtNwProto => 1,
            NxmField::CtLabel => 16,
        }
    }

    pub const fn maskable(self) -> bool {
        !matches!(
            self,
            NxmField::ConjId | NxmField::CtZone | NxmField::CtNwProto
        )
    }

    /// A connection-tracking field (set by `ct`, read-only to `set_field` except
    /// `ct_mark`/`ct_label` inside `ct(exec(...))`).
    pub const fn is_ct(self) -> bool {
        !matches!(
            self,
            NxmField::Reg(_)
                | NxmField::Xreg(_)
                | NxmField::ConjId
                | NxmField::TunSrc
                | NxmField::TunDst
                | NxmField::TunMetadata(_)
        )
    }

    /// A tunnel metadata field (`tun_src`, `tun_dst`).
    pub const fn is_tunnel(self) -> bool {
        matches!(self, NxmField::TunSrc | NxmField::TunDst)
    }

    /// All ones over the width.
    pub const fn full_mask(self) -> u128 {
        if self.width() >= 16 {
            u128::MAX
        } else {
            (1u128 << (self.width() * 8)) - 1
        }
    }

    pub const fn header(self, has_mask: bool) -> u32 {
        let len = if has_mask {
            2 * self.width()
        } else {
            self.width()
        };
        oxm_header(self.class(), self.field(), has_mask, len as u8)
    }

    /// The name ovs-ofctl uses in matches and `set_field` (`reg3`, `xreg1`, `conj_id`).
    pub fn name(self) -> String {
        match self {
            NxmField::Reg(n) => format!("reg{n}"),
            NxmField::Xreg(n) => format!("xreg{n}"),
            NxmField::ConjId => "conj_id".into(),
            NxmField::TunSrc => "tun_src".into(),
            NxmField::TunDst => "tun_dst".into(),
            NxmField::TunMetadata(n) => format!("tun_metadata{n}"),
            f => f.ct_name().into(),
        }
    }

    fn ct_name(self) -> &'static str {
        match self {
            NxmField::CtState => "ct_state",
            NxmField::CtZone => "ct_zone",
            NxmField::CtMark => "ct_mark",
            NxmField::CtLabel => "ct_label",
            NxmField::CtNwProto => "ct_nw_proto",
            NxmField::CtNwSrc => "ct_nw_src",
            NxmField::CtNwDst => "ct_nw_dst",
            NxmField::CtTpSrc => "ct_tp_src",
            NxmField::CtTpDst => "ct_tp_dst",
            _ => "",
        }
    }

    /// The field whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<NxmField> {
        match name {
            "conj_id" => return Some(NxmField::ConjId),
            "tun_src" => return Some(NxmField::TunSrc),
            "tun_dst" => return Some(NxmField::TunDst),
            _ => {}
        }
        if let Some(c) = CT_FIELDS.iter().find(|c| c.1.ct_name() == name) {
            return Some(c.1);
        }
        let (n, max, make): (&str, u8, fn(u8) -> NxmField) =
            if let Some(n) = name.strip_prefix("tun_metadata") {
                (n, N_TUN_METADATA, NxmField::TunMetadata)
            } else if let Some(n) = name.strip_prefix("xreg") {
                (n, N_XREGS, NxmField::Xreg)
            } else if let Some(n) = name.strip_prefix("reg") {
                (n, N_REGS, NxmField::Reg)
            } else {
                return None;
            };
        let i: u8 = n.parse().ok()?;
        (i < max && !n.starts_with('+')).then(|| make(i))
    }

    /// The name of its header as ovs-ofctl prints it in `move`/`load` (`NXM_NX_REG3`).
    pub fn header_name(self) -> String {
        match self {
            NxmField::Reg(n) => format!("NXM_NX_REG{n}"),
            NxmField::Xreg(n) => format!("OXM_OF_PKT_REG{n}"),
            NxmField::ConjId => "NXM_NX_CONJ_ID".into(),
            NxmField::TunSrc => "NXM_NX_TUN_IPV4_SRC".into(),
            NxmField::TunDst => "NXM_NX_TUN_IPV4_DST".into(),
            NxmField::TunMetadata(n) => format!("NXM_NX_TUN_METADATA{n}"),
            f => format!("NXM_NX_{}", f.ct_name().to_ascii_uppercase()),
        }
    }
}

/// A match or set-field TLV of an [`NxmField`]; value and mask fit the field's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NxmOxm {
    field: NxmField,
    value: u128,
    mask: Option<u128>,
}

impl NxmOxm {
    /// `None` if value or mask do not fit the field.
    pub fn new(field: NxmField, value: u128, mask: Option<u128>) -> Option<NxmOxm> {
        let full = field.full_mask();
        (value & !full == 0 && mask.is_none_or(|m| m & !full == 0)).then_some(NxmOxm {
            field,
            value,
            mask,
        })
    }

    pub fn field(&self) -> NxmField {
        self.field
    }

    pub fn value(&self) -> u128 {
        self.value
    }

    pub fn mask(&self) -> Option<u128> {
        self.mask
    }

    pub fn header(&self) -> u32 {
        self.field.header(self.mask.is_some())
    }

    pub(crate) fn encode_payload(&self, out: &mut Vec<u8>) {
        let w = self.field.width();
        out.extend_from_slice(&self.value.to_be_bytes()[16 - w..]);
        if let Some(m) = self.mask {
            out.extend_from_slice(&m.to_be_bytes()[16 - w..]);
        }
    }

    /// From a TLV's payload (value, then mask if `has_mask`).
    pub(crate) fn from_payload(field: NxmField, has_mask: bool, payload: &[u8]) -> Option<NxmOxm> {
        if let NxmField::TunMetadata(_) = field {
            return Self::tun_metadata_from_payload(field, has_mask, payload);
        }
        let w = field.width();
        if payload.len() != if has_mask { 2 * w } else { w } {
            return None;
        }
        let be = |b: &[u8]| b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x));
        Some(NxmOxm {
            field,
            value: be(&payload[..w]),
            mask: has_mask.then(|| be(&payload[w..])),
        })
    }

    /// `tun_metadataN`: any length up to [`TLV_MAX_OPT_SIZE`] per part (value, mask), as
    /// long as only the last [`TUN_METADATA_BYTES`] bytes are nonzero.
    fn tun_metadata_from_payload(
        field: NxmField,
        has_mask: bool,
        payload: &[u8],
    ) -> Option<NxmOxm> {
        let parts = if has_mask { 2 } else { 1 };
        if !payload.len().is_multiple_of(parts) || payload.len() / parts > TLV_MAX_OPT_SIZE {
            return None;
        }
        let n = payload.len() / parts;
        let part = |b: &[u8]| -> Option<u128> {
            let cut = b.len().saturating_sub(TUN_METADATA_BYTES);
            b[..cut].iter().all(|&x| x == 0).then(|| {
                b[cut..]
                    .iter()
                    .fold(0u128, |a, &x| (a << 8) | u128::from(x))
            })
        };
        Some(NxmOxm {
            field,
            value: part(&payload[..n])?,
            mask: if has_mask {
                Some(part(&payload[n..])?)
            } else {
                None
            },
        })
    }

    /// Per-field rules, as [`crate::BasicOxm::validate`] checks basic fields.
    pub fn validate(&self) -> Result<(), crate::error::BadMatchCode> {
        use crate::error::BadMatchCode;
        match self.mask {
            Some(_) if !self.field.maskable() => Err(BadMatchCode::BadMask),
            Some(m) if self.value & !m != 0 => Err(BadMatchCode::BadWildcards),
            _ => Ok(()),
        }
    }
}

/// OpenFlow 1.0 fields under their NXM headers (class 0x0000, and the NXM_NX_ ones of class
/// 0x0001 that OpenFlow 1.3 also has): ovs-ofctl names these in `move` and `load`
/// (`move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]`) even in OpenFlow 1.3.
const NXM_ALIASES: &[(u16, u8, &str, OxmField)] = &[
    (NXM_0, 1, "NXM_OF_ETH_DST", OxmField::EthDst),
    (NXM_0, 2, "NXM_OF_ETH_SRC", OxmField::EthSrc),
    (NXM_0, 3, "NXM_OF_ETH_TYPE", OxmField::EthType),
    (NXM_0, 6, "NXM_OF_IP_PROTO", OxmField::IpProto),
    (NXM_0, 7, "NXM_OF_IP_SRC", OxmField::Ipv4Src),
    (NXM_0, 8, "NXM_OF_IP_DST", OxmField::Ipv4Dst),
    (NXM_0, 9, "NXM_OF_TCP_SRC", OxmField::TcpSrc),
    (NXM_0, 10, "NXM_OF_TCP_DST", OxmField::TcpDst),
    (NXM_0, 11, "NXM_OF_UDP_SRC", OxmField::UdpSrc),
    (NXM_0, 12, "NXM_OF_UDP_DST", OxmField::UdpDst),
    (NXM_0, 13, "NXM_OF_ICMP_TYPE", OxmField::Icmpv4Type),
    (NXM_0, 14, "NXM_OF_ICMP_CODE", OxmField::Icmpv4Code),
    (NXM_0, 15, "NXM_OF_ARP_OP", OxmField::ArpOp),
    (NXM_0, 16, "NXM_OF_ARP_SPA", OxmField::ArpSpa),
    (NXM_0, 17, "NXM_OF_ARP_TPA", OxmField::ArpTpa),
    (NXM_1, 17, "NXM_NX_ARP_SHA", OxmField::ArpSha),
    (NXM_1, 18, "NXM_NX_ARP_THA", OxmField::ArpTha),
    (NXM_1, 19, "NXM_NX_IPV6_SRC", OxmField::Ipv6Src),
    (NXM_1, 20, "NXM_NX_IPV6_DST", OxmField::Ipv6Dst),
    (NXM_1, 21, "NXM_NX_ICMPV6_TYPE", OxmField::Icmpv6Type),
    (NXM_1, 22, "NXM_NX_ICMPV6_CODE", OxmField::Icmpv6Code),
    (NXM_1, 23, "NXM_NX_ND_TARGET", OxmField::Ipv6NdTarget),
    (NXM_1, 24, "NXM_NX_ND_SLL", OxmField::Ipv6NdSll),
    (NXM_1, 25, "NXM_NX_ND_TLL", OxmField::Ipv6NdTll),
];

/// What a field header in `move`/`load` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldRef {
    Basic(OxmField),
    Nxm(NxmField),
}

impl FieldRef {
    /// The field a (mask-less) header names: OPENFLOW_BASIC, an NXM alias of one, or an
    /// [`NxmField`]. The header's length must be the field's width.
    pub fn from_header(header: u32) -> Option<FieldRef> {
        let class = (header >> 16) as u16;
        let field = ((header >> 9) & 0x7f) as u8;
        let len = (header & 0xff) as usize;
        if header & 0x100 != 0 {
            return None;
        }
        let r = if class == OFPXMC_OPENFLOW_BASIC {
            FieldRef::Basic(OxmField::from_raw(field)?)
        } else if let Some(&(_, _, _, f)) = NXM_ALIASES
            .iter()
            .find(|&&(c, n, _, _)| c == class && n == field)
        {
            FieldRef::Basic(f)
        } else {
            FieldRef::Nxm(NxmField::from_class_field(class, field)?)
        };
        (r.width() == len).then_some(r)
    }

    /// The header Open vSwitch puts on the wire for this field in OpenFlow 1.3: the NXM one
    /// where the field has one, else the OXM one.
    pub fn header(self) -> u32 {
        match self {
            FieldRef::Basic(f) => NXM_ALIASES
                .iter()
                .find(|a| a.3 == f)
                .map(|&(c, n, _, _)| oxm_header(c, n, false, f.width() as u8))
                .unwrap_or(f.header(false)),
            FieldRef::Nxm(f) => f.header(false),
        }
    }

    pub fn width(self) -> usize {
        match self {
            FieldRef::Basic(f) => f.width(),
            FieldRef::Nxm(f) => f.width(),
        }
    }

    /// Bits the field has (what `[]` means in `NXM_NX_REG0[]`).
    pub fn bits(self) -> u32 {
        match self {
            FieldRef::Basic(f) => f.bits(),
            FieldRef::Nxm(f) => 8 * f.width() as u32,
        }
    }
}

/// The name ovs-ofctl prints for a field header in `move`/`load` (`NXM_OF_ETH_DST`,
/// `OXM_OF_METADATA`, `NXM_NX_REG0`); `None` for a header this codec does not know.
pub fn header_name(header: u32) -> Option<String> {
    let class = (header >> 16) as u16;
    let field = ((header >> 9) & 0x7f) as u8;
    if let Some(a) = NXM_ALIASES.iter().find(|a| a.0 == class && a.1 == field) {
        return Some(a.2.to_owned());
    }
    match FieldRef::from_header(header & !0x100)? {
        FieldRef::Basic(f) => Some(format!("OXM_OF_{}", basic_upper_name(f))),
        FieldRef::Nxm(f) => Some(f.header_name()),
    }
}

/// The header for a name as ovs-ofctl accepts it in `move`/`load`: an NXM/OXM header name
/// (`NXM_OF_ETH_DST`, `OXM_OF_METADATA`, `NXM_NX_REG0`) or a plain field name (`reg0`,
/// `eth_dst`, `metadata`), which gets the header Open vSwitch would send.
pub fn header_by_name(name: &str) -> Option<u32> {
    if let Some(a) = NXM_ALIASES.iter().find(|a| a.2.eq_ignore_ascii_case(name)) {
        return Some(oxm_header(a.0, a.1, false, a.3.width() as u8));
    }
    let upper = name.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("NXM_NX_REG") {
        let n: u8 = rest.parse().ok()?;
        return (n < N_REGS).then(|| NxmField::Reg(n).header(false));
    }
    if let Some(rest) = upper.strip_prefix("OXM_OF_PKT_REG") {
        let n: u8 = rest.parse().ok()?;
        return (n < N_XREGS).then(|| NxmField::Xreg(n).header(false));
    }
    if let Some(rest) = upper.strip_prefix("OXM_OF_") {
        let f = OxmField::ALL
            .iter()
            .find(|f| basic_upper_name(**f) == rest)?;
        return Some(f.header(false));
    }
    match upper.as_str() {
        "NXM_NX_TUN_IPV4_SRC" => return Some(NxmField::TunSrc.header(false)),
        "NXM_NX_TUN_IPV4_DST" => return Some(NxmField::TunDst.header(false)),
        _ => {}
    }
    if let Some(rest) = upper.strip_prefix("NXM_NX_") {
        if let Some(c) = CT_FIELDS
            .iter()
            .find(|c| c.1.ct_name().eq_ignore_ascii_case(rest))
        {
            return Some(c.1.header(false));
        }
    }
    if let Some(f) = NxmField::from_name(name) {
        return Some(FieldRef::Nxm(f).header());
    }
    None
}

/// OXM_OF_* suffixes as openflow.h spells them.
pub fn basic_upper_name(f: OxmField) -> &'static str {
    use OxmField::*;
    match f {
        InPort => "IN_PORT",
        InPhyPort => "IN_PHY_PORT",
        Metadata => "METADATA",
        EthDst => "ETH_DST",
        EthSrc => "ETH_SRC",
        EthType => "ETH_TYPE",
        VlanVid => "VLAN_VID",
        VlanPcp => "VLAN_PCP",
        IpDscp => "IP_DSCP",
        IpEcn => "IP_ECN",
        IpProto => "IP_PROTO",
        Ipv4Src => "IPV4_SRC",
        Ipv4Dst => "IPV4_DST",
        TcpSrc => "TCP_SRC",
        TcpDst => "TCP_DST",
        UdpSrc => "UDP_SRC",
        UdpDst => "UDP_DST",
        SctpSrc => "SCTP_SRC",
        SctpDst => "SCTP_DST",
        Icmpv4Type => "ICMPV4_TYPE",
        Icmpv4Code => "ICMPV4_CODE",
        ArpOp => "ARP_OP",
        ArpSpa => "ARP_SPA",
        ArpTpa => "ARP_TPA",
        ArpSha => "ARP_SHA",
        ArpTha => "ARP_THA",
        Ipv6Src => "IPV6_SRC",
        Ipv6Dst => "IPV6_DST",
        Ipv6Flabel => "IPV6_FLABEL",
        Icmpv6Type => "ICMPV6_TYPE",
        Icmpv6Code => "ICMPV6_CODE",
        Ipv6NdTarget => "IPV6_ND_TARGET",
        Ipv6NdSll => "IPV6_ND_SLL",
        Ipv6NdTll => "IPV6_ND_TLL",
        MplsLabel => "MPLS_LABEL",
        MplsTc => "MPLS_TC",
        MplsBos => "MPLS_BOS",
        PbbIsid => "PBB_ISID",
        TunnelId => "TUNNEL_ID",
        Ipv6Exthdr => "IPV6_EXTHDR",
    }
}

/// One Nicira extension action. Field headers are kept as sent (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NxAction {
    /// NXAST_RESUBMIT (`table` 0xff: the current table) or NXAST_RESUBMIT_TABLE. `in_port`
    /// is 16-bit, with OpenFlow 1.0's reserved numbers ([`NX_IN_PORT`]: keep in_port).
    Resubmit { in_port: u16, table: u8 },
    /// NXAST_REG_MOVE: copy `n_bits` bits from `src` at `src_ofs` to `dst` at `dst_ofs`.
    RegMove {
        n_bits: u16,
        src_ofs: u16,
        dst_ofs: u16,
        src: u32,
        dst: u32,
    },
    /// NXAST_REG_LOAD (`load:V->F[a..b]`): `ofs_nbits` is `ofs << 6 | (n_bits - 1)`.
    RegLoad {
        ofs_nbits: u16,
        dst: u32,
        value: u64,
    },
    /// NXAST_REG_LOAD2: a set-field whose TLV may carry a mask.
    RegLoad2(OxmTlv),
    /// NXAST_NOTE: bytes after the subtype, padding included (ovs-ofctl prints them all).
    Note(Vec<u8>),
    /// NXAST_CONJUNCTION: `clause` counts from 0 (`conjunction(id,1/2)` has clause 0).
    Conjunction { clause: u8, n_clauses: u8, id: u32 },
    /// NXAST_CT_CLEAR.
    CtClear,
    /// NXAST_CT: `zone_src` is the header of the field the zone comes from (0: `zone` is
    /// the zone itself; else `zone` is that field's `ofs << 6 | (n_bits - 1)`); `table`
    /// [`NX_CT_RECIRC_NONE`] for none; `actions` are the nested ones (`exec(...)` and
    /// `nat(...)` in the order they were written, as Open vSwitch keeps them).
    Ct {
        flags: u16,
        zone_src: u32,
        zone: u16,
        table: u8,
        alg: u16,
        actions: Vec<crate::Action>,
    },
    /// NXAST_NAT (only meaningful nested in `ct`).
    Nat(NxNat),
}

/// An NXAST_NAT's flags and range (what is absent from the range is not on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NxNat {
    pub flags: u16,
    pub addr_min: Option<std::net::IpAddr>,
    pub addr_max: Option<std::net::IpAddr>,
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
}

impl NxNat {
    fn range_present(&self) -> u16 {
        use std::net::IpAddr::*;
        let mut r = 0;
        match self.addr_min {
            Some(V4(_)) => r |= NX_NAT_RANGE_IPV4_MIN,
            Some(V6(_)) => r |= NX_NAT_RANGE_IPV6_MIN,
            None => {}
        }
        match self.addr_max {
            Some(V4(_)) => r |= NX_NAT_RANGE_IPV4_MAX,
            Some(V6(_)) => r |= NX_NAT_RANGE_IPV6_MAX,
            None => {}
        }
        if self.port_min.is_some() {
            r |= NX_NAT_RANGE_PROTO_MIN;
        }
        if self.port_max.is_some() {
            r |= NX_NAT_RANGE_PROTO_MAX;
        }
        r
    }
}

impl NxAction {
    pub fn subtype(&self) -> u16 {
        match self {
            NxAction::Resubmit { table: 0xff, .. } => NXAST_RESUBMIT,
            NxAction::Resubmit { .. } => NXAST_RESUBMIT_TABLE,
            NxAction::RegMove { .. } => NXAST_REG_MOVE,
            NxAction::RegLoad { .. } => NXAST_REG_LOAD,
            NxAction::RegLoad2(_) => NXAST_REG_LOAD2,
            NxAction::Note(_) => NXAST_NOTE,
            NxAction::Conjunction { .. } => NXAST_CONJUNCTION,
            NxAction::CtClear => NXAST_CT_CLEAR,
            NxAction::Ct { .. } => NXAST_CT,
            NxAction::Nat(_) => NXAST_NAT,
        }
    }

    /// Start bit of a REG_LOAD.
    pub fn load_ofs(ofs_nbits: u16) -> u16 {
        ofs_nbits >> 6
    }

    /// Bit count of a REG_LOAD.
    pub fn load_n_bits(ofs_nbits: u16) -> u16 {
        (ofs_nbits & 0x3f) + 1
    }

    /// Everything after the experimenter id: subtype and body, unpadded (the action
    /// encoder pads to 8).
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_u16(out, self.subtype());
        match self {
            NxAction::Resubmit { in_port, table } => {
                put_u16(out, *in_port);
                if *table == 0xff {
                    put_zeros(out, 4);
                } else {
                    put_u8(out, *table);
                    put_zeros(out, 3);
                }
            }
            NxAction::RegMove {
                n_bits,
                src_ofs,
                dst_ofs,
                src,
                dst,
            } => {
                put_u16(out, *n_bits);
                put_u16(out, *src_ofs);
                put_u16(out, *dst_ofs);
                put_u32(out, *src);
                put_u32(out, *dst);
            }
            NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            } => {
                put_u16(out, *ofs_nbits);
                put_u32(out, *dst);
                put_u64(out, *value);
            }
            NxAction::RegLoad2(tlv) => tlv.encode(out),
            NxAction::Note(bytes) => out.extend_from_slice(bytes),
            NxAction::Conjunction {
                clause,
                n_clauses,
                id,
            } => {
                put_u8(out, *clause);
                put_u8(out, *n_clauses);
                put_u32(out, *id);
            }
            NxAction::CtClear => put_zeros(out, 6),
            NxAction::Ct {
                flags,
                zone_src,
                zone,
                table,
                alg,
                actions,
            } => {
                put_u16(out, *flags);
                put_u32(out, *zone_src);
                put_u16(out, *zone);
                put_u8(out, *table);
                put_zeros(out, 3);
                put_u16(out, *alg);
                crate::action::encode_actions(actions, out);
            }
            NxAction::Nat(n) => {
                put_zeros(out, 2);
                put_u16(out, n.flags);
                put_u16(out, n.range_present());
                for a in [n.addr_min, n.addr_max].into_iter().flatten() {
                    match a {
                        std::net::IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
                        std::net::IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
                    }
                }
                for p in [n.port_min, n.port_max].into_iter().flatten() {
                    put_u16(out, p);
                }
            }
        }
    }

    /// Decodes the body after the experimenter id (`data`: subtype first, padding
    /// included). `Ok(None)`: a subtype this codec does not implement (the caller keeps the
    /// raw experimenter action, which the agent refuses with BAD_EXPERIMENTER).
    pub(crate) fn decode(data: &[u8]) -> Result<Option<NxAction>, DecodeError> {
        let err = DecodeError::BadNxAction {
            subtype: data
                .get(..2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
        };
        let mut r = Reader::new(data, err);
        let subtype = r.u16()?;
        let a = match subtype {
            NXAST_RESUBMIT | NXAST_RESUBMIT_TABLE => {
                let in_port = r.u16()?;
                let table = if subtype == NXAST_RESUBMIT {
                    0xff
                } else {
                    r.u8()?
                };
                // A RESUBMIT_TABLE to table 255 means the same as a RESUBMIT.
                NxAction::Resubmit { in_port, table }
            }
            NXAST_REG_MOVE => NxAction::RegMove {
                n_bits: r.u16()?,
                src_ofs: r.u16()?,
                dst_ofs: r.u16()?,
                src: r.u32()?,
                dst: r.u32()?,
            },
            NXAST_REG_LOAD => NxAction::RegLoad {
                ofs_nbits: r.u16()?,
                dst: r.u32()?,
                value: r.u64()?,
            },
            NXAST_REG_LOAD2 => {
                let tlv = OxmTlv::decode(&mut r).map_err(|_| err)?;
                if r.rest().iter().any(|&b| b != 0) {
                    return Err(err);
                }
                NxAction::RegLoad2(tlv)
            }
            NXAST_NOTE => NxAction::Note(r.rest().to_vec()),
            NXAST_CONJUNCTION => NxAction::Conjunction {
                clause: r.u8()?,
                n_clauses: r.u8()?,
                id: r.u32()?,
            },
            NXAST_CT_CLEAR => NxAction::CtClear,
            NXAST_CT => {
                let flags = r.u16()?;
                let zone_src = r.u32()?;
                let zone = r.u16()?;
                let table = r.u8()?;
                r.skip(3)?;
                let alg = r.u16()?;
                let actions = crate::action::decode_actions(r.rest())?;
                NxAction::Ct {
                    flags,
                    zone_src,
                    zone,
                    table,
                    alg,
                    actions,
                }
            }
            NXAST_NAT => {
                r.skip(2)?;
                let flags = r.u16()?;
                let present = r.u16()?;
                let mut n = NxNat {
                    flags,
                    ..NxNat::default()
                };
                let v4 = |r: &mut Reader<'_>| -> Result<std::net::IpAddr, DecodeError> {
                    Ok(std::net::IpAddr::from(r.array::<4>()?))
                };
                let v6 = |r: &mut Reader<'_>| -> Result<std::net::IpAddr, DecodeError> {
                    Ok(std::net::IpAddr::from(r.array::<16>()?))
                };
                if present & NX_NAT_RANGE_IPV4_MIN != 0 {
                    n.addr_min = Some(v4(&mut r)?);
                }
                if present & NX_NAT_RANGE_IPV4_MAX != 0 {
                    n.addr_max = Some(v4(&mut r)?);
                }
                if present & NX_NAT_RANGE_IPV6_MIN != 0 {
                    n.addr_min = Some(v6(&mut r)?);
                }
                if present & NX_NAT_RANGE_IPV6_MAX != 0 {
                    n.addr_max = Some(v6(&mut r)?);
                }
                if present & NX_NAT_RANGE_PROTO_MIN != 0 {
                    n.port_min = Some(r.u16()?);
                }
                if present & NX_NAT_RANGE_PROTO_MAX != 0 {
                    n.port_max = Some(r.u16()?);
                }
                NxAction::Nat(n)
            }
            _ => return Ok(None),
        };
        Ok(Some(a))
    }
}
