//! The Geneve TLV map (`ovs-ofctl add-tlv-map`, `del-tlv-map`, `dump-tlv-map`): which
//! Geneve option each `tun_metadataN` field holds, changed and read with Open vSwitch's
//! NXT_TLV_TABLE_MOD / NXT_TLV_TABLE_REQUEST, refused with its NXTTMFC_* errors.
//!
//! The flow key keeps [`packet::TUN_METADATA_FIELDS`] option fields of 4 bytes
//! (`tun_metadata0`, `tun_metadata1`; Open vSwitch has 64 and 256 bytes of options): an
//! index past them is NXTTMFC_BAD_FIELD_IDX, an option longer than 4 bytes
//! NXTTMFC_TABLE_FULL (no room for it). A change is all or nothing, as in Open vSwitch.

use datapath::{GeneveOption, GeneveOptionMap};
use openflow::error::{BadActionCode, BadMatchCode};
use openflow::tlv::{TlvCommand, TlvMap, TlvMsg, TlvTableModFailedCode as Code, TlvTableReply};
use openflow::{Action, ErrorCode, Instruction, Message, NxmField, OxmTlv};

/// Bytes of option data the key keeps per field.
pub const OPTION_BYTES: u8 = 4;

/// The map: per `tun_metadata` index, the option it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlvTable {
    pub map: GeneveOptionMap,
}

impl TlvTable {
    /// Applies a NXT_TLV_TABLE_MOD; `in_use(index)`: whether a flow matches on that
    /// field (a delete of it is NXTTMFC_INVALID_TLV_DEL). Nothing changes on an error.
    pub fn apply(
        &mut self,
        command: TlvCommand,
        mappings: &[TlvMap],
        in_use: impl Fn(usize) -> bool,
    ) -> Result<(), Code> {
        let mut next = self.map;
        match command {
            TlvCommand::Add => {
                for m in mappings {
                    let i = usize::from(m.index);
                    let slot = next.get(i).ok_or(Code::BadFieldIdx)?;
                    if slot.is_some() {
                        return Err(Code::AlreadyMapped);
                    }
                    if next
                        .iter()
                        .flatten()
                        .any(|o| o.class == m.option_class && o.type_ == m.option_type)
                    {
                        return Err(Code::DupEntry);
                    }
                    if m.option_len > OPTION_BYTES {
                        return Err(Code::TableFull);
                    }
                    next[i] = Some(GeneveOption {
                        class: m.option_class,
                        type_: m.option_type,
                        len: m.option_len,
                    });
                }
            }
            TlvCommand::Delete => {
                for m in mappings {
                    let i = usize::from(m.index);
                    if next.get(i).is_some_and(Option::is_some) {
                        if in_use(i) {
                            return Err(Code::InvalidTlvDel);
                        }
                        next[i] = None;
                    }
                }
            }
            TlvCommand::Clear => {
                for (i, slot) in next.iter_mut().enumerate() {
                    if slot.is_some() && in_use(i) {
                        return Err(Code::InvalidTlvDel);
                    }
                    *slot = None;
                }
            }
        }
        self.map = next;
        Ok(())
    }

    /// The NXT_TLV_TABLE_REPLY.
    pub fn reply(&self) -> Message {
        TlvMsg::Reply(TlvTableReply {
            max_option_space: u32::from(OPTION_BYTES) * self.map.len() as u32,
            max_fields: self.map.len() as u16,
            mappings: self
                .map
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    o.map(|o| TlvMap {
                        option_class: o.class,
                        option_type: o.type_,
                        option_len: o.len,
                        index: i as u16,
                    })
                })
                .collect(),
        })
        .to_message()
    }

    fn mapped(&self, n: u8) -> bool {
        self.map.get(usize::from(n)).is_some_and(Option::is_some)
    }

    /// A flow-mod that names a `tun_metadataN` the map does not have is refused, as Open
    /// vSwitch refuses it: BAD_MATCH/BAD_FIELD in the match, BAD_ACTION/BAD_SET_ARGUMENT
    /// in a set_field.
    pub fn check_flow_mod(&self, fm: &openflow::messages::FlowMod) -> Result<(), ErrorCode> {
        for f in &fm.match_.fields {
            if let OxmTlv::Nxm(n) = f {
                if let NxmField::TunMetadata(i) = n.field() {
                    if !self.mapped(i) {
                        return Err(ErrorCode::BadMatch(BadMatchCode::BadField));
                    }
                }
            }
        }
        for inst in &fm.instructions {
            if let Instruction::ApplyActions(a) | Instruction::WriteActions(a) = inst {
                for a in a {
                    if let Action::SetField(OxmTlv::Nxm(n)) = a {
                        if let NxmField::TunMetadata(i) = n.field() {
                            if !self.mapped(i) {
                                return Err(ErrorCode::BadAction(BadActionCode::BadSetArgument));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(index: u16, class: u16, type_: u8, len: u8) -> TlvMap {
        TlvMap {
            option_class: class,
            option_type: type_,
            option_len: len,
            index,
        }
    }

    #[test]
    fn refusals_are_ovs_codes_and_change_nothing() {
        let mut t = TlvTable::default();
        let add = |t: &mut TlvTable, m: &[TlvMap]| t.apply(TlvCommand::Add, m, |_| false);
        add(&mut t, &[map(0, 0xffff, 0x80, 4)]).unwrap();
        assert_eq!(add(&mut t, &[map(0, 0x1, 1, 4)]), Err(Code::AlreadyMapped));
        assert_eq!(add(&mut t, &[map(1, 0xffff, 0x80, 4)]), Err(Code::DupEntry));
        assert_eq!(add(&mut t, &[map(1, 0x1, 1, 8)]), Err(Code::TableFull));
        assert_eq!(add(&mut t, &[map(2, 0x1, 1, 4)]), Err(Code::BadFieldIdx));
        // All or nothing: the first mapping of a refused mod is not kept.
        assert_eq!(
            add(&mut t, &[map(1, 0x1, 1, 4), map(5, 0x1, 2, 4)]),
            Err(Code::BadFieldIdx)
        );
        assert!(t.map[1].is_none());
        assert_eq!(
            t.apply(TlvCommand::Delete, &[map(0, 0, 0, 0)], |i| i == 0),
            Err(Code::InvalidTlvDel)
        );
        assert_eq!(
            t.apply(TlvCommand::Clear, &[], |i| i == 0),
            Err(Code::InvalidTlvDel)
        );
        t.apply(TlvCommand::Delete, &[map(0, 0, 0, 0)], |_| false)
            .unwrap();
        assert_eq!(t, TlvTable::default());
    }
}
