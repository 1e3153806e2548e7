//! Open vSwitch extensions ([`openflow::nx`]) to and from the pipeline's actions and match
//! fields: registers as key fields, `resubmit`, `move`, `load`, `note`, `ct_clear`. The
//! refusals follow Open vSwitch's (a bit range past its field is BAD_ARGUMENT, an extension
//! in write-actions UNSUPPORTED_ORDER).

use std::sync::Arc;

use openflow::nx::{FieldRef, NxAction, NxmField, NxmOxm, NX_IN_PORT};
use openflow::{Action as OfAction, OxmField, OxmTlv};
use packet::Field;
use pipeline::flow::{Action, LoadForm, MatchField};
use pipeline::PipelineError;

/// The key field an extension field is stored in; `None` for one the pipeline does not
/// hold yet (conj_id).
pub fn field_of_nxm(f: NxmField) -> Option<Field> {
    match f {
        NxmField::Reg(n) => Field::REGS.get(usize::from(n)).copied(),
        NxmField::Xreg(n) => Field::XREGS.get(usize::from(n)).copied(),
        NxmField::ConjId => None,
    }
}

/// The extension field a register key field is; `None` for the OXM basic fields.
pub fn nxm_of_field(f: Field) -> Option<NxmField> {
    if let Some(n) = Field::REGS.iter().position(|&r| r == f) {
        return Some(NxmField::Reg(n as u8));
    }
    Field::XREGS
        .iter()
        .position(|&r| r == f)
        .map(|n| NxmField::Xreg(n as u8))
}

fn field_of_ref(r: FieldRef) -> Option<Field> {
    match r {
        FieldRef::Basic(f) => Field::from_oxm(f.raw()),
        FieldRef::Nxm(n) => field_of_nxm(n),
    }
}

fn ref_of_field(f: Field) -> FieldRef {
    match nxm_of_field(f) {
        Some(n) => FieldRef::Nxm(n),
        None => FieldRef::Basic(
            OxmField::from_raw(f.oxm_field()).expect("the 40 key fields are the basic fields"),
        ),
    }
}

/// A match TLV of an extension field.
pub fn match_field(n: &NxmOxm) -> Result<MatchField, PipelineError> {
    let field = field_of_nxm(n.field()).ok_or(PipelineError::MatchExperimenter)?;
    n.validate()
        .map_err(|c| PipelineError::MatchField(crate::types::match_field_error(c)))?;
    Ok(MatchField {
        field,
        value: n.value(),
        mask: n.mask(),
    })
}

/// The match TLV for a register field of a match.
pub fn match_tlv(f: &MatchField) -> Option<OxmTlv> {
    let n = nxm_of_field(f.field)?;
    NxmOxm::new(n, f.value & f.mask.unwrap_or(u128::MAX), f.mask).map(OxmTlv::Nxm)
}

/// Fields a move or load may write: not in_port, in_phy_port or ipv6_exthdr (metadata and
/// registers may be written; OpenFlow's set-field refuses metadata, Open vSwitch's load
/// does not).
fn writable(f: Field) -> bool {
    !matches!(f, Field::InPort | Field::InPhyPort | Field::Ipv6Exthdr)
}

fn low_bits(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// Resubmit's 16-bit port (OpenFlow 1.0 numbering) as an OpenFlow 1.3 port.
fn port_of_16(p: u16) -> Option<u32> {
    match p {
        NX_IN_PORT => None,
        p if p >= 0xff00 => Some(0xffff_0000 | u32::from(p)),
        p => Some(u32::from(p)),
    }
}

fn port_to_16(p: Option<u32>) -> u16 {
    match p {
        None => NX_IN_PORT,
        Some(p) if p >= 0xffff_ff00 => p as u16,
        Some(p) => p.min(0xfeff) as u16,
    }
}

/// SET_FIELD on an extension field (`set_field:5->reg0`).
pub fn set_field(n: &NxmOxm) -> Result<Action, PipelineError> {
    let field = field_of_nxm(n.field()).ok_or(PipelineError::SetFieldExperimenter)?;
    Ok(Action::SetField {
        field,
        value: n.value(),
    })
}

/// One extension action.
pub fn convert(a: &NxAction) -> Result<Action, PipelineError> {
    Ok(match a {
        NxAction::Resubmit { in_port, table } => Action::Resubmit {
            in_port: port_of_16(*in_port),
            table: (*table != 0xff).then_some(*table),
        },
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => {
            let r = |h: u32| {
                FieldRef::from_header(h)
                    .and_then(|r| Some((r, field_of_ref(r)?)))
                    .ok_or(PipelineError::BadFieldRange)
            };
            let (sr, s) = r(*src)?;
            let (dr, d) = r(*dst)?;
            let n = u32::from(*n_bits);
            if n == 0
                || u32::from(*src_ofs) + n > sr.bits()
                || u32::from(*dst_ofs) + n > dr.bits()
                || !writable(d)
            {
                return Err(PipelineError::BadFieldRange);
            }
            Action::Move {
                src: s,
                src_ofs: *src_ofs,
                dst: d,
                dst_ofs: *dst_ofs,
                n_bits: *n_bits,
            }
        }
        NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        } => {
            let r = FieldRef::from_header(*dst).ok_or(PipelineError::BadFieldRange)?;
            let field = field_of_ref(r).ok_or(PipelineError::BadFieldRange)?;
            let ofs = u32::from(NxAction::load_ofs(*ofs_nbits));
            let n = u32::from(NxAction::load_n_bits(*ofs_nbits));
            if ofs + n > r.bits() || u128::from(*value) & !low_bits(n) != 0 || !writable(field) {
                return Err(PipelineError::BadFieldRange);
            }
            Action::SetFieldMasked {
                field,
                value: u128::from(*value) << ofs,
                mask: low_bits(n) << ofs,
                form: LoadForm::RegLoad,
            }
        }
        NxAction::RegLoad2(tlv) => {
            let (field, value, mask) = match tlv {
                OxmTlv::Basic(b) => (
                    Field::from_oxm(b.field().raw()).ok_or(PipelineError::SetFieldExperimenter)?,
                    b.value(),
                    b.mask(),
                ),
                OxmTlv::Nxm(n) => (
                    field_of_nxm(n.field()).ok_or(PipelineError::SetFieldExperimenter)?,
                    n.value(),
                    n.mask(),
                ),
                OxmTlv::Experimenter(_) => return Err(PipelineError::SetFieldExperimenter),
            };
            if !writable(field) {
                return Err(PipelineError::SetFieldNotSettable(field));
            }
            let full = field.value_mask();
            let mask = mask.unwrap_or(full);
            if value & !full != 0 || value & !mask != 0 {
                return Err(PipelineError::SetFieldValue(field));
            }
            Action::SetFieldMasked {
                field,
                value,
                mask,
                form: LoadForm::RegLoad2,
            }
        }
        NxAction::Note(bytes) => Action::Note(Arc::from(bytes.as_slice())),
        NxAction::CtClear => Action::CtClear,
        NxAction::Conjunction { .. } => return Err(PipelineError::ActionExperimenter),
    })
}

/// The fields an extension action reads or writes, for the prerequisite checks of the
/// conversion (`move:NXM_OF_TCP_SRC[]->...` needs a TCP match, as in Open vSwitch).
pub fn fields_used(a: &Action) -> [Option<Field>; 2] {
    match *a {
        Action::Move { src, dst, .. } => [Some(src), Some(dst)],
        Action::SetFieldMasked { field, .. } => [Some(field), None],
        _ => [None, None],
    }
}

/// A pipeline action that is an extension back as the wire action; `None` for the
/// OpenFlow 1.3 ones.
pub fn to_of(a: &Action) -> Option<OfAction> {
    Some(match a {
        Action::SetField { field, value } => {
            let n = nxm_of_field(*field)?;
            OfAction::SetField(OxmTlv::Nxm(NxmOxm::new(n, *value, None)?))
        }
        Action::Resubmit { in_port, table } => OfAction::Nx(NxAction::Resubmit {
            in_port: port_to_16(*in_port),
            table: table.unwrap_or(0xff),
        }),
        Action::Move {
            src,
            src_ofs,
            dst,
            dst_ofs,
            n_bits,
        } => OfAction::Nx(NxAction::RegMove {
            n_bits: *n_bits,
            src_ofs: *src_ofs,
            dst_ofs: *dst_ofs,
            src: ref_of_field(*src).header(),
            dst: ref_of_field(*dst).header(),
        }),
        Action::SetFieldMasked {
            field,
            value,
            mask,
            form: LoadForm::RegLoad,
        } => {
            let ofs = mask.trailing_zeros().min(127);
            let n = (128 - mask.leading_zeros()).saturating_sub(ofs).max(1);
            OfAction::Nx(NxAction::RegLoad {
                ofs_nbits: ((ofs as u16) << 6) | ((n - 1) as u16 & 0x3f),
                dst: ref_of_field(*field).header(),
                value: (value >> ofs) as u64,
            })
        }
        Action::SetFieldMasked {
            field,
            value,
            mask,
            form: LoadForm::RegLoad2,
        } => {
            let full = field.value_mask();
            let m = (*mask != full).then_some(*mask);
            let tlv = match nxm_of_field(*field) {
                Some(n) => OxmTlv::Nxm(NxmOxm::new(n, *value, m)?),
                None => {
                    let f = OxmField::from_raw(field.oxm_field())?;
                    match m {
                        Some(m) => OxmTlv::masked(f, *value, m)?,
                        None => OxmTlv::exact(f, *value)?,
                    }
                }
            };
            OfAction::Nx(NxAction::RegLoad2(tlv))
        }
        Action::Note(bytes) => OfAction::Nx(NxAction::Note(bytes.to_vec())),
        Action::CtClear => OfAction::Nx(NxAction::CtClear),
        _ => return None,
    })
}
