//! Reserved numbers and bit sets of OpenFlow 1.3.
//!
//! Identifiers that the spec leaves open (port, group, meter, queue, buffer, table numbers)
//! stay plain integers with named reserved values, because any unreserved value is legal.
//! Bit sets are newtypes that keep unknown bits so values round-trip.

use crate::wire::wire_flags;

// ---- Port numbers (`ofp_port_no`) ----

/// Highest number of a physical or logical port.
pub const OFPP_MAX: u32 = 0xffff_ff00;
/// Send the packet back out of the port it came in on.
pub const OFPP_IN_PORT: u32 = 0xffff_fff8;
/// Submit the packet to the first flow table (PACKET_OUT only).
pub const OFPP_TABLE: u32 = 0xffff_fff9;
/// The built-in L2 learning switch.
pub const OFPP_NORMAL: u32 = 0xffff_fffa;
/// All ports except the input port and those with flooding disabled.
pub const OFPP_FLOOD: u32 = 0xffff_fffb;
/// All ports except the input port.
pub const OFPP_ALL: u32 = 0xffff_fffc;
/// The controller, as a PACKET_IN.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// The switch's local networking stack.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// Wildcard in requests and "no port" in fields such as `watch_port`.
pub const OFPP_ANY: u32 = 0xffff_ffff;

/// All queues of a port (queue stats requests).
pub const OFPQ_ALL: u32 = 0xffff_ffff;

// ---- Groups (`ofp_group`) ----

/// Highest usable group number.
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// All groups (GROUP_MOD delete, group stats).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// Wildcard group (flow stats and deletes: "any group").
pub const OFPG_ANY: u32 = 0xffff_ffff;

// ---- Tables (`ofp_table`) ----

/// Highest table number.
pub const OFPTT_MAX: u8 = 0xfe;
/// All tables (flow deletes, stats).
pub const OFPTT_ALL: u8 = 0xff;

// ---- Meters (`ofp_meter`) ----

/// Highest usable meter number.
pub const OFPM_MAX: u32 = 0xffff_0000;
/// Meter for the slow datapath.
pub const OFPM_SLOWPATH: u32 = 0xffff_fffd;
/// Meter for the controller connection.
pub const OFPM_CONTROLLER: u32 = 0xffff_fffe;
/// All meters (stats requests, delete).
pub const OFPM_ALL: u32 = 0xffff_ffff;

// ---- Buffers and lengths ----

/// The packet is not buffered on the switch; the whole frame travels in the message.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// Largest `max_len` of an OUTPUT to CONTROLLER that asks for a specific length.
pub const OFPCML_MAX: u16 = 0xffe5;
/// OUTPUT to CONTROLLER: do not buffer, send the whole packet.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;
/// Default flow priority.
pub const OFP_DEFAULT_PRIORITY: u16 = 0x8000;
/// Default `miss_send_len` of a new connection.
pub const OFP_DEFAULT_MISS_SEND_LEN: u16 = 128;
/// Well-known TCP port of OpenFlow.
pub const OFP_TCP_PORT: u16 = 6653;

// ---- VLAN (`ofp_vlan_id`) ----

/// Bit of VLAN_VID values that says a VLAN tag is present.
pub const OFPVID_PRESENT: u16 = 0x1000;
/// VLAN_VID value matching packets without a VLAN tag.
pub const OFPVID_NONE: u16 = 0x0000;

wire_flags! {
    /// `ofp_capabilities` (FEATURES_REPLY).
    pub struct Capabilities: u32 {
        const FLOW_STATS = 1 << 0;
        const TABLE_STATS = 1 << 1;
        const PORT_STATS = 1 << 2;
        const GROUP_STATS = 1 << 3;
        const IP_REASM = 1 << 5;
        const QUEUE_STATS = 1 << 6;
        const PORT_BLOCKED = 1 << 8;
    }
}

wire_flags! {
    /// `ofp_config_flags` (SET_CONFIG / GET_CONFIG_REPLY). FRAG_NORMAL is the absence of
    /// the other bits; `FRAG_MASK` selects the fragment-handling mode.
    pub struct ConfigFlags: u16 {
        const FRAG_NORMAL = 0;
        const FRAG_DROP = 1;
        const FRAG_REASM = 2;
        const FRAG_MASK = 3;
    }
}

wire_flags! {
    /// `ofp_port_config`.
    pub struct PortConfig: u32 {
        const PORT_DOWN = 1 << 0;
        const NO_RECV = 1 << 2;
        const NO_FWD = 1 << 5;
        const NO_PACKET_IN = 1 << 6;
    }
}

wire_flags! {
    /// `ofp_port_state`.
    pub struct PortState: u32 {
        const LINK_DOWN = 1 << 0;
        const BLOCKED = 1 << 1;
        const LIVE = 1 << 2;
    }
}

wire_flags! {
    /// `ofp_port_features`.
    pub struct PortFeatures: u32 {
        const RATE_10MB_HD = 1 << 0;
        const RATE_10MB_FD = 1 << 1;
        const RATE_100MB_HD = 1 << 2;
        const RATE_100MB_FD = 1 << 3;
        const RATE_1GB_HD = 1 << 4;
        const RATE_1GB_FD = 1 << 5;
        const RATE_10GB_FD = 1 << 6;
        const RATE_40GB_FD = 1 << 7;
        const RATE_100GB_FD = 1 << 8;
        const RATE_1TB_FD = 1 << 9;
        const OTHER = 1 << 10;
        const COPPER = 1 << 11;
        const FIBER = 1 << 12;
        const AUTONEG = 1 << 13;
        const PAUSE = 1 << 14;
        const PAUSE_ASYM = 1 << 15;
    }
}

wire_flags! {
    /// `ofp_flow_mod_flags` (also carried by flow stats).
    pub struct FlowModFlags: u16 {
        const SEND_FLOW_REM = 1 << 0;
        const CHECK_OVERLAP = 1 << 1;
        const RESET_COUNTS = 1 << 2;
        const NO_PKT_COUNTS = 1 << 3;
        const NO_BYT_COUNTS = 1 << 4;
    }
}

wire_flags! {
    /// `ofp_table_config`. OpenFlow 1.3 deprecates all bits; they are kept for round trips.
    pub struct TableConfig: u32 {
        const DEPRECATED_MASK = 3;
    }
}

wire_flags! {
    /// `ofp_meter_flags`.
    pub struct MeterFlags: u16 {
        const KBPS = 1 << 0;
        const PKTPS = 1 << 1;
        const BURST = 1 << 2;
        const STATS = 1 << 3;
    }
}

wire_flags! {
    /// `ofp_group_capabilities` (group features).
    pub struct GroupCapabilities: u32 {
        const SELECT_WEIGHT = 1 << 0;
        const SELECT_LIVENESS = 1 << 1;
        const CHAINING = 1 << 2;
        const CHAINING_CHECKS = 1 << 3;
    }
}

wire_flags! {
    /// `ofp_multipart_request_flags` / `ofp_multipart_reply_flags`: REQ_MORE and REPLY_MORE
    /// share bit 0.
    pub struct MultipartFlags: u16 {
        const MORE = 1 << 0;
    }
}

wire_flags! {
    /// `ofp_ipv6exthdr_flags` (values of the IPV6_EXTHDR OXM field).
    pub struct Ipv6ExtHdrFlags: u16 {
        const NONEXT = 1 << 0;
        const ESP = 1 << 1;
        const AUTH = 1 << 2;
        const DEST = 1 << 3;
        const FRAG = 1 << 4;
        const ROUTER = 1 << 5;
        const HOP = 1 << 6;
        const UNREP = 1 << 7;
        const UNSEQ = 1 << 8;
    }
}

/// Bits of the async-config masks (`ofp_async_config`): bit `1 << reason` enables that
/// reason. These name the reasons for each of the three masks.
pub mod async_mask {
    /// PACKET_IN reason NO_MATCH.
    pub const PACKET_IN_NO_MATCH: u32 = 1 << 0;
    /// PACKET_IN reason ACTION.
    pub const PACKET_IN_ACTION: u32 = 1 << 1;
    /// PACKET_IN reason INVALID_TTL.
    pub const PACKET_IN_INVALID_TTL: u32 = 1 << 2;
    /// PORT_STATUS reason ADD.
    pub const PORT_STATUS_ADD: u32 = 1 << 0;
    /// PORT_STATUS reason DELETE.
    pub const PORT_STATUS_DELETE: u32 = 1 << 1;
    /// PORT_STATUS reason MODIFY.
    pub const PORT_STATUS_MODIFY: u32 = 1 << 2;
    /// FLOW_REMOVED reason IDLE_TIMEOUT.
    pub const FLOW_REMOVED_IDLE_TIMEOUT: u32 = 1 << 0;
    /// FLOW_REMOVED reason HARD_TIMEOUT.
    pub const FLOW_REMOVED_HARD_TIMEOUT: u32 = 1 << 1;
    /// FLOW_REMOVED reason DELETE.
    pub const FLOW_REMOVED_DELETE: u32 = 1 << 2;
    /// FLOW_REMOVED reason GROUP_DELETE.
    pub const FLOW_REMOVED_GROUP_DELETE: u32 = 1 << 3;
}

/// Well-known experimenter ids, so that refusals can be logged by name.
pub mod experimenter {
    /// Nicira (Open vSwitch extensions).
    pub const NICIRA: u32 = 0x0000_2320;
    /// Open Networking Foundation.
    pub const ONF: u32 = 0x4f4e_4600;
}
