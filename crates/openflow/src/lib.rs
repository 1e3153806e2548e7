//! OpenFlow 1.3 (wire version 0x04) codec for Ferroflow.
//!
//! [`decode`] turns the bytes of one message into an [`OfpMessage`]; [`OfpMessage::encode`]
//! does the reverse. Decoding never panics and allocates at most a small multiple of its
//! input: every read is bounds-checked and no length read from the wire sizes an
//! allocation. Every decode failure carries the exact error (`type`, `code`) that a switch
//! must answer with ([`DecodeError::code`], [`DecodeError::reply_to`]).
//!
//! Experimenter messages, actions, instructions, meter bands and OXM classes decode as such
//! rather than failing, so that the agent can refuse them with the precise code;
//! [`OfpMessage::experimenter_error`] finds the first one and names that code.
//!
//! Layout follows smoltcp's wire modules: one module per protocol structure, typed values,
//! raw integers only where the spec leaves a value space open (port, group, meter, queue and
//! buffer ids).

#![forbid(unsafe_code)]

pub mod action;
pub mod bundle;
pub mod consts;
pub mod error;
pub mod header;
pub mod instruction;
pub mod messages;
pub mod multipart;
pub mod nx;
pub mod oxm;
pub mod tlv;
mod wire;

pub use action::{Action, ActionType};
pub use error::{DecodeError, EncodeError, ErrorCode};
pub use header::{frame_len, Header, MsgType, OFP_HEADER_LEN, OFP_VERSION};
pub use instruction::{Instruction, InstructionType};
pub use messages::{Message, OfpMessage};
pub use multipart::{
    MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody, MultipartType,
};
pub use nx::{FieldRef, NxAction, NxmField, NxmOxm, NX_VENDOR_ID};
pub use oxm::{BasicOxm, ExperimenterOxm, Match, OxmField, OxmTlv, Prerequisite};
pub use wire::FixedStr;

use error::{BadActionCode, BadInstructionCode, BadMatchCode, BadRequestCode, MeterModFailedCode};
use multipart::{MultipartReplyBody as ReplyBody, MultipartRequestBody as RequestBody};
use wire::Reader;

/// Decodes exactly one message: `buf` must hold the whole message and nothing more (use
/// [`frame_len`] to cut a stream into messages).
///
/// HELLO is accepted with any header version (that is how versions are negotiated; see
/// [`messages::Hello::negotiate`]); any other message must be version 0x04.
pub fn decode(buf: &[u8]) -> Result<OfpMessage, DecodeError> {
    let h = Header::parse(buf)?;
    let len = usize::from(h.length);
    if buf.len() < len {
        return Err(DecodeError::Truncated {
            length: h.length,
            available: buf.len(),
        });
    }
    if buf.len() > len {
        return Err(DecodeError::TrailingBytes {
            length: h.length,
            available: buf.len(),
        });
    }
    let ty = MsgType::from_raw(h.msg_type);
    if h.version != OFP_VERSION && ty != Some(MsgType::Hello) {
        return Err(DecodeError::BadVersion { version: h.version });
    }
    let ty = ty.ok_or(DecodeError::UnknownMessageType {
        msg_type: h.msg_type,
    })?;
    let body = buf.get(OFP_HEADER_LEN..len).unwrap_or(&[]);
    let mut r = Reader::new(
        body,
        DecodeError::BadMessageLength {
            msg_type: ty,
            length: h.length,
        },
    );
    let body = Message::decode_body(ty, h.version, &mut r)?;
    Ok(OfpMessage { xid: h.xid, body })
}

impl OfpMessage {
    pub fn new(xid: u32, body: Message) -> Self {
        OfpMessage { xid, body }
    }

    /// Encodes the message with its header.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded message to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let version = match &self.body {
            Message::Hello(h) => h.version,
            _ => OFP_VERSION,
        };
        Header {
            version,
            msg_type: self.body.msg_type().raw(),
            length: 0,
            xid: self.xid,
        }
        .emit(out);
        self.body.encode_body(out);
        let length = out.len() - start;
        if length > header::OFP_MAX_MSG_LEN {
            out.truncate(start);
            return Err(EncodeError::TooLong { length });
        }
        wire::patch_u16(out, start + 2, length);
        Ok(())
    }

    /// For a switch that implements no experimenter extension: the error to refuse this
    /// message with if it uses one anywhere, checked in message order (match before
    /// instructions). Experimenter messages and multiparts give BAD_REQUEST/BAD_EXPERIMENTER,
    /// experimenter OXMs BAD_MATCH/BAD_FIELD, experimenter actions
    /// BAD_ACTION/BAD_EXPERIMENTER, experimenter OXMs in SET_FIELD BAD_ACTION/BAD_SET_TYPE,
    /// experimenter instructions BAD_INSTRUCTION/BAD_EXPERIMENTER and experimenter meter
    /// bands METER_MOD_FAILED/BAD_BAND. Table feature properties are not inspected.
    pub fn experimenter_error(&self) -> Option<ErrorCode> {
        let exp_request = Some(ErrorCode::BadRequest(BadRequestCode::BadExperimenter));
        match &self.body {
            Message::Experimenter(_) => exp_request,
            Message::MultipartRequest(m) => match &m.body {
                RequestBody::Experimenter(_) => exp_request,
                RequestBody::Flow(f) | RequestBody::Aggregate(f) => match_experimenter(&f.match_),
                _ => None,
            },
            Message::MultipartReply(m) => match &m.body {
                ReplyBody::Experimenter(_) => exp_request,
                _ => None,
            },
            Message::FlowMod(f) => {
                match_experimenter(&f.match_).or_else(|| instructions_experimenter(&f.instructions))
            }
            Message::PacketOut(p) => actions_experimenter(&p.actions),
            Message::GroupMod(g) => g
                .buckets
                .iter()
                .find_map(|b| actions_experimenter(&b.actions)),
            Message::MeterMod(m) => m
                .bands
                .iter()
                .any(|b| matches!(b, messages::MeterBand::Experimenter { .. }))
                .then_some(ErrorCode::MeterModFailed(MeterModFailedCode::BadBand)),
            _ => None,
        }
    }
}

fn match_experimenter(m: &Match) -> Option<ErrorCode> {
    m.fields
        .iter()
        .any(|f| matches!(f, OxmTlv::Experimenter(_)))
        .then_some(ErrorCode::BadMatch(BadMatchCode::BadField))
}

fn actions_experimenter(actions: &[Action]) -> Option<ErrorCode> {
    actions.iter().find_map(|a| match a {
        Action::Experimenter { .. } => Some(ErrorCode::BadAction(BadActionCode::BadExperimenter)),
        Action::SetField(OxmTlv::Experimenter(_)) => {
            Some(ErrorCode::BadAction(BadActionCode::BadSetType))
        }
        _ => None,
    })
}

fn instructions_experimenter(insts: &[Instruction]) -> Option<ErrorCode> {
    insts.iter().find_map(|i| match i {
        Instruction::Experimenter { .. } => Some(ErrorCode::BadInstruction(
            BadInstructionCode::BadExperimenter,
        )),
        Instruction::WriteActions(a) | Instruction::ApplyActions(a) => actions_experimenter(a),
        _ => None,
    })
}

/// The property the `cargo fuzz` target checks, exposed so that unit tests can run it over
/// a corpus without nightly: decoding never panics, and whatever decodes re-encodes to
/// bytes that decode to the same value and re-encode to the same bytes.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Panics (which the fuzzer reports) if the round-trip property fails for `data`.
    pub fn check_decode(data: &[u8]) {
        let Ok(msg) = decode(data) else {
            return;
        };
        let bytes = match msg.encode() {
            Ok(b) => b,
            // Re-encoding restores padding a lenient decode tolerated (at most 7 bytes), which
            // can only overflow a message already at the size limit.
            Err(EncodeError::TooLong { .. }) if data.len() > header::OFP_MAX_MSG_LEN - 8 => return,
            Err(e) => panic!("a decoded message must re-encode: {e}"),
        };
        let again = decode(&bytes).expect("a re-encoded message must decode");
        assert_eq!(msg, again, "decode(encode(m)) != m");
        let bytes2 = again.encode().expect("re-encode");
        assert_eq!(bytes, bytes2, "encoding is not stable");
    }
}
