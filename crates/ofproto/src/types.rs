//! The pipeline's own commands, kinds and bit sets, to and from the wire's. Bit sets keep
//! every bit (known or not) and reserved numbers are the same integers, so nothing is lost
//! either way; the tests at the bottom check that the values agree.

use openflow::consts::{FlowModFlags, MeterFlags as OfMeterFlags, PortConfig as OfPortConfig};
use openflow::error::BadMatchCode;
use openflow::messages::{
    FlowModCommand as OfFlowModCommand, GroupModCommand as OfGroupModCommand,
    GroupType as OfGroupType, MeterModCommand as OfMeterModCommand,
    PacketInReason as OfPacketInReason,
};
use pipeline::{
    FlowFlags, FlowModCommand, GroupModCommand, GroupType, MatchFieldError, MeterFlags,
    MeterModCommand, PacketInReason, PortConfig,
};

pub fn flow_mod_command(c: OfFlowModCommand) -> FlowModCommand {
    match c {
        OfFlowModCommand::Add => FlowModCommand::Add,
        OfFlowModCommand::Modify => FlowModCommand::Modify,
        OfFlowModCommand::ModifyStrict => FlowModCommand::ModifyStrict,
        OfFlowModCommand::Delete => FlowModCommand::Delete,
        OfFlowModCommand::DeleteStrict => FlowModCommand::DeleteStrict,
    }
}

pub fn group_mod_command(c: OfGroupModCommand) -> GroupModCommand {
    match c {
        OfGroupModCommand::Add => GroupModCommand::Add,
        OfGroupModCommand::Modify => GroupModCommand::Modify,
        OfGroupModCommand::Delete => GroupModCommand::Delete,
    }
}

pub fn meter_mod_command(c: OfMeterModCommand) -> MeterModCommand {
    match c {
        OfMeterModCommand::Add => MeterModCommand::Add,
        OfMeterModCommand::Modify => MeterModCommand::Modify,
        OfMeterModCommand::Delete => MeterModCommand::Delete,
    }
}

pub fn group_type(t: OfGroupType) -> GroupType {
    match t {
        OfGroupType::All => GroupType::All,
        OfGroupType::Select => GroupType::Select,
        OfGroupType::Indirect => GroupType::Indirect,
        OfGroupType::FastFailover => GroupType::FastFailover,
    }
}

pub fn group_type_to_of(t: GroupType) -> OfGroupType {
    match t {
        GroupType::All => OfGroupType::All,
        GroupType::Select => OfGroupType::Select,
        GroupType::Indirect => OfGroupType::Indirect,
        GroupType::FastFailover => OfGroupType::FastFailover,
    }
}

pub fn packet_in_reason_to_of(r: PacketInReason) -> OfPacketInReason {
    match r {
        PacketInReason::NoMatch => OfPacketInReason::NoMatch,
        PacketInReason::Action => OfPacketInReason::Action,
        PacketInReason::InvalidTtl => OfPacketInReason::InvalidTtl,
    }
}

pub fn flow_flags(f: FlowModFlags) -> FlowFlags {
    FlowFlags(f.bits())
}

pub fn flow_flags_to_of(f: FlowFlags) -> FlowModFlags {
    FlowModFlags(f.bits())
}

pub fn meter_flags(f: OfMeterFlags) -> MeterFlags {
    MeterFlags(f.bits())
}

pub fn meter_flags_to_of(f: MeterFlags) -> OfMeterFlags {
    OfMeterFlags(f.bits())
}

pub fn port_config(c: OfPortConfig) -> PortConfig {
    PortConfig(c.bits())
}

pub fn port_config_to_of(c: PortConfig) -> OfPortConfig {
    OfPortConfig(c.bits())
}

/// `BasicOxm::validate`'s refusals (it returns no other code).
pub(crate) fn match_field_error(c: BadMatchCode) -> MatchFieldError {
    match c {
        BadMatchCode::BadMask => MatchFieldError::BadMask,
        BadMatchCode::BadWildcards => MatchFieldError::BadWildcards,
        _ => MatchFieldError::BadValue,
    }
}

pub(crate) fn match_field_code(e: MatchFieldError) -> BadMatchCode {
    match e {
        MatchFieldError::BadMask => BadMatchCode::BadMask,
        MatchFieldError::BadValue => BadMatchCode::BadValue,
        MatchFieldError::BadWildcards => BadMatchCode::BadWildcards,
    }
}

// The pipeline's reserved numbers and bits are the wire's.
const _: () = {
    use openflow::consts as of;
    use pipeline::{group, meter, pipeline as pl, ports};
    assert!(ports::OFPP_MAX == of::OFPP_MAX);
    assert!(ports::OFPP_IN_PORT == of::OFPP_IN_PORT);
    assert!(ports::OFPP_TABLE == of::OFPP_TABLE);
    assert!(ports::OFPP_NORMAL == of::OFPP_NORMAL);
    assert!(ports::OFPP_FLOOD == of::OFPP_FLOOD);
    assert!(ports::OFPP_ALL == of::OFPP_ALL);
    assert!(ports::OFPP_CONTROLLER == of::OFPP_CONTROLLER);
    assert!(ports::OFPP_LOCAL == of::OFPP_LOCAL);
    assert!(ports::OFPP_ANY == of::OFPP_ANY);
    assert!(ports::OFPCML_NO_BUFFER == of::OFPCML_NO_BUFFER);
    assert!(group::OFPG_MAX == of::OFPG_MAX);
    assert!(group::OFPG_ALL == of::OFPG_ALL);
    assert!(group::OFPG_ANY == of::OFPG_ANY);
    assert!(meter::OFPM_MAX == of::OFPM_MAX);
    assert!(meter::OFPM_ALL == of::OFPM_ALL);
    assert!(pl::OFPTT_ALL == of::OFPTT_ALL);
    assert!(FlowFlags::known().bits() == FlowModFlags::known().bits());
    assert!(FlowFlags::SEND_FLOW_REM.bits() == FlowModFlags::SEND_FLOW_REM.bits());
    assert!(FlowFlags::CHECK_OVERLAP.bits() == FlowModFlags::CHECK_OVERLAP.bits());
    assert!(FlowFlags::RESET_COUNTS.bits() == FlowModFlags::RESET_COUNTS.bits());
    assert!(FlowFlags::NO_PKT_COUNTS.bits() == FlowModFlags::NO_PKT_COUNTS.bits());
    assert!(FlowFlags::NO_BYT_COUNTS.bits() == FlowModFlags::NO_BYT_COUNTS.bits());
    assert!(PortConfig::known().bits() == OfPortConfig::known().bits());
    assert!(PortConfig::PORT_DOWN.bits() == OfPortConfig::PORT_DOWN.bits());
    assert!(PortConfig::NO_RECV.bits() == OfPortConfig::NO_RECV.bits());
    assert!(PortConfig::NO_FWD.bits() == OfPortConfig::NO_FWD.bits());
    assert!(PortConfig::NO_PACKET_IN.bits() == OfPortConfig::NO_PACKET_IN.bits());
    assert!(MeterFlags::known().bits() == OfMeterFlags::known().bits());
    assert!(MeterFlags::KBPS.bits() == OfMeterFlags::KBPS.bits());
    assert!(MeterFlags::PKTPS.bits() == OfMeterFlags::PKTPS.bits());
    assert!(MeterFlags::BURST.bits() == OfMeterFlags::BURST.bits());
    assert!(MeterFlags::STATS.bits() == OfMeterFlags::STATS.bits());
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for &t in OfGroupType::ALL {
            assert_eq!(group_type_to_of(group_type(t)), t);
        }
        for e in [
            MatchFieldError::BadMask,
            MatchFieldError::BadValue,
            MatchFieldError::BadWildcards,
        ] {
            assert_eq!(match_field_error(match_field_code(e)), e);
        }
        for &c in OfFlowModCommand::ALL {
            assert_eq!(format!("{:?}", flow_mod_command(c)), format!("{c:?}"));
        }
        for &c in OfGroupModCommand::ALL {
            assert_eq!(format!("{:?}", group_mod_command(c)), format!("{c:?}"));
        }
        for &c in OfMeterModCommand::ALL {
            assert_eq!(format!("{:?}", meter_mod_command(c)), format!("{c:?}"));
        }
    }

    #[test]
    fn bit_sets_keep_every_bit() {
        assert_eq!(
            flow_flags_to_of(flow_flags(FlowModFlags(0xffff))).bits(),
            0xffff
        );
        assert_eq!(
            meter_flags_to_of(meter_flags(OfMeterFlags(0xffff))).bits(),
            0xffff
        );
        assert_eq!(
            port_config_to_of(port_config(OfPortConfig(u32::MAX))).bits(),
            u32::MAX
        );
    }
}
