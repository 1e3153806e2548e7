//! OpenFlow 1.3 instructions (`ofp_instruction_*`).

use crate::action::{decode_actions, encode_actions, Action};
use crate::error::DecodeError;
use crate::wire::{
    pad_to_8, patch_len, put_u16, put_u32, put_u64, put_u8, put_zeros, wire_enum, Reader,
};

wire_enum! {
    /// `ofp_instruction_type`.
    pub enum InstructionType: u16 {
        GotoTable = 1,
        WriteMetadata = 2,
        WriteActions = 3,
        ApplyActions = 4,
        ClearActions = 5,
        Meter = 6,
        Experimenter = 0xffff,
    }
}

/// One instruction of a flow entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        metadata: u64,
        mask: u64,
    },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    /// Decoded (not rejected) so the agent can answer BAD_INSTRUCTION/BAD_EXPERIMENTER.
    /// `data` follows the experimenter id; the encoder pads it to a multiple of 8.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
}

impl Instruction {
    pub fn instruction_type(&self) -> InstructionType {
        match self {
            Instruction::GotoTable(_) => InstructionType::GotoTable,
            Instruction::WriteMetadata { .. } => InstructionType::WriteMetadata,
            Instruction::WriteActions(_) => InstructionType::WriteActions,
            Instruction::ApplyActions(_) => InstructionType::ApplyActions,
            Instruction::ClearActions => InstructionType::ClearActions,
            Instruction::Meter(_) => InstructionType::Meter,
            Instruction::Experimenter { .. } => InstructionType::Experimenter,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.instruction_type().raw());
        put_u16(out, 0);
        match self {
            Instruction::GotoTable(t) => {
                put_u8(out, *t);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                put_zeros(out, 4);
                put_u64(out, *metadata);
                put_u64(out, *mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                put_zeros(out, 4);
                encode_actions(a, out);
            }
            Instruction::ClearActions => put_zeros(out, 4),
            Instruction::Meter(m) => put_u32(out, *m),
            Instruction::Experimenter { experimenter, data } => {
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
                pad_to_8(out, start);
            }
        }
        patch_len(out, start + 2, start);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Instruction, DecodeError> {
        let head = r.peek(4).map_err(|_| DecodeError::BadInstructionLength {
            inst_type: 0,
            length: r.remaining() as u16,
        })?;
        let inst_type = u16::from_be_bytes([head[0], head[1]]);
        let length = u16::from_be_bytes([head[2], head[3]]);
        let len_err = DecodeError::BadInstructionLength { inst_type, length };
        let len = usize::from(length);
        if len < 8 || len % 8 != 0 {
            return Err(len_err);
        }
        let mut b = r.sub(len, len_err)?;
        b.skip(4)?;
        let ty = InstructionType::from_raw(inst_type)
            .ok_or(DecodeError::UnknownInstructionType { inst_type })?;
        let fixed = |size: usize| if len == size { Ok(()) } else { Err(len_err) };
        Ok(match ty {
            InstructionType::GotoTable => {
                fixed(8)?;
                Instruction::GotoTable(b.u8()?)
            }
            InstructionType::WriteMetadata => {
                fixed(24)?;
                b.skip(4)?;
                Instruction::WriteMetadata {
                    metadata: b.u64()?,
                    mask: b.u64()?,
                }
            }
            InstructionType::WriteActions => {
                b.skip(4)?;
                Instruction::WriteActions(decode_actions(b.rest())?)
            }
            InstructionType::ApplyActions => {
                b.skip(4)?;
                Instruction::ApplyActions(decode_actions(b.rest())?)
            }
            InstructionType::ClearActions => {
                fixed(8)?;
                Instruction::ClearActions
            }
            InstructionType::Meter => {
                fixed(8)?;
                Instruction::Meter(b.u32()?)
            }
            InstructionType::Experimenter => Instruction::Experimenter {
                experimenter: b.u32()?,
                data: b.rest().to_vec(),
            },
        })
    }
}

/// Encodes a list of instructions back to back.
pub fn encode_instructions(insts: &[Instruction], out: &mut Vec<u8>) {
    for i in insts {
        i.encode(out);
    }
}

/// Decodes a list of instructions that fills `buf` exactly.
pub fn decode_instructions(buf: &[u8]) -> Result<Vec<Instruction>, DecodeError> {
    let mut r = Reader::new(
        buf,
        DecodeError::BadInstructionLength {
            inst_type: 0,
            length: 0,
        },
    );
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Instruction::decode(&mut r)?);
    }
    Ok(out)
}
