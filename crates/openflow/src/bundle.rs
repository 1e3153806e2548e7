//! The ONF bundle extension for OpenFlow 1.3 (ONF extension 230, the pre-standard form of
//! OpenFlow 1.4's bundles), as `ovs-ofctl -O OpenFlow13 --bundle` speaks it.
//!
//! Both messages are EXPERIMENTER messages with experimenter [`ONF`] and `exp_type`
//! [`ONFT_BUNDLE_CONTROL`] or [`ONFT_BUNDLE_ADD_MESSAGE`]; their bodies are OpenFlow 1.4's
//! `ofp_bundle_ctrl_msg` and `ofp_bundle_add_msg` without the header. They stay
//! [`Message::Experimenter`] in the message enum (so that the generic codec, its fuzz target
//! and the refusal of unknown experimenters are unchanged); [`BundleMsg::parse`] gives the
//! typed view and [`BundleCtrl::to_message`] builds replies. Bundle errors are OpenFlow 1.3
//! experimenter errors (type 0xffff, experimenter ONF, exp_type 2300 + code), the numbers Open
//! vSwitch uses (its `ofp-errors.h`, `ONF1.3(2300..2315)`).

use crate::consts::experimenter::ONF;
use crate::error::{BadRequestCode, ErrorCode, ERROR_DATA_LEN};
use crate::messages::{ErrorMsg, ExperimenterMsg, Message, OfpMessage};
use crate::wire::{put_u16, put_u32, wire_enum, wire_flags};
use crate::{decode, DecodeError, OFP_HEADER_LEN, OFP_VERSION};

/// `exp_type` of ONF bundle control messages (requests and replies).
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
/// `exp_type` of ONF bundle add messages.
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;
/// Bundle errors are experimenter errors with `exp_type` = this + [`BundleFailedCode`].
pub const ONF_BUNDLE_ERROR_BASE: u16 = 2300;

wire_enum! {
    /// `ofp_bundle_ctrl_type`.
    pub enum BundleCtrlType: u16 {
        OpenRequest = 0,
        OpenReply = 1,
        CloseRequest = 2,
        CloseReply = 3,
        CommitRequest = 4,
        CommitReply = 5,
        DiscardRequest = 6,
        DiscardReply = 7,
    }
}

impl BundleCtrlType {
    /// The reply type to a request type (`None` for reply types).
    pub fn reply(self) -> Option<BundleCtrlType> {
        use BundleCtrlType::*;
        match self {
            OpenRequest => Some(OpenReply),
            CloseRequest => Some(CloseReply),
            CommitRequest => Some(CommitReply),
            DiscardRequest => Some(DiscardReply),
            _ => None,
        }
    }
}

wire_flags! {
    /// `ofp_bundle_flags`.
    pub struct BundleFlags: u16 {
        /// All or nothing.
        const ATOMIC = 1 << 0;
        /// In the order added.
        const ORDERED = 1 << 1;
    }
}

wire_enum! {
    /// `ofp_bundle_failed_code`, sent in OpenFlow 1.3 as experimenter error
    /// `exp_type` 2300 + code.
    pub enum BundleFailedCode: u16 {
        Unknown = 0,
        Eperm = 1,
        BadId = 2,
        BundleExist = 3,
        BundleClosed = 4,
        OutOfBundles = 5,
        BadType = 6,
        BadFlags = 7,
        MsgBadLen = 8,
        MsgBadXid = 9,
        MsgUnsup = 10,
        MsgConflict = 11,
        MsgTooMany = 12,
        MsgFailed = 13,
        Timeout = 14,
        BundleInProgress = 15,
    }
}

impl BundleFailedCode {
    /// The OpenFlow 1.3 ERROR answering `request` (raw bytes): same xid, the request's first
    /// bytes as data, like [`ErrorCode::reply_to`].
    pub fn reply_to(self, request: &[u8]) -> OfpMessage {
        OfpMessage {
            xid: xid_of(request),
            body: Message::Error(ErrorMsg::Experimenter {
                exp_type: ONF_BUNDLE_ERROR_BASE + self.raw(),
                experimenter: ONF,
                data: request[..request.len().min(ERROR_DATA_LEN)].to_vec(),
            }),
        }
    }

    /// The code an ERROR message carries, if it is an ONF bundle error.
    pub fn from_error(e: &ErrorMsg) -> Option<BundleFailedCode> {
        match e {
            ErrorMsg::Experimenter {
                exp_type,
                experimenter: ONF,
                ..
            } => BundleFailedCode::from_raw(exp_type.checked_sub(ONF_BUNDLE_ERROR_BASE)?),
            _ => None,
        }
    }
}

fn xid_of(request: &[u8]) -> u32 {
    request
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// Why a bundle message is refused: a standard error (bad length) or a bundle error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleError {
    Request(ErrorCode),
    Bundle(BundleFailedCode),
}

impl BundleError {
    pub fn reply_to(self, request: &[u8]) -> OfpMessage {
        match self {
            BundleError::Request(c) => c.reply_to(request),
            BundleError::Bundle(c) => c.reply_to(request),
        }
    }
}

impl From<BundleFailedCode> for BundleError {
    fn from(c: BundleFailedCode) -> Self {
        BundleError::Bundle(c)
    }
}

impl From<ErrorCode> for BundleError {
    fn from(c: ErrorCode) -> Self {
        BundleError::Request(c)
    }
}

const BAD_LEN: BundleError = BundleError::Request(ErrorCode::BadRequest(BadRequestCode::BadLen));

/// `ofp_bundle_ctrl_msg`. Properties are kept raw (none is defined for OpenFlow 1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleCtrl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: BundleFlags,
    pub properties: Vec<u8>,
}

impl BundleCtrl {
    /// The EXPERIMENTER message carrying this control message.
    pub fn to_message(&self) -> Message {
        let mut data = Vec::with_capacity(8 + self.properties.len());
        put_u32(&mut data, self.bundle_id);
        put_u16(&mut data, self.ctrl_type.raw());
        put_u16(&mut data, self.flags.bits());
        data.extend_from_slice(&self.properties);
        Message::Experimenter(ExperimenterMsg {
            experimenter: ONF,
            exp_type: ONFT_BUNDLE_CONTROL,
            data,
        })
    }

    /// The reply to this request: same id and flags, no properties. `None` for a reply type.
    pub fn reply(&self) -> Option<BundleCtrl> {
        Some(BundleCtrl {
            bundle_id: self.bundle_id,
            ctrl_type: self.ctrl_type.reply()?,
            flags: self.flags,
            properties: Vec::new(),
        })
    }
}

/// `ofp_bundle_add_msg`: a message to add to a bundle. `message` is the inner message's
/// raw bytes (header included), decoded with [`BundleAdd::inner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: BundleFlags,
    pub message: Vec<u8>,
    /// Whatever follows the inner message (padding and properties), kept raw.
    pub properties: Vec<u8>,
}

impl BundleAdd {
    /// The EXPERIMENTER message carrying it. Its xid must be the inner message's.
    pub fn to_message(&self) -> Message {
        let mut data = Vec::with_capacity(8 + self.message.len() + self.properties.len());
        put_u32(&mut data, self.bundle_id);
        put_u16(&mut data, 0);
        put_u16(&mut data, self.flags.bits());
        data.extend_from_slice(&self.message);
        data.extend_from_slice(&self.properties);
        Message::Experimenter(ExperimenterMsg {
            experimenter: ONF,
            exp_type: ONFT_BUNDLE_ADD_MESSAGE,
            data,
        })
    }

    /// Decodes the inner message and checks it against the outer one (`outer_xid`): the
    /// same version and xid, a length that fits. A message that does not decode gets the
    /// error its decoding names (as if it had been sent alone).
    pub fn inner(&self, outer_xid: u32) -> Result<OfpMessage, BundleError> {
        self.as_ref().inner(outer_xid)
    }

    /// The same message, borrowed.
    pub fn as_ref(&self) -> BundleAddRef<'_> {
        BundleAddRef {
            bundle_id: self.bundle_id,
            flags: self.flags,
            message: &self.message,
            properties: &self.properties,
        }
    }
}

/// [`BundleAdd`] borrowed from the bytes it arrived in: what the switch's agent reads
/// per BUNDLE_ADD, without copying the inner message out (three allocations and copies of
/// it per bundled flow-mod, with the EXPERIMENTER decode, before this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleAddRef<'a> {
    pub bundle_id: u32,
    pub flags: BundleFlags,
    /// The inner message's raw bytes, header included.
    pub message: &'a [u8],
    /// Whatever follows the inner message (padding and properties).
    pub properties: &'a [u8],
}

impl BundleAddRef<'_> {
    /// [`BundleAdd::inner`].
    pub fn inner(&self, outer_xid: u32) -> Result<OfpMessage, BundleError> {
        let m = self.message;
        if m.first() != Some(&OFP_VERSION) {
            return Err(ErrorCode::BadRequest(BadRequestCode::BadVersion).into());
        }
        if xid_of(m) != outer_xid {
            return Err(BundleFailedCode::MsgBadXid.into());
        }
        decode(m).map_err(|e| match e {
            DecodeError::Truncated { .. } | DecodeError::TrailingBytes { .. } => {
                BundleFailedCode::MsgBadLen.into()
            }
            e => BundleError::Request(e.code()),
        })
    }
}

/// A bundle message, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleMsg {
    Ctrl(BundleCtrl),
    Add(BundleAdd),
}

/// [`BundleMsg`] borrowing the bytes of a BUNDLE_ADD ([`BundleMsg::parse_raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleMsgRef<'a> {
    Ctrl(BundleCtrl),
    Add(BundleAddRef<'a>),
}

impl BundleMsgRef<'_> {
    /// The owned form.
    pub fn to_owned(&self) -> BundleMsg {
        match self {
            BundleMsgRef::Ctrl(c) => BundleMsg::Ctrl(c.clone()),
            BundleMsgRef::Add(a) => BundleMsg::Add(BundleAdd {
                bundle_id: a.bundle_id,
                flags: a.flags,
                message: a.message.to_vec(),
                properties: a.properties.to_vec(),
            }),
        }
    }
}

impl BundleMsg {
    /// The borrowed form.
    pub fn as_ref(&self) -> BundleMsgRef<'_> {
        match self {
            BundleMsg::Ctrl(c) => BundleMsgRef::Ctrl(c.clone()),
            BundleMsg::Add(a) => BundleMsgRef::Add(a.as_ref()),
        }
    }

    /// `None` when `e` is not an ONF bundle message; otherwise the message or the error to
    /// answer with.
    pub fn parse(e: &ExperimenterMsg) -> Option<Result<BundleMsg, BundleError>> {
        Self::parse_body(e.experimenter, e.exp_type, &e.data).map(|r| r.map(|m| m.to_owned()))
    }

    /// [`BundleMsg::parse`] of a whole message's bytes (`raw`, header included, one framed
    /// message as [`decode`] takes it), borrowing from them: `None` unless it is an
    /// EXPERIMENTER message of this version that [`decode`] takes and [`BundleMsg::parse`]
    /// calls a bundle message, and then the same answer.
    pub fn parse_raw(raw: &[u8]) -> Option<Result<BundleMsgRef<'_>, BundleError>> {
        let len = usize::from(u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]));
        if raw.len() != len || len < OFP_HEADER_LEN + 8 {
            return None;
        }
        if raw[0] != OFP_VERSION || raw[1] != crate::MsgType::Experimenter.raw() {
            return None;
        }
        let be32 = |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        Self::parse_body(be32(8), be32(12), &raw[OFP_HEADER_LEN + 8..])
    }

    /// The body of an EXPERIMENTER message with this experimenter and type, borrowed.
    fn parse_body(
        experimenter: u32,
        exp_type: u32,
        d: &[u8],
    ) -> Option<Result<BundleMsgRef<'_>, BundleError>> {
        if experimenter != ONF {
            return None;
        }
        let be32 = |at: usize| u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        let be16 = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
        match exp_type {
            ONFT_BUNDLE_CONTROL => Some((|| {
                if d.len() < 8 {
                    return Err(BAD_LEN);
                }
                let ctrl_type =
                    BundleCtrlType::from_raw(be16(4)).ok_or(BundleFailedCode::BadType)?;
                Ok(BundleMsgRef::Ctrl(BundleCtrl {
                    bundle_id: be32(0),
                    ctrl_type,
                    flags: BundleFlags(be16(6)),
                    properties: d[8..].to_vec(),
                }))
            })()),
            ONFT_BUNDLE_ADD_MESSAGE => Some((|| {
                if d.len() < 8 + OFP_HEADER_LEN {
                    return Err(BAD_LEN);
                }
                let inner_len = usize::from(be16(8 + 2));
                if inner_len < OFP_HEADER_LEN || 8 + inner_len > d.len() {
                    return Err(BundleFailedCode::MsgBadLen.into());
                }
                Ok(BundleMsgRef::Add(BundleAddRef {
                    bundle_id: be32(0),
                    flags: BundleFlags(be16(6)),
                    message: &d[8..8 + inner_len],
                    properties: &d[8 + inner_len..],
                }))
            })()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(xid: u32, body: Message) -> Vec<u8> {
        OfpMessage { xid, body }.encode().unwrap()
    }

    fn roundtrip(xid: u32, body: Message) -> BundleMsg {
        let bytes = wire(xid, body);
        let Message::Experimenter(e) = decode(&bytes).unwrap().body else {
            panic!("not an experimenter message");
        };
        BundleMsg::parse(&e).expect("a bundle message").unwrap()
    }

    #[test]
    fn control_messages_round_trip_with_ovs_layout() {
        let c = BundleCtrl {
            bundle_id: 7,
            ctrl_type: BundleCtrlType::OpenRequest,
            flags: BundleFlags::ATOMIC | BundleFlags::ORDERED,
            properties: vec![],
        };
        let bytes = wire(0x11, c.to_message());
        // ofp_header, experimenter ONF, exp_type 2300, bundle_id, type, flags: 24 bytes.
        assert_eq!(
            bytes,
            [
                4, 4, 0, 24, 0, 0, 0, 0x11, 0x4f, 0x4e, 0x46, 0, 0, 0, 0x08, 0xfc, 0, 0, 0, 7, 0,
                0, 0, 3
            ]
        );
        assert_eq!(roundtrip(0x11, c.to_message()), BundleMsg::Ctrl(c.clone()));
        let r = c.reply().unwrap();
        assert_eq!(r.ctrl_type, BundleCtrlType::OpenReply);
        assert_eq!((r.bundle_id, r.flags), (7, c.flags));
        assert!(r.reply().is_none(), "a reply has no reply");
    }

    #[test]
    fn add_message_carries_the_inner_message() {
        let fm = crate::messages::FlowMod::add(0, 5, crate::Match::default(), vec![]);
        let inner = wire(99, Message::FlowMod(fm.clone()));
        let add = BundleAdd {
            bundle_id: 1,
            flags: BundleFlags::ATOMIC,
            message: inner.clone(),
            properties: vec![],
        };
        let BundleMsg::Add(got) = roundtrip(99, add.to_message()) else {
            panic!("not an add");
        };
        assert_eq!(got, add);
        assert_eq!(got.inner(99).unwrap().body, Message::FlowMod(fm));
        assert_eq!(
            got.inner(98),
            Err(BundleError::Bundle(BundleFailedCode::MsgBadXid)),
            "the inner xid must be the outer one"
        );
    }

    #[test]
    fn malformed_bundle_messages_name_their_error() {
        let exp = |exp_type, data| ExperimenterMsg {
            experimenter: ONF,
            exp_type,
            data,
        };
        assert_eq!(
            BundleMsg::parse(&exp(ONFT_BUNDLE_CONTROL, vec![0; 7])),
            Some(Err(BAD_LEN))
        );
        assert_eq!(
            BundleMsg::parse(&exp(ONFT_BUNDLE_CONTROL, vec![0, 0, 0, 1, 0, 9, 0, 0])),
            Some(Err(BundleFailedCode::BadType.into()))
        );
        // Inner length 200 in a 24-byte body.
        let mut d = vec![0, 0, 0, 1, 0, 0, 0, 1, 4, 14, 0, 200, 0, 0, 0, 1];
        d.extend([0; 8]);
        assert_eq!(
            BundleMsg::parse(&exp(ONFT_BUNDLE_ADD_MESSAGE, d)),
            Some(Err(BundleFailedCode::MsgBadLen.into()))
        );
        assert_eq!(
            BundleMsg::parse(&exp(2302, vec![])),
            None,
            "other ONF types"
        );
        let nx = ExperimenterMsg {
            experimenter: crate::consts::experimenter::NICIRA,
            exp_type: ONFT_BUNDLE_CONTROL,
            data: vec![0; 8],
        };
        assert_eq!(BundleMsg::parse(&nx), None, "other experimenters");
    }

    /// What the agent reads per message without decoding it first: the answer of
    /// [`decode`] then [`BundleMsg::parse`], for bundle messages, malformed ones and others.
    #[test]
    fn parse_raw_answers_as_decode_then_parse() {
        let fm = crate::messages::FlowMod::add(0, 5, crate::Match::default(), vec![]);
        let add = |xid, inner: Vec<u8>, properties: Vec<u8>| {
            wire(
                xid,
                BundleAdd {
                    bundle_id: 9,
                    flags: BundleFlags::ORDERED,
                    message: inner,
                    properties,
                }
                .to_message(),
            )
        };
        let exp = |experimenter, exp_type, data| {
            wire(
                3,
                Message::Experimenter(ExperimenterMsg {
                    experimenter,
                    exp_type,
                    data,
                }),
            )
        };
        let ctrl = BundleCtrl {
            bundle_id: 7,
            ctrl_type: BundleCtrlType::CommitRequest,
            flags: BundleFlags::ATOMIC,
            properties: vec![1, 2, 3, 4],
        };
        let mut short_add = vec![0, 0, 0, 1, 0, 0, 0, 1, 4, 14, 0, 200, 0, 0, 0, 1];
        short_add.extend([0; 8]);
        let cases = [
            add(99, wire(99, Message::FlowMod(fm.clone())), vec![]),
            add(99, wire(99, Message::FlowMod(fm)), vec![0; 8]),
            wire(4, ctrl.to_message()),
            exp(ONF, ONFT_BUNDLE_CONTROL, vec![0; 7]),
            exp(ONF, ONFT_BUNDLE_CONTROL, vec![0, 0, 0, 1, 0, 9, 0, 0]),
            exp(ONF, ONFT_BUNDLE_ADD_MESSAGE, short_add),
            exp(ONF, ONFT_BUNDLE_ADD_MESSAGE, vec![]),
            exp(ONF, 2302, vec![]),
            exp(
                crate::consts::experimenter::NICIRA,
                ONFT_BUNDLE_CONTROL,
                vec![0; 8],
            ),
            wire(1, Message::EchoRequest(vec![0; 8])),
        ];
        for raw in &cases {
            let want = match decode(raw).unwrap().body {
                Message::Experimenter(e) => BundleMsg::parse(&e),
                _ => None,
            };
            let got = BundleMsg::parse_raw(raw).map(|r| r.map(|m| m.to_owned()));
            assert_eq!(got, want, "{raw:02x?}");
        }
        assert!(matches!(
            BundleMsg::parse_raw(&cases[0]),
            Some(Ok(BundleMsgRef::Add(a))) if a.message == &cases[0][24..]
        ));
        // Not one whole message of this version: left to decode, which refuses it.
        let mut v1 = cases[2].clone();
        v1[0] = 1;
        let mut long = cases[2].clone();
        long.push(0);
        for raw in [&v1[..], &long[..], &cases[2][..10]] {
            assert_eq!(BundleMsg::parse_raw(raw), None);
            assert!(decode(raw).is_err());
        }
    }

    #[test]
    fn bundle_errors_are_onf_experimenter_errors() {
        let req = wire(
            5,
            BundleCtrl {
                bundle_id: 3,
                ctrl_type: BundleCtrlType::CommitRequest,
                flags: BundleFlags::empty(),
                properties: vec![],
            }
            .to_message(),
        );
        let e = BundleFailedCode::BadId.reply_to(&req);
        assert_eq!(e.xid, 5);
        let bytes = e.encode().unwrap();
        // type 0xffff, exp_type 2302, experimenter ONF, then the request.
        assert_eq!(
            &bytes[8..16],
            &[0xff, 0xff, 0x08, 0xfe, 0x4f, 0x4e, 0x46, 0]
        );
        assert_eq!(&bytes[16..], &req[..]);
        let Message::Error(em) = decode(&bytes).unwrap().body else {
            panic!("not an error");
        };
        assert_eq!(
            BundleFailedCode::from_error(&em),
            Some(BundleFailedCode::BadId)
        );
    }
}
