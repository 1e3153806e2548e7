//! OXM (OpenFlow Extensible Match) TLVs and `ofp_match`.
//!
//! Values and masks of OPENFLOW_BASIC fields are held as right-aligned `u128` integers: every
//! basic field is at most 16 bytes, the field fixes the width, and a classifier can then test
//! `packet & mask == value` without caring about the field's type.

use crate::consts::OFPVID_PRESENT;
use crate::error::{BadMatchCode, DecodeError};
use crate::wire::{pad_to_8, patch_len, put_u16, put_u32, round_up_8, wire_enum, Reader};

/// `ofp_match_type` OFPMT_OXM, the only match type of OpenFlow 1.3.
pub const OFPMT_OXM: u16 = 1;
/// `ofp_match_type` OFPMT_STANDARD (OpenFlow 1.1, deprecated).
pub const OFPMT_STANDARD: u16 = 0;

/// OXM class of the fields the spec defines.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// OXM class whose TLVs start with a 32-bit experimenter id.
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;
/// Nicira NXM classes (backward compatibility); not decoded, refused with BAD_FIELD.
pub const OFPXMC_NXM_0: u16 = 0x0000;
/// See [`OFPXMC_NXM_0`].
pub const OFPXMC_NXM_1: u16 = 0x0001;

wire_enum! {
    /// `oxm_ofb_match_fields`: the 40 OPENFLOW_BASIC fields.
    pub enum OxmField: u8 {
        InPort = 0,
        InPhyPort = 1,
        Metadata = 2,
        EthDst = 3,
        EthSrc = 4,
        EthType = 5,
        VlanVid = 6,
        VlanPcp = 7,
        IpDscp = 8,
        IpEcn = 9,
        IpProto = 10,
        Ipv4Src = 11,
        Ipv4Dst = 12,
        TcpSrc = 13,
        TcpDst = 14,
        UdpSrc = 15,
        UdpDst = 16,
        SctpSrc = 17,
        SctpDst = 18,
        Icmpv4Type = 19,
        Icmpv4Code = 20,
        ArpOp = 21,
        ArpSpa = 22,
        ArpTpa = 23,
        ArpSha = 24,
        ArpTha = 25,
        Ipv6Src = 26,
        Ipv6Dst = 27,
        Ipv6Flabel = 28,
        Icmpv6Type = 29,
        Icmpv6Code = 30,
        Ipv6NdTarget = 31,
        Ipv6NdSll = 32,
        Ipv6NdTll = 33,
        MplsLabel = 34,
        MplsTc = 35,
        MplsBos = 36,
        PbbIsid = 37,
        TunnelId = 38,
        Ipv6Exthdr = 39,
    }
}

/// What a field requires of the rest of the match (spec table "Header match fields",
/// column "Prerequisite"). The pipeline enforces these; they live here because they are
/// part of the protocol. A field's prerequisite field has its own prerequisite, so checking
/// every present field also checks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prerequisite {
    /// No requirement.
    None,
    /// `field` must be present and matched exactly against one of `values`.
    Exact {
        field: OxmField,
        values: &'static [u128],
    },
    /// `field` must be present (IN_PHY_PORT requires IN_PORT).
    Present(OxmField),
    /// VLAN_VID must be present and match only tagged packets (VLAN_VID != NONE).
    VlanTagged,
}

const ETH_IPV4: &[u128] = &[0x0800];
const ETH_IPV6: &[u128] = &[0x86dd];
const ETH_IP: &[u128] = &[0x0800, 0x86dd];
const ETH_ARP: &[u128] = &[0x0806];
const ETH_MPLS: &[u128] = &[0x8847, 0x8848];
const ETH_PBB: &[u128] = &[0x88e7];
const PROTO_TCP: &[u128] = &[6];
const PROTO_UDP: &[u128] = &[17];
const PROTO_SCTP: &[u128] = &[132];
const PROTO_ICMP: &[u128] = &[1];
const PROTO_ICMPV6: &[u128] = &[58];
const ND_BOTH: &[u128] = &[135, 136];
const ND_SOLICIT: &[u128] = &[135];
const ND_ADVERT: &[u128] = &[136];

impl OxmField {
    /// Payload bytes of the value (a masked TLV carries twice this).
    pub const fn width(self) -> usize {
        use OxmField::*;
        match self {
            InPort | InPhyPort => 4,
            Metadata | TunnelId => 8,
            EthDst | EthSrc | ArpSha | ArpTha | Ipv6NdSll | Ipv6NdTll => 6,
            EthType | VlanVid | TcpSrc | TcpDst | UdpSrc | UdpDst | SctpSrc | SctpDst | ArpOp
            | Ipv6Exthdr => 2,
            VlanPcp | IpDscp | IpEcn | IpProto | Icmpv4Type | Icmpv4Code | Icmpv6Type
            | Icmpv6Code | MplsTc | MplsBos => 1,
            Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa | Ipv6Flabel | MplsLabel => 4,
            Ipv6Src | Ipv6Dst | Ipv6NdTarget => 16,
            PbbIsid => 3,
        }
    }

    /// Bits of the value the field actually uses (e.g. 6 for IP_DSCP, 13 for VLAN_VID
    /// including OFPVID_PRESENT); higher bits must be zero.
    pub const fn bits(self) -> u32 {
        use OxmField::*;
        match self {
            VlanVid => 13,
            VlanPcp | MplsTc => 3,
            IpDscp => 6,
            IpEcn => 2,
            Ipv6Flabel | MplsLabel => 20,
            MplsBos => 1,
            Ipv6Exthdr => 9,
            _ => (self.width() * 8) as u32,
        }
    }

    /// Whether the spec allows a mask on this field.
    pub const fn maskable(self) -> bool {
        use OxmField::*;
        matches!(
            self,
            Metadata
                | EthDst
                | EthSrc
                | VlanVid
                | Ipv4Src
                | Ipv4Dst
                | ArpSpa
                | ArpTpa
                | ArpSha
                | ArpTha
                | Ipv6Src
                | Ipv6Dst
                | Ipv6Flabel
                | PbbIsid
                | TunnelId
                | Ipv6Exthdr
                // Beyond OpenFlow 1.3's list: Open vSwitch masks transport ports (port
                // ranges as `tp_dst=0x1000/0xf000`, which OpenStack's firewall writes).
                | TcpSrc
                | TcpDst
                | UdpSrc
                | UdpDst
                | SctpSrc
                | SctpDst
        )
    }

    /// The field's prerequisite.
    pub const fn prerequisite(self) -> Prerequisite {
        use OxmField::*;
        use Prerequisite as P;
        const fn exact(field: OxmField, values: &'static [u128]) -> Prerequisite {
            Prerequisite::Exact { field, values }
        }
        match self {
            InPort | Metadata | EthDst | EthSrc | EthType | VlanVid | TunnelId => P::None,
            InPhyPort => P::Present(InPort),
            VlanPcp => P::VlanTagged,
            IpDscp | IpEcn | IpProto => exact(EthType, ETH_IP),
            Ipv4Src | Ipv4Dst => exact(EthType, ETH_IPV4),
            TcpSrc | TcpDst => exact(IpProto, PROTO_TCP),
            UdpSrc | UdpDst => exact(IpProto, PROTO_UDP),
            SctpSrc | SctpDst => exact(IpProto, PROTO_SCTP),
            Icmpv4Type | Icmpv4Code => exact(IpProto, PROTO_ICMP),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => exact(EthType, ETH_ARP),
            Ipv6Src | Ipv6Dst | Ipv6Flabel | Ipv6Exthdr => exact(EthType, ETH_IPV6),
            Icmpv6Type | Icmpv6Code => exact(IpProto, PROTO_ICMPV6),
            Ipv6NdTarget => exact(Icmpv6Type, ND_BOTH),
            Ipv6NdSll => exact(Icmpv6Type, ND_SOLICIT),
            Ipv6NdTll => exact(Icmpv6Type, ND_ADVERT),
            MplsLabel | MplsTc | MplsBos => exact(EthType, ETH_MPLS),
            PbbIsid => exact(EthType, ETH_PBB),
        }
    }

    /// The 32-bit OXM header of this field in the OPENFLOW_BASIC class.
    pub const fn header(self, has_mask: bool) -> u32 {
        let len = if has_mask {
            self.width() * 2
        } else {
            self.width()
        };
        oxm_header(OFPXMC_OPENFLOW_BASIC, self.raw(), has_mask, len as u8)
    }

    /// All ones over the field's width.
    pub const fn full_mask(self) -> u128 {
        width_mask(self.width())
    }
}

/// Packs an OXM header: class (16 bits), field (7), has_mask (1), length (8).
pub const fn oxm_header(class: u16, field: u8, has_mask: bool, length: u8) -> u32 {
    ((class as u32) << 16)
        | (((field & 0x7f) as u32) << 9)
        | ((has_mask as u32) << 8)
        | length as u32
}

const fn width_mask(width: usize) -> u128 {
    if width >= 16 {
        u128::MAX
    } else {
        (1u128 << (width * 8)) - 1
    }
}

/// An OPENFLOW_BASIC TLV. Fields are private so that value and mask always fit the field's
/// width (which makes encoding infallible and lossless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BasicOxm {
    field: OxmField,
    value: u128,
    mask: Option<u128>,
}

impl BasicOxm {
    /// An exact match; `None` if `value` does not fit the field's width.
    pub fn new(field: OxmField, value: u128) -> Option<Self> {
        (value & !field.full_mask() == 0).then_some(BasicOxm {
            field,
            value,
            mask: None,
        })
    }

    /// A masked match; `None` if value or mask do not fit the field's width. Whether the
    /// field may carry a mask at all is checked by [`Match::validate`], not here, so that a
    /// decoded request can still be represented and refused precisely.
    pub fn masked(field: OxmField, value: u128, mask: u128) -> Option<Self> {
        let full = field.full_mask();
        (value & !full == 0 && mask & !full == 0).then_some(BasicOxm {
            field,
            value,
            mask: Some(mask),
        })
    }

    /// Builds from big-endian bytes of exactly the field's width.
    pub fn from_bytes(field: OxmField, value: &[u8], mask: Option<&[u8]>) -> Option<Self> {
        let w = field.width();
        if value.len() != w || mask.is_some_and(|m| m.len() != w) {
            return None;
        }
        Some(BasicOxm {
            field,
            value: be_to_u128(value),
            mask: mask.map(be_to_u128),
        })
    }

    pub fn field(&self) -> OxmField {
        self.field
    }

    pub fn value(&self) -> u128 {
        self.value
    }

    pub fn mask(&self) -> Option<u128> {
        self.mask
    }

    /// The mask in effect: the explicit one, or all ones.
    pub fn effective_mask(&self) -> u128 {
        self.mask.unwrap_or(self.field.full_mask())
    }

    /// The value as big-endian bytes of the field's width.
    pub fn value_bytes(&self) -> Vec<u8> {
        u128_to_be(self.value, self.field.width())
    }

    /// The mask as big-endian bytes of the field's width, if present.
    pub fn mask_bytes(&self) -> Option<Vec<u8>> {
        self.mask.map(|m| u128_to_be(m, self.field.width()))
    }

    /// The OXM header this TLV is encoded with.
    pub fn header(&self) -> u32 {
        self.field.header(self.mask.is_some())
    }

    /// Checks the spec's per-field rules: a mask only where the field is maskable
    /// (BAD_MASK), no value bits beyond the field's defined bits (BAD_VALUE), and no value
    /// bits where the mask is zero (BAD_WILDCARDS).
    pub fn validate(&self) -> Result<(), BadMatchCode> {
        if self.mask.is_some() && !self.field.maskable() {
            return Err(BadMatchCode::BadMask);
        }
        let bits = self.field.bits();
        let defined = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        if self.value & !defined != 0 {
            return Err(BadMatchCode::BadValue);
        }
        if let Some(mask) = self.mask {
            if self.value & !mask != 0 {
                return Err(BadMatchCode::BadWildcards);
            }
        }
        Ok(())
    }
}

fn be_to_u128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

fn u128_to_be(v: u128, width: usize) -> Vec<u8> {
    let all = v.to_be_bytes();
    all[16 - width.min(16)..].to_vec()
}

/// Largest experimenter payload after the 4-byte experimenter id: the OXM length is 8 bits.
pub const MAX_EXPERIMENTER_OXM_PAYLOAD: usize = 255 - 4;

/// An OXM of class OFPXMC_EXPERIMENTER. It is decoded (not rejected) so that the agent can
/// answer BAD_MATCH/BAD_FIELD (or BAD_ACTION/BAD_SET_TYPE inside SET_FIELD) itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExperimenterOxm {
    field: u8,
    has_mask: bool,
    experimenter: u32,
    payload: Vec<u8>,
}

impl ExperimenterOxm {
    /// `None` if the field number exceeds 7 bits or the payload exceeds
    /// [`MAX_EXPERIMENTER_OXM_PAYLOAD`].
    pub fn new(field: u8, has_mask: bool, experimenter: u32, payload: Vec<u8>) -> Option<Self> {
        (field <= 0x7f && payload.len() <= MAX_EXPERIMENTER_OXM_PAYLOAD).then_some(
            ExperimenterOxm {
                field,
                has_mask,
                experimenter,
                payload,
            },
        )
    }

    pub fn field(&self) -> u8 {
        self.field
    }

    pub fn has_mask(&self) -> bool {
        self.has_mask
    }

    pub fn experimenter(&self) -> u32 {
        self.experimenter
    }

    /// Bytes after the experimenter id.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn header(&self) -> u32 {
        oxm_header(
            OFPXMC_EXPERIMENTER,
            self.field,
            self.has_mask,
            (4 + self.payload.len()) as u8,
        )
    }
}

/// One OXM TLV.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OxmTlv {
    Basic(BasicOxm),
    Experimenter(ExperimenterOxm),
    /// A field of the Open vSwitch classes ([`crate::nx`]): registers and the like.
    Nxm(crate::nx::NxmOxm),
}

impl From<BasicOxm> for OxmTlv {
    fn from(b: BasicOxm) -> Self {
        OxmTlv::Basic(b)
    }
}

/// Shorthands for common fields; each panics never and returns a TLV whose value fits.
impl OxmTlv {
    /// Exact match on any basic field; `None` if the value does not fit.
    pub fn exact(field: OxmField, value: u128) -> Option<Self> {
        BasicOxm::new(field, value).map(OxmTlv::Basic)
    }

    /// Masked match on any basic field; `None` if value or mask do not fit.
    pub fn masked(field: OxmField, value: u128, mask: u128) -> Option<Self> {
        BasicOxm::masked(field, value, mask).map(OxmTlv::Basic)
    }

    pub fn in_port(port: u32) -> Self {
        Self::basic_unchecked(OxmField::InPort, port.into(), None)
    }

    pub fn metadata(value: u64, mask: Option<u64>) -> Self {
        Self::basic_unchecked(OxmField::Metadata, value.into(), mask.map(u128::from))
    }

    pub fn eth_dst(mac: [u8; 6], mask: Option<[u8; 6]>) -> Self {
        Self::basic_unchecked(
            OxmField::EthDst,
            be_to_u128(&mac),
            mask.map(|m| be_to_u128(&m)),
        )
    }

    pub fn eth_src(mac: [u8; 6], mask: Option<[u8; 6]>) -> Self {
        Self::basic_unchecked(
            OxmField::EthSrc,
            be_to_u128(&mac),
            mask.map(|m| be_to_u128(&m)),
        )
    }

    pub fn eth_type(ethertype: u16) -> Self {
        Self::basic_unchecked(OxmField::EthType, ethertype.into(), None)
    }

    /// VLAN_VID as on the wire: include [`OFPVID_PRESENT`] to match tagged packets.
    pub fn vlan_vid(vid: u16, mask: Option<u16>) -> Self {
        Self::basic_unchecked(OxmField::VlanVid, vid.into(), mask.map(u128::from))
    }

    pub fn ip_proto(proto: u8) -> Self {
        Self::basic_unchecked(OxmField::IpProto, proto.into(), None)
    }

    pub fn ipv4_src(addr: std::net::Ipv4Addr, mask: Option<std::net::Ipv4Addr>) -> Self {
        Self::basic_unchecked(
            OxmField::Ipv4Src,
            u32::from(addr).into(),
            mask.map(|m| u32::from(m).into()),
        )
    }

    pub fn ipv4_dst(addr: std::net::Ipv4Addr, mask: Option<std::net::Ipv4Addr>) -> Self {
        Self::basic_unchecked(
            OxmField::Ipv4Dst,
            u32::from(addr).into(),
            mask.map(|m| u32::from(m).into()),
        )
    }

    pub fn ipv6_src(addr: std::net::Ipv6Addr, mask: Option<std::net::Ipv6Addr>) -> Self {
        Self::basic_unchecked(OxmField::Ipv6Src, addr.into(), mask.map(u128::from))
    }

    pub fn ipv6_dst(addr: std::net::Ipv6Addr, mask: Option<std::net::Ipv6Addr>) -> Self {
        Self::basic_unchecked(OxmField::Ipv6Dst, addr.into(), mask.map(u128::from))
    }

    pub fn tcp_src(port: u16) -> Self {
        Self::basic_unchecked(OxmField::TcpSrc, port.into(), None)
    }

    pub fn tcp_dst(port: u16) -> Self {
        Self::basic_unchecked(OxmField::TcpDst, port.into(), None)
    }

    pub fn udp_src(port: u16) -> Self {
        Self::basic_unchecked(OxmField::UdpSrc, port.into(), None)
    }

    pub fn udp_dst(port: u16) -> Self {
        Self::basic_unchecked(OxmField::UdpDst, port.into(), None)
    }

    pub fn arp_op(op: u16) -> Self {
        Self::basic_unchecked(OxmField::ArpOp, op.into(), None)
    }

    /// PBB_ISID is 24 bits; higher bits are dropped.
    pub fn pbb_isid(isid: u32, mask: Option<u32>) -> Self {
        Self::basic_unchecked(
            OxmField::PbbIsid,
            (isid & 0xff_ffff).into(),
            mask.map(|m| (m & 0xff_ffff).into()),
        )
    }

    pub fn tunnel_id(id: u64, mask: Option<u64>) -> Self {
        Self::basic_unchecked(OxmField::TunnelId, id.into(), mask.map(u128::from))
    }

    /// Callers guarantee the value fits (typed arguments of the field's width).
    fn basic_unchecked(field: OxmField, value: u128, mask: Option<u128>) -> Self {
        let full = field.full_mask();
        OxmTlv::Basic(BasicOxm {
            field,
            value: value & full,
            mask: mask.map(|m| m & full),
        })
    }

    /// The OXM header this TLV is encoded with.
    pub fn header(&self) -> u32 {
        match self {
            OxmTlv::Basic(b) => b.header(),
            OxmTlv::Experimenter(e) => e.header(),
            OxmTlv::Nxm(n) => n.header(),
        }
    }

    /// The basic TLV, if this is one.
    pub fn as_basic(&self) -> Option<&BasicOxm> {
        match self {
            OxmTlv::Basic(b) => Some(b),
            OxmTlv::Experimenter(_) | OxmTlv::Nxm(_) => None,
        }
    }

    /// Identity for duplicate detection: class and field, ignoring mask and length.
    fn identity(&self) -> (u16, u8, u32) {
        match self {
            OxmTlv::Basic(b) => (OFPXMC_OPENFLOW_BASIC, b.field.raw(), 0),
            OxmTlv::Experimenter(e) => (OFPXMC_EXPERIMENTER, e.field, e.experimenter),
            OxmTlv::Nxm(n) => (n.field().class(), n.field().field(), 0),
        }
    }

    /// Encoded size (header + payload).
    pub fn wire_len(&self) -> usize {
        4 + (self.header() & 0xff) as usize
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.header());
        match self {
            OxmTlv::Basic(b) => {
                out.extend_from_slice(&b.value_bytes());
                if let Some(m) = b.mask_bytes() {
                    out.extend_from_slice(&m);
                }
            }
            OxmTlv::Experimenter(e) => {
                put_u32(out, e.experimenter);
                out.extend_from_slice(&e.payload);
            }
            OxmTlv::Nxm(n) => n.encode_payload(out),
        }
    }

    /// Decodes one TLV with the error mapping of a match (BAD_MATCH/*).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<OxmTlv, DecodeError> {
        let header = r.u32()?;
        let class = (header >> 16) as u16;
        let field = ((header >> 9) & 0x7f) as u8;
        let has_mask = header & 0x100 != 0;
        let len = (header & 0xff) as usize;
        let payload = r
            .bytes(len)
            .map_err(|_| DecodeError::BadOxmLength { header })?;
        match class {
            OFPXMC_OPENFLOW_BASIC => {
                let f = OxmField::from_raw(field).ok_or(DecodeError::UnknownOxmField { field })?;
                let w = f.width();
                let expected = if has_mask { 2 * w } else { w };
                if len != expected {
                    return Err(DecodeError::BadOxmLength { header });
                }
                let (value, mask) = payload.split_at(w);
                Ok(OxmTlv::Basic(BasicOxm {
                    field: f,
                    value: be_to_u128(value),
                    mask: has_mask.then(|| be_to_u128(mask)),
                }))
            }
            OFPXMC_EXPERIMENTER => {
                let (exp, rest) = payload
                    .split_first_chunk::<4>()
                    .ok_or(DecodeError::BadOxmLength { header })?;
                Ok(OxmTlv::Experimenter(ExperimenterOxm {
                    field,
                    has_mask,
                    experimenter: u32::from_be_bytes(*exp),
                    payload: rest.to_vec(),
                }))
            }
            _ => {
                let f = crate::nx::NxmField::from_class_field(class, field)
                    .ok_or(DecodeError::UnknownOxmClass { class })?;
                crate::nx::NxmOxm::from_payload(f, has_mask, payload)
                    .map(OxmTlv::Nxm)
                    .ok_or(DecodeError::BadOxmLength { header })
            }
        }
    }
}

/// `ofp_match` of type OFPMT_OXM. An empty field list matches every packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Match {
    pub fields: Vec<OxmTlv>,
}

impl Match {
    /// The match that wildcards everything.
    pub fn any() -> Self {
        Match::default()
    }

    pub fn new(fields: Vec<OxmTlv>) -> Self {
        Match { fields }
    }

    /// The basic TLV for `field`, if present.
    pub fn get(&self, field: OxmField) -> Option<&BasicOxm> {
        self.fields
            .iter()
            .filter_map(OxmTlv::as_basic)
            .find(|b| b.field == field)
    }

    /// Encoded size including the padding to 8.
    pub fn wire_len(&self) -> usize {
        round_up_8(self.unpadded_len())
    }

    fn unpadded_len(&self) -> usize {
        4 + self.fields.iter().map(OxmTlv::wire_len).sum::<usize>()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, OFPMT_OXM);
        put_u16(out, 0);
        for f in &self.fields {
            f.encode(out);
        }
        patch_len(out, start + 2, start);
        pad_to_8(out, start);
    }

    /// Decodes an `ofp_match` and its padding from the front of `r`.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Match, DecodeError> {
        let head = r
            .peek(4)
            .map_err(|_| DecodeError::BadMatchLength { length: 0 })?;
        let match_type = u16::from_be_bytes([head[0], head[1]]);
        let length = u16::from_be_bytes([head[2], head[3]]);
        if match_type != OFPMT_OXM {
            return Err(DecodeError::BadMatchType { match_type });
        }
        let len = usize::from(length);
        if len < 4 {
            return Err(DecodeError::BadMatchLength { length });
        }
        let err = DecodeError::BadMatchLength { length };
        // A match running past its message is the match's fault: BAD_MATCH/BAD_LEN, not
        // the message's BAD_REQUEST/BAD_LEN (OpenFlow 1.3.5, 7.4.4).
        let mut m = r.sub(len, err).map_err(|_| err)?;
        // Padding is mandatory: it is part of the structure, and the next field is aligned.
        r.skip(round_up_8(len) - len)
            .map_err(|_| DecodeError::BadMatchLength { length })?;
        m.skip(4)?;
        let mut fields: Vec<OxmTlv> = Vec::new();
        while !m.is_empty() {
            let tlv = OxmTlv::decode(&mut m)?;
            if fields.iter().any(|f| f.identity() == tlv.identity()) {
                return Err(DecodeError::DuplicateOxmField {
                    header: tlv.header(),
                });
            }
            fields.push(tlv);
        }
        Ok(Match { fields })
    }

    /// Checks every basic field with [`BasicOxm::validate`] and every NXM field with
    /// [`crate::nx::NxmOxm::validate`] (BAD_MASK, BAD_VALUE, BAD_WILDCARDS). Experimenter
    /// fields are not judged here.
    pub fn validate(&self) -> Result<(), BadMatchCode> {
        self.fields.iter().try_for_each(|f| match f {
            OxmTlv::Basic(b) => b.validate(),
            OxmTlv::Nxm(n) => n.validate(),
            OxmTlv::Experimenter(_) => Ok(()),
        })
    }

    /// Checks that every field's [`Prerequisite`] holds within this match (BAD_PREREQ).
    pub fn check_prerequisites(&self) -> Result<(), BadMatchCode> {
        for b in self.fields.iter().filter_map(OxmTlv::as_basic) {
            let ok = match b.field.prerequisite() {
                Prerequisite::None => true,
                Prerequisite::Present(f) => self.get(f).is_some(),
                Prerequisite::Exact { field, values } => self
                    .get(field)
                    .is_some_and(|p| p.mask.is_none() && values.contains(&p.value)),
                Prerequisite::VlanTagged => self.get(OxmField::VlanVid).is_some_and(|v| {
                    let present = u128::from(OFPVID_PRESENT);
                    v.value & present != 0 && v.effective_mask() & present != 0
                }),
            };
            if !ok {
                return Err(BadMatchCode::BadPrereq);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_the_spec_constants() {
        // OXM_OF_* values as listed in openflow.h / OVS.
        assert_eq!(OxmField::InPort.header(false), 0x8000_0004);
        assert_eq!(OxmField::Metadata.header(true), 0x8000_0510);
        assert_eq!(OxmField::EthDst.header(true), 0x8000_070c);
        assert_eq!(OxmField::VlanVid.header(false), 0x8000_0c02);
        assert_eq!(OxmField::Ipv4Src.header(true), 0x8000_1708);
        assert_eq!(OxmField::Ipv6NdTarget.header(false), 0x8000_3e10);
        assert_eq!(OxmField::PbbIsid.header(false), 0x8000_4a03);
        assert_eq!(OxmField::TunnelId.header(true), 0x8000_4d10);
        assert_eq!(OxmField::Ipv6Exthdr.header(false), 0x8000_4e02);
    }

    #[test]
    fn field_table_is_complete() {
        assert_eq!(OxmField::ALL.len(), 40);
        for (i, f) in OxmField::ALL.iter().enumerate() {
            assert_eq!(usize::from(f.raw()), i);
            assert!(f.bits() as usize <= f.width() * 8);
            // A field's prerequisite never points at itself or a later-defined chain loop.
            if let Prerequisite::Exact { field, .. } | Prerequisite::Present(field) =
                f.prerequisite()
            {
                assert_ne!(field, *f);
            }
        }
        let maskable = OxmField::ALL.iter().filter(|f| f.maskable()).count();
        assert_eq!(maskable, 22);
    }

    #[test]
    fn match_padding() {
        let m = Match::new(vec![OxmTlv::in_port(1)]);
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, [0, 1, 0, 12, 0x80, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]);
        let mut out = Vec::new();
        Match::any().encode(&mut out);
        assert_eq!(out, [0, 1, 0, 4, 0, 0, 0, 0]);
    }
}
