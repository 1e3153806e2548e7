//! Open vSwitch's Geneve TLV map (`ovs-ofctl add-tlv-map`, `del-tlv-map`, `dump-tlv-map`):
//! which Geneve option (class, type, length) each `tun_metadataN` field holds.
//!
//! The messages are Nicira EXPERIMENTER messages (vendor [`NX_VENDOR_ID`]): NXT_TLV_TABLE_MOD
//! (`exp_type` 24), NXT_TLV_TABLE_REQUEST (25) and NXT_TLV_TABLE_REPLY (26), with Open
//! vSwitch's `nx_tlv_table_mod`, `nx_tlv_map` and `nx_tlv_table_reply` bodies. Like bundles
//! they stay [`Message::Experimenter`] in the message enum; [`TlvMsg::parse`] gives the
//! typed view. Failures are NXTTMFC_* experimenter errors ([`TlvTableModFailedCode`]).

use crate::messages::{ExperimenterMsg, Message};
use crate::nx::{NX_VENDOR_ID, N_TUN_METADATA, TLV_MAX_OPT_SIZE};
use crate::wire::{put_u16, put_u32, put_u8, put_zeros};

/// `exp_type` of NXT_TLV_TABLE_MOD.
pub const NXT_TLV_TABLE_MOD: u32 = 24;
/// `exp_type` of NXT_TLV_TABLE_REQUEST.
pub const NXT_TLV_TABLE_REQUEST: u32 = 25;
/// `exp_type` of NXT_TLV_TABLE_REPLY.
pub const NXT_TLV_TABLE_REPLY: u32 = 26;

/// One mapping: Geneve option (class, type, length in bytes) to `tun_metadata<index>`
/// (`nx_tlv_map`, 8 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlvMap {
    pub option_class: u16,
    pub option_type: u8,
    pub option_len: u8,
    pub index: u16,
}

/// `nx_tlv_table_mod_command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlvCommand {
    Add,
    Delete,
    Clear,
}

/// The NXTTMFC_* codes (`OFPET_TLV_TABLE_MOD_FAILED` in Open vSwitch's `ofp-errors.h`): in
/// OpenFlow 1.2+ experimenter errors with vendor Nicira and these `exp_type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlvTableModFailedCode {
    /// The command is not add, delete or clear.
    BadCommand,
    /// An option length not a multiple of 4 or above 124.
    BadOptLen,
    /// A field index past the `tun_metadataN` fields the switch supports.
    BadFieldIdx,
    /// The options would exceed the switch's option space.
    TableFull,
    /// An add for an index that is already mapped.
    AlreadyMapped,
    /// An add for an option (class, type) already mapped to another index.
    DupEntry,
    /// A delete of a mapping that a flow still uses.
    InvalidTlvDel,
}

impl TlvTableModFailedCode {
    /// The `exp_type` Open vSwitch sends (`NX1.2+(16..21, 38)`).
    pub const fn exp_type(self) -> u16 {
        match self {
            TlvTableModFailedCode::BadCommand => 16,
            TlvTableModFailedCode::BadOptLen => 17,
            TlvTableModFailedCode::BadFieldIdx => 18,
            TlvTableModFailedCode::TableFull => 19,
            TlvTableModFailedCode::AlreadyMapped => 20,
            TlvTableModFailedCode::DupEntry => 21,
            TlvTableModFailedCode::InvalidTlvDel => 38,
        }
    }

    /// The code for an `exp_type`.
    pub fn from_exp_type(t: u16) -> Option<Self> {
        use TlvTableModFailedCode::*;
        [
            BadCommand,
            BadOptLen,
            BadFieldIdx,
            TableFull,
            AlreadyMapped,
            DupEntry,
            InvalidTlvDel,
        ]
        .into_iter()
        .find(|c| c.exp_type() == t)
    }
}

/// A TLV map message, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvMsg {
    /// NXT_TLV_TABLE_MOD.
    Mod {
        command: TlvCommand,
        mappings: Vec<TlvMap>,
    },
    /// NXT_TLV_TABLE_REQUEST.
    Request,
    /// NXT_TLV_TABLE_REPLY.
    Reply(TlvTableReply),
}

/// NXT_TLV_TABLE_REPLY: the switch's limits and its mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvTableReply {
    /// Most option bytes (all mappings' lengths together) the switch takes.
    pub max_option_space: u32,
    /// How many `tun_metadataN` fields it has.
    pub max_fields: u16,
    pub mappings: Vec<TlvMap>,
}

fn put_maps(out: &mut Vec<u8>, maps: &[TlvMap]) {
    for m in maps {
        put_u16(out, m.option_class);
        put_u8(out, m.option_type);
        put_u8(out, m.option_len);
        put_u16(out, m.index);
        put_zeros(out, 2);
    }
}

/// The mappings of a mod or reply body, checked as Open vSwitch checks them.
fn parse_maps(mut b: &[u8]) -> Result<Vec<TlvMap>, TlvTableModFailedCode> {
    let mut maps = Vec::with_capacity(b.len() / 8);
    while !b.is_empty() {
        // A trailing partial mapping: Open vSwitch's pull fails with a length error; the
        // closest TLV code is a bad length.
        let Some((m, rest)) = b.split_first_chunk::<8>() else {
            return Err(TlvTableModFailedCode::BadOptLen);
        };
        b = rest;
        let map = TlvMap {
            option_class: u16::from_be_bytes([m[0], m[1]]),
            option_type: m[2],
            option_len: m[3],
            index: u16::from_be_bytes([m[4], m[5]]),
        };
        if !map.option_len.is_multiple_of(4) || usize::from(map.option_len) > TLV_MAX_OPT_SIZE {
            return Err(TlvTableModFailedCode::BadOptLen);
        }
        if map.index >= u16::from(N_TUN_METADATA) {
            return Err(TlvTableModFailedCode::BadFieldIdx);
        }
        maps.push(map);
    }
    Ok(maps)
}

impl TlvMsg {
    /// The typed view of a Nicira TLV map message; `None` for any other experimenter
    /// message; `Some(Err)` for a TLV message the switch must refuse with that code.
    pub fn parse(e: &ExperimenterMsg) -> Option<Result<TlvMsg, TlvTableModFailedCode>> {
        if e.experimenter != NX_VENDOR_ID {
            return None;
        }
        Some(match e.exp_type {
            NXT_TLV_TABLE_MOD => (|| {
                let (h, rest) = e
                    .data
                    .split_first_chunk::<8>()
                    .ok_or(TlvTableModFailedCode::BadCommand)?;
                let command = match u16::from_be_bytes([h[0], h[1]]) {
                    0 => TlvCommand::Add,
                    1 => TlvCommand::Delete,
                    2 => TlvCommand::Clear,
                    _ => return Err(TlvTableModFailedCode::BadCommand),
                };
                Ok(TlvMsg::Mod {
                    command,
                    mappings: parse_maps(rest)?,
                })
            })(),
            NXT_TLV_TABLE_REQUEST => Ok(TlvMsg::Request),
            NXT_TLV_TABLE_REPLY => (|| {
                let (h, rest) = e
                    .data
                    .split_first_chunk::<16>()
                    .ok_or(TlvTableModFailedCode::BadOptLen)?;
                Ok(TlvMsg::Reply(TlvTableReply {
                    max_option_space: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                    max_fields: u16::from_be_bytes([h[4], h[5]]),
                    mappings: parse_maps(rest)?,
                }))
            })(),
            _ => return None,
        })
    }

    /// The EXPERIMENTER message body.
    pub fn to_message(&self) -> Message {
        let mut data = Vec::new();
        let exp_type = match self {
            TlvMsg::Mod { command, mappings } => {
                put_u16(
                    &mut data,
                    match command {
                        TlvCommand::Add => 0,
                        TlvCommand::Delete => 1,
                        TlvCommand::Clear => 2,
                    },
                );
                put_zeros(&mut data, 6);
                put_maps(&mut data, mappings);
                NXT_TLV_TABLE_MOD
            }
            TlvMsg::Request => NXT_TLV_TABLE_REQUEST,
            TlvMsg::Reply(r) => {
                put_u32(&mut data, r.max_option_space);
                put_u16(&mut data, r.max_fields);
                put_zeros(&mut data, 10);
                put_maps(&mut data, &r.mappings);
                NXT_TLV_TABLE_REPLY
            }
        };
        Message::Experimenter(ExperimenterMsg {
            experimenter: NX_VENDOR_ID,
            exp_type,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(exp_type: u32, data: Vec<u8>) -> ExperimenterMsg {
        ExperimenterMsg {
            experimenter: NX_VENDOR_ID,
            exp_type,
            data,
        }
    }

    #[test]
    fn mod_round_trips_and_refuses_as_ovs() {
        let m = TlvMsg::Mod {
            command: TlvCommand::Add,
            mappings: vec![TlvMap {
                option_class: 0xffff,
                option_type: 0x80,
                option_len: 4,
                index: 0,
            }],
        };
        let Message::Experimenter(e) = m.to_message() else {
            panic!("experimenter")
        };
        assert_eq!(
            e.data,
            [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x80, 4, 0, 0, 0, 0]
        );
        assert_eq!(TlvMsg::parse(&e), Some(Ok(m)));
        let bad = |data: Vec<u8>| TlvMsg::parse(&exp(NXT_TLV_TABLE_MOD, data));
        assert_eq!(
            bad(vec![0, 3, 0, 0, 0, 0, 0, 0]),
            Some(Err(TlvTableModFailedCode::BadCommand))
        );
        assert_eq!(
            bad(vec![
                0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x80, 5, 0, 0, 0, 0
            ]),
            Some(Err(TlvTableModFailedCode::BadOptLen))
        );
        assert_eq!(
            bad(vec![
                0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x80, 128, 0, 0, 0, 0
            ]),
            Some(Err(TlvTableModFailedCode::BadOptLen))
        );
        assert_eq!(
            bad(vec![
                0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x80, 4, 0, 64, 0, 0
            ]),
            Some(Err(TlvTableModFailedCode::BadFieldIdx))
        );
        assert_eq!(TlvMsg::parse(&exp(99, vec![])), None);
    }

    #[test]
    fn reply_round_trips() {
        let r = TlvMsg::Reply(TlvTableReply {
            max_option_space: 8,
            max_fields: 2,
            mappings: vec![TlvMap {
                option_class: 0x0102,
                option_type: 0x80,
                option_len: 4,
                index: 1,
            }],
        });
        let Message::Experimenter(e) = r.to_message() else {
            panic!("experimenter")
        };
        assert_eq!(e.data.len(), 24);
        assert_eq!(TlvMsg::parse(&e), Some(Ok(r)));
    }
}
