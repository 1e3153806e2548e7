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

/// The key field an extension field is stored in.
pub fn field_of_nxm(f: NxmField) -> Option<Field> {
    match f {
        NxmField::Reg(n) => Field::REGS.get(usize::from(n)).copied(),
        NxmField::Xreg(n) => Field::XREGS.get(usize::from(n)).copied(),
        NxmField::ConjId => Some(Field::ConjId),
        NxmField::CtState => Some(Field::CtState),
        NxmField::CtZone => Some(Field::CtZone),
        NxmField::CtMark => Some(Field::CtMark),
        NxmField::CtLabel => Some(Field::CtLabel),
        NxmField::CtNwProto => Some(Field::CtNwProto),
        NxmField::CtNwSrc => Some(Field::CtNwSrc),
        NxmField::CtNwDst => Some(Field::CtNwDst),
        NxmField::CtTpSrc => Some(Field::CtTpSrc),
        NxmField::CtTpDst => Some(Field::CtTpDst),
        NxmField::TunSrc => Some(Field::TunSrc),
        NxmField::TunDst => Some(Field::TunDst),
        NxmField::TunMetadata(n) => Field::TUN_METADATA.get(usize::from(n)).copied(),
    }
}

const CT_NXM: [NxmField; 11] = [
    NxmField::CtState,
    NxmField::CtZone,
    NxmField::CtMark,
    NxmField::CtLabel,
    NxmField::CtNwProto,
    NxmField::CtNwSrc,
    NxmField::CtNwDst,
    NxmField::CtTpSrc,
    NxmField::CtTpDst,
    NxmField::TunSrc,
    NxmField::TunDst,
];

/// The extension field a register key field is; `None` for the OXM basic fields.
pub fn nxm_of_field(f: Field) -> Option<NxmField> {
    if let Some(n) = Field::REGS.iter().position(|&r| r == f) {
        return Some(NxmField::Reg(n as u8));
    }
    if let Some(n) = Field::XREGS.iter().position(|&r| r == f) {
        return Some(NxmField::Xreg(n as u8));
    }
    if f == Field::ConjId {
        return Some(NxmField::ConjId);
    }
    if let Some(n) = Field::TUN_METADATA.iter().position(|&t| t == f) {
        return Some(NxmField::TunMetadata(n as u8));
    }
    CT_NXM.iter().copied().find(|&n| field_of_nxm(n) == Some(f))
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
    !matches!(
        f,
        Field::InPort | Field::InPhyPort | Field::Ipv6Exthdr | Field::ConjId
    ) && !f.is_ct()
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
    if field.is_ct() || field == Field::ConjId {
        // Only `ct(exec(...))` writes ct_mark/ct_label; the other ct fields are read-only.
        return Err(PipelineError::SetFieldNotSettable(field));
    }
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
        NxAction::Ct {
            flags,
            zone_src,
            zone,
            table,
            alg,
            actions,
        } => convert_ct(*flags, *zone_src, *zone, *table, *alg, actions)?,
        // NAT only nested in ct (Open vSwitch refuses it alone too).
        NxAction::Nat(_) => return Err(PipelineError::BadFieldRange),
        // The rest of Open vSwitch's rules (only beside notes, in apply-actions of a flow
        // entry) are [`pipeline::conjunction::check`]'s.
        NxAction::Conjunction {
            clause,
            n_clauses,
            id,
        } => {
            if !(2..=pipeline::conjunction::MAX_CLAUSES).contains(n_clauses) || clause >= n_clauses
            {
                return Err(PipelineError::BadConjunction);
            }
            Action::Conjunction {
                id: *id,
                clause: *clause,
                n_clauses: *n_clauses,
            }
        }
    })
}

fn convert_ct(
    flags: u16,
    zone_src: u32,
    zone: u16,
    table: u8,
    alg: u16,
    actions: &[OfAction],
) -> Result<Action, PipelineError> {
    use pipeline::flow::{CtAction, CtNat, CtNested, CtZone};
    let zone = if zone_src == 0 {
        CtZone::Imm(zone)
    } else {
        let r = FieldRef::from_header(zone_src).ok_or(PipelineError::BadFieldRange)?;
        let field = field_of_ref(r).ok_or(PipelineError::BadFieldRange)?;
        let ofs = NxAction::load_ofs(zone);
        if NxAction::load_n_bits(zone) != 16 || u32::from(ofs) + 16 > r.bits() {
            return Err(PipelineError::BadFieldRange);
        }
        CtZone::Field { field, ofs }
    };
    // Application-layer gateways (ftp, tftp) are not implemented.
    if alg != 0 || flags & !(openflow::nx::NX_CT_F_COMMIT | openflow::nx::NX_CT_F_FORCE) != 0 {
        return Err(PipelineError::BadFieldRange);
    }
    let ct_field = |f: Field| matches!(f, Field::CtMark | Field::CtLabel);
    let mut nested = Vec::new();
    for a in actions {
        let n = match a {
            OfAction::SetField(OxmTlv::Nxm(n)) => {
                let field = field_of_nxm(n.field()).ok_or(PipelineError::BadFieldRange)?;
                if !ct_field(field) {
                    return Err(PipelineError::SetFieldNotSettable(field));
                }
                CtNested::Set {
                    field,
                    value: n.value(),
                    mask: n.mask().unwrap_or(field.value_mask()),
                    form: None,
                }
            }
            OfAction::Nx(NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            }) => {
                let r = FieldRef::from_header(*dst).ok_or(PipelineError::BadFieldRange)?;
                let field = field_of_ref(r).ok_or(PipelineError::BadFieldRange)?;
                let ofs = u32::from(NxAction::load_ofs(*ofs_nbits));
                let n = u32::from(NxAction::load_n_bits(*ofs_nbits));
                if !ct_field(field) || ofs + n > r.bits() {
                    return Err(PipelineError::BadFieldRange);
                }
                CtNested::Set {
                    field,
                    value: u128::from(*value) << ofs,
                    mask: low_bits(n) << ofs,
                    form: Some(LoadForm::RegLoad),
                }
            }
            OfAction::Nx(NxAction::RegLoad2(OxmTlv::Nxm(n))) => {
                let field = field_of_nxm(n.field()).ok_or(PipelineError::BadFieldRange)?;
                if !ct_field(field) {
                    return Err(PipelineError::SetFieldNotSettable(field));
                }
                CtNested::Set {
                    field,
                    value: n.value(),
                    mask: n.mask().unwrap_or(field.value_mask()),
                    form: Some(LoadForm::RegLoad2),
                }
            }
            OfAction::Nx(NxAction::Nat(n)) => {
                let v = |a: std::net::IpAddr| match a {
                    std::net::IpAddr::V4(a) => (false, u128::from(u32::from(a))),
                    std::net::IpAddr::V6(a) => (true, u128::from(a)),
                };
                let min = n.addr_min.map(v);
                let max = n.addr_max.map(v);
                let v6 = min.is_some_and(|m| m.0);
                if max.is_some_and(|m| m.0 != v6) || min.zip(max).is_some_and(|(a, b)| b.1 < a.1) {
                    return Err(PipelineError::BadFieldRange);
                }
                CtNested::Nat(CtNat {
                    flags: n.flags,
                    v6,
                    addr_min: min.map(|m| m.1),
                    addr_max: max.map(|m| m.1),
                    port_min: n.port_min,
                    port_max: n.port_max,
                })
            }
            _ => return Err(PipelineError::BadFieldRange),
        };
        nested.push(n);
    }
    Ok(Action::Ct(Arc::new(CtAction::new(
        flags & openflow::nx::NX_CT_F_COMMIT != 0,
        flags & openflow::nx::NX_CT_F_FORCE != 0,
        zone,
        (table != openflow::nx::NX_CT_RECIRC_NONE).then_some(table),
        alg,
        nested,
    ))))
}

fn ct_to_of(ct: &pipeline::flow::CtAction) -> Option<OfAction> {
    use pipeline::flow::{CtNested, CtZone};
    let (zone_src, zone) = match ct.zone {
        CtZone::Imm(z) => (0, z),
        CtZone::Field { field, ofs } => (ref_of_field(field).header(), (ofs << 6) | 15),
    };
    let mut actions = Vec::new();
    for n in &ct.nested {
        actions.push(match *n {
            CtNested::Set {
                field,
                value,
                mask,
                form,
            } => {
                let nxm = nxm_of_field(field)?;
                let full = field.value_mask();
                match form {
                    None => OfAction::SetField(OxmTlv::Nxm(NxmOxm::new(nxm, value, None)?)),
                    Some(LoadForm::RegLoad) => {
                        let ofs = mask.trailing_zeros().min(127);
                        let n = (128 - mask.leading_zeros()).saturating_sub(ofs).max(1);
                        OfAction::Nx(NxAction::RegLoad {
                            ofs_nbits: ((ofs as u16) << 6) | ((n - 1) as u16 & 0x3f),
                            dst: nxm.header(false),
                            value: (value >> ofs) as u64,
                        })
                    }
                    Some(LoadForm::RegLoad2) => OfAction::Nx(NxAction::RegLoad2(OxmTlv::Nxm(
                        NxmOxm::new(nxm, value, (mask != full).then_some(mask))?,
                    ))),
                }
            }
            CtNested::Nat(n) => {
                let ip = |a: u128| {
                    if n.v6 {
                        std::net::IpAddr::V6(a.into())
                    } else {
                        std::net::IpAddr::V4((a as u32).into())
                    }
                };
                OfAction::Nx(NxAction::Nat(openflow::nx::NxNat {
                    flags: n.flags,
                    addr_min: n.addr_min.map(ip),
                    addr_max: n.addr_max.map(ip),
                    port_min: n.port_min,
                    port_max: n.port_max,
                }))
            }
        });
    }
    let mut flags = 0;
    if ct.commit {
        flags |= openflow::nx::NX_CT_F_COMMIT;
    }
    if ct.force {
        flags |= openflow::nx::NX_CT_F_FORCE;
    }
    Some(OfAction::Nx(NxAction::Ct {
        flags,
        zone_src,
        zone,
        table: ct.table.unwrap_or(openflow::nx::NX_CT_RECIRC_NONE),
        alg: ct.alg,
        actions,
    }))
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
        Action::Ct(ct) => return ct_to_of(ct),
        Action::Conjunction {
            id,
            clause,
            n_clauses,
        } => OfAction::Nx(NxAction::Conjunction {
            clause: *clause,
            n_clauses: *n_clauses,
            id: *id,
        }),
        _ => return None,
    })
}
