//! Reserved port numbers, with OpenFlow's values (`ofproto` converts nothing: a port number
//! is the same integer on the wire and in the pipeline; its tests check the values agree).

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
/// The controller, as a packet-in.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// The switch's local networking stack.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// Wildcard in requests and "no port" in fields such as `watch_port`.
pub const OFPP_ANY: u32 = 0xffff_ffff;

/// An output to CONTROLLER with this max_len sends the whole packet.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;
