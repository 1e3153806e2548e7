//! `ofp_header` and stream framing.

use crate::error::DecodeError;
use crate::wire::{put_u16, put_u32, put_u8, wire_enum};

/// The wire version of OpenFlow 1.3.
pub const OFP_VERSION: u8 = 0x04;

/// Size of `ofp_header`.
pub const OFP_HEADER_LEN: usize = 8;

/// Largest message the 16-bit length field can describe.
pub const OFP_MAX_MSG_LEN: usize = 0xffff;

wire_enum! {
    /// `ofp_type`.
    pub enum MsgType: u8 {
        Hello = 0,
        Error = 1,
        EchoRequest = 2,
        EchoReply = 3,
        Experimenter = 4,
        FeaturesRequest = 5,
        FeaturesReply = 6,
        GetConfigRequest = 7,
        GetConfigReply = 8,
        SetConfig = 9,
        PacketIn = 10,
        FlowRemoved = 11,
        PortStatus = 12,
        PacketOut = 13,
        FlowMod = 14,
        GroupMod = 15,
        PortMod = 16,
        TableMod = 17,
        MultipartRequest = 18,
        MultipartReply = 19,
        BarrierRequest = 20,
        BarrierReply = 21,
        QueueGetConfigRequest = 22,
        QueueGetConfigReply = 23,
        RoleRequest = 24,
        RoleReply = 25,
        GetAsyncRequest = 26,
        GetAsyncReply = 27,
        SetAsync = 28,
        MeterMod = 29,
    }
}

/// `ofp_header`. The type is kept raw so that a header with an unknown type can still be
/// read (the agent needs its xid to answer BAD_TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the first 8 bytes; checks only that the length covers the header itself.
    pub fn parse(buf: &[u8]) -> Result<Header, DecodeError> {
        let b: &[u8; OFP_HEADER_LEN] = buf
            .get(..OFP_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::ShortHeader {
                available: buf.len(),
            })?;
        let header = Header {
            version: b[0],
            msg_type: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        };
        if usize::from(header.length) < OFP_HEADER_LEN {
            return Err(DecodeError::HeaderLength {
                length: header.length,
            });
        }
        Ok(header)
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        put_u8(out, self.version);
        put_u8(out, self.msg_type);
        put_u16(out, self.length);
        put_u32(out, self.xid);
    }
}

/// Tells a stream reader whether `buf` starts with a whole message.
///
/// Returns `Ok(Some(n))` when the first `n` bytes are one complete message (pass them to
/// [`crate::decode`] and drop them from the buffer), `Ok(None)` when more bytes are needed,
/// and an error when the header's length is below 8: such a stream cannot be resynchronised
/// and the connection should be answered with BAD_REQUEST/BAD_LEN and closed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    match Header::parse(buf) {
        Ok(h) => {
            let len = usize::from(h.length);
            Ok((buf.len() >= len).then_some(len))
        }
        Err(DecodeError::ShortHeader { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
