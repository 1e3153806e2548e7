//! OpenFlow 1.3 actions (`ofp_action_*`).

use crate::error::DecodeError;
use crate::oxm::{BasicOxm, ExperimenterOxm, OxmField, OxmTlv};
use crate::oxm::{OFPXMC_EXPERIMENTER, OFPXMC_OPENFLOW_BASIC};
use crate::wire::{pad_to_8, patch_len, put_u16, put_u32, put_u8, put_zeros, wire_enum, Reader};

wire_enum! {
    /// `ofp_action_type`.
    pub enum ActionType: u16 {
        Output = 0,
        CopyTtlOut = 11,
        CopyTtlIn = 12,
        SetMplsTtl = 15,
        DecMplsTtl = 16,
        PushVlan = 17,
        PopVlan = 18,
        PushMpls = 19,
        PopMpls = 20,
        SetQueue = 21,
        Group = 22,
        SetNwTtl = 23,
        DecNwTtl = 24,
        SetField = 25,
        PushPbb = 26,
        PopPbb = 27,
        Experimenter = 0xffff,
    }
}

/// One action. Port, group and queue numbers are raw `u32` since every unreserved value is
/// legal (see [`crate::consts`] for the reserved ones).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// `max_len` only matters for OFPP_CONTROLLER (see [`crate::consts::OFPCML_NO_BUFFER`]).
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    /// Ethertype of the new tag (0x8100 or 0x88a8).
    PushVlan(u16),
    PopVlan,
    /// Ethertype of the new label (0x8847 or 0x8848).
    PushMpls(u16),
    /// Ethertype of the payload after the last label is popped.
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    /// Set one field. OpenFlow 1.3 forbids a mask here, which the decoder enforces; an
    /// experimenter OXM is kept so the agent can answer BAD_ACTION/BAD_SET_TYPE.
    SetField(OxmTlv),
    /// Ethertype of the new I-TAG (0x88e7).
    PushPbb(u16),
    PopPbb,
    /// An Open vSwitch extension (experimenter [`crate::nx::NX_VENDOR_ID`]) this codec
    /// implements.
    Nx(crate::nx::NxAction),
    /// Decoded (not rejected) so the agent can answer BAD_ACTION/BAD_EXPERIMENTER. `data` is
    /// everything after the experimenter id; the encoder pads it to a multiple of 8.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
}

impl Action {
    pub fn action_type(&self) -> ActionType {
        use Action::*;
        match self {
            Output { .. } => ActionType::Output,
            CopyTtlOut => ActionType::CopyTtlOut,
            CopyTtlIn => ActionType::CopyTtlIn,
            SetMplsTtl(_) => ActionType::SetMplsTtl,
            DecMplsTtl => ActionType::DecMplsTtl,
            PushVlan(_) => ActionType::PushVlan,
            PopVlan => ActionType::PopVlan,
            PushMpls(_) => ActionType::PushMpls,
            PopMpls(_) => ActionType::PopMpls,
            SetQueue(_) => ActionType::SetQueue,
            Group(_) => ActionType::Group,
            SetNwTtl(_) => ActionType::SetNwTtl,
            DecNwTtl => ActionType::DecNwTtl,
            SetField(_) => ActionType::SetField,
            PushPbb(_) => ActionType::PushPbb,
            PopPbb => ActionType::PopPbb,
            Nx(_) | Experimenter { .. } => ActionType::Experimenter,
        }
    }

    /// Output to `port` with `max_len` OFPCML_NO_BUFFER, the usual choice.
    pub fn output(port: u32) -> Self {
        Action::Output {
            port,
            max_len: crate::consts::OFPCML_NO_BUFFER,
        }
    }

    /// SET_FIELD on a basic field; `None` if the value does not fit.
    pub fn set_field(field: OxmField, value: u128) -> Option<Self> {
        BasicOxm::new(field, value).map(|b| Action::SetField(OxmTlv::Basic(b)))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.action_type().raw());
        put_u16(out, 0);
        use Action::*;
        match self {
            Output { port, max_len } => {
                put_u32(out, *port);
                put_u16(out, *max_len);
                put_zeros(out, 6);
            }
            CopyTtlOut | CopyTtlIn | DecMplsTtl | PopVlan | DecNwTtl | PopPbb => put_zeros(out, 4),
            SetMplsTtl(ttl) | SetNwTtl(ttl) => {
                put_u8(out, *ttl);
                put_zeros(out, 3);
            }
            PushVlan(et) | PushMpls(et) | PopMpls(et) | PushPbb(et) => {
                put_u16(out, *et);
                put_zeros(out, 2);
            }
            SetQueue(id) | Group(id) => put_u32(out, *id),
            SetField(oxm) => {
                oxm.encode(out);
                pad_to_8(out, start);
            }
            Nx(nx) => {
                put_u32(out, crate::nx::NX_VENDOR_ID);
                nx.encode_body(out);
                pad_to_8(out, start);
            }
            Experimenter { experimenter, data } => {
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
                pad_to_8(out, start);
            }
        }
        patch_len(out, start + 2, start);
    }

    /// Decodes one action from the front of `r`.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Action, DecodeError> {
        let head = r.peek(4).map_err(|_| DecodeError::BadActionLength {
            action_type: 0,
            length: r.remaining() as u16,
        })?;
        let action_type = u16::from_be_bytes([head[0], head[1]]);
        let length = u16::from_be_bytes([head[2], head[3]]);
        let len_err = DecodeError::BadActionLength {
            action_type,
            length,
        };
        let len = usize::from(length);
        if len < 8 || len % 8 != 0 {
            return Err(len_err);
        }
        let mut a = r.sub(len, len_err)?;
        a.skip(4)?;
        let ty = ActionType::from_raw(action_type)
            .ok_or(DecodeError::UnknownActionType { action_type })?;
        let fixed = |size: usize| if len == size { Ok(()) } else { Err(len_err) };
        use ActionType as T;
        let action = match ty {
            T::Output => {
                fixed(16)?;
                let port = a.u32()?;
                let max_len = a.u16()?;
                Action::Output { port, max_len }
            }
            T::CopyTtlOut => fixed(8).map(|_| Action::CopyTtlOut)?,
            T::CopyTtlIn => fixed(8).map(|_| Action::CopyTtlIn)?,
            T::DecMplsTtl => fixed(8).map(|_| Action::DecMplsTtl)?,
            T::PopVlan => fixed(8).map(|_| Action::PopVlan)?,
            T::DecNwTtl => fixed(8).map(|_| Action::DecNwTtl)?,
            T::PopPbb => fixed(8).map(|_| Action::PopPbb)?,
            T::SetMplsTtl => {
                fixed(8)?;
                Action::SetMplsTtl(a.u8()?)
            }
            T::SetNwTtl => {
                fixed(8)?;
                Action::SetNwTtl(a.u8()?)
            }
            T::PushVlan => {
                fixed(8)?;
                Action::PushVlan(a.u16()?)
            }
            T::PushMpls => {
                fixed(8)?;
                Action::PushMpls(a.u16()?)
            }
            T::PopMpls => {
                fixed(8)?;
                Action::PopMpls(a.u16()?)
            }
            T::PushPbb => {
                fixed(8)?;
                Action::PushPbb(a.u16()?)
            }
            T::SetQueue => {
                fixed(8)?;
                Action::SetQueue(a.u32()?)
            }
            T::Group => {
                fixed(8)?;
                Action::Group(a.u32()?)
            }
            T::SetField => Action::SetField(decode_set_field(a.rest())?),
            T::Experimenter => {
                let experimenter = a.u32()?;
                let data = a.rest();
                match experimenter {
                    crate::nx::NX_VENDOR_ID => match crate::nx::NxAction::decode(data)? {
                        Some(nx) => Action::Nx(nx),
                        None => Action::Experimenter {
                            experimenter,
                            data: data.to_vec(),
                        },
                    },
                    _ => Action::Experimenter {
                        experimenter,
                        data: data.to_vec(),
                    },
                }
            }
        };
        Ok(action)
    }
}

/// Decodes the OXM of a SET_FIELD with the BAD_ACTION/BAD_SET_* error mapping. `body` is the
/// action after its 4-byte header, padding included.
fn decode_set_field(body: &[u8]) -> Result<OxmTlv, DecodeError> {
    let mut r = Reader::new(body, DecodeError::BadSetFieldLength);
    let header = r.u32()?;
    let class = (header >> 16) as u16;
    let field = ((header >> 9) & 0x7f) as u8;
    let has_mask = header & 0x100 != 0;
    let len = (header & 0xff) as usize;
    let payload = r.bytes(len)?;
    match class {
        OFPXMC_OPENFLOW_BASIC => {
            let f = OxmField::from_raw(field).ok_or(DecodeError::BadSetFieldType { header })?;
            if has_mask {
                return Err(DecodeError::BadSetFieldArgument { header });
            }
            BasicOxm::from_bytes(f, payload, None)
                .map(OxmTlv::Basic)
                .ok_or(DecodeError::BadSetFieldLength)
        }
        OFPXMC_EXPERIMENTER => {
            let (exp, rest) = payload
                .split_first_chunk::<4>()
                .ok_or(DecodeError::BadSetFieldLength)?;
            ExperimenterOxm::new(field, has_mask, u32::from_be_bytes(*exp), rest.to_vec())
                .map(OxmTlv::Experimenter)
                .ok_or(DecodeError::BadSetFieldLength)
        }
        _ => {
            let f = crate::nx::NxmField::from_class_field(class, field)
                .ok_or(DecodeError::BadSetFieldType { header })?;
            if has_mask {
                return Err(DecodeError::BadSetFieldArgument { header });
            }
            crate::nx::NxmOxm::from_payload(f, false, payload)
                .map(OxmTlv::Nxm)
                .ok_or(DecodeError::BadSetFieldLength)
        }
    }
}

/// Encodes a list of actions back to back.
pub fn encode_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        a.encode(out);
    }
}

/// Decodes a list of actions that fills `buf` exactly.
pub fn decode_actions(buf: &[u8]) -> Result<Vec<Action>, DecodeError> {
    let mut r = Reader::new(
        buf,
        DecodeError::BadActionLength {
            action_type: 0,
            length: 0,
        },
    );
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Action::decode(&mut r)?);
    }
    Ok(out)
}
