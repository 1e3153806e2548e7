//! What a pipeline version needs extracted from each packet ([`packet::ExtractPlan`]),
//! compiled from its tables: the key words their entries match, and what their actions
//! read (a move's source, NORMAL's addresses) or edit (anything that rewrites headers
//! needs the parsed layers and offsets). A version extracts only that; every other word
//! of the key is never read under it, so results are exactly those of a full extraction
//! (`tests::plans_give_the_results_of_full_extraction` checks it on random tables and
//! packets).
//!
//! When unsure, a rule here says [`ExtractPlan::FULL`]: an action this module does not
//! know (a new variant) gets the whole key.

use packet::{ExtractPlan, Field, Parse, FLOW_KEY_WORDS};

use crate::flow::{Action, Instructions, Match};
use crate::ports::{OFPP_NORMAL, OFPP_TABLE};
use crate::table::MissPolicy;

/// Parsing as far as L2, nothing else.
const L2: ExtractPlan = ExtractPlan::parsing(Parse::L2, false, false);

/// Parsing everything, registers and conntrack words left alone.
const HEADERS: ExtractPlan = ExtractPlan::parsing(Parse::Full, false, false);

/// What a match's mask asks of the extraction, computed once per mask (a compile's
/// entries mostly share a few masks: [`for_entry_with`] then costs an entry its
/// instructions' reads and, for the shape that needs it, one value test).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaskPlan {
    /// What the match reads.
    reads: ExtractPlan,
    /// The mask matches eth_type and ipv4_dst exactly: an entry with this mask may match
    /// IPv4 packets to one destination only ([`for_entry_with`]).
    ipv4_dst_exact: bool,
}

/// [`MaskPlan`] of `m`'s mask (its value is not looked at).
pub(crate) fn for_mask(m: &Match) -> MaskPlan {
    let mut reads = ExtractPlan::IN_PORT;
    let mut u = m.used_words();
    while u != 0 {
        let w = u.trailing_zeros() as usize;
        u &= u - 1;
        reads = reads.union(ExtractPlan::for_word(w % FLOW_KEY_WORDS));
    }
    let exact = |f: Field| m.exact_value(f).is_some();
    MaskPlan {
        reads,
        ipv4_dst_exact: exact(Field::EthType) && exact(Field::Ipv4Dst),
    }
}

/// What an entry with match `m` needs, `mask` being [`for_mask`] of `m` and `insts`
/// [`for_instructions`] of its instructions (each computed once for the entries that
/// share it): its match's reads and its instructions', parsed in full only for the packets it can match when it
/// matches IPv4 packets to one destination exactly ([`ExtractPlan::only_for_ipv4_dst`]:
/// its instructions run only on those). A metadata-service DNAT entry then costs the
/// version's other packets no IPv4/TCP parse.
pub(crate) fn for_entry_with(mask: MaskPlan, m: &Match, insts: ExtractPlan) -> ExtractPlan {
    let p = if insts == ExtractPlan::IN_PORT {
        mask.reads
    } else {
        mask.reads.union(insts)
    };
    if !mask.ipv4_dst_exact {
        return p;
    }
    match (m.exact_value(Field::EthType), m.exact_value(Field::Ipv4Dst)) {
        (Some(0x0800), Some(dst)) => p.only_for_ipv4_dst(dst as u32),
        _ => p,
    }
}

/// What running `insts` reads or edits in the key (goto and write-metadata: nothing
/// beyond metadata, which every plan zeroes).
pub(crate) fn for_instructions(insts: &Instructions) -> ExtractPlan {
    // A meter band may remark DSCP.
    let mut p = if insts.meter.is_some() {
        HEADERS
    } else {
        ExtractPlan::IN_PORT
    };
    let apply = insts.apply.iter().flat_map(|a| a.iter());
    let write = insts.write.iter().flat_map(|w| w.list.iter());
    for a in apply.chain(write) {
        // Most actions (outputs) read nothing more: no union for them.
        let ap = for_action(a);
        if ap != ExtractPlan::IN_PORT {
            p = p.union(ap);
        }
    }
    p
}

/// Whether running `insts` can track a packet (a `ct` action among its apply or write
/// actions): a version with one hands each packet to the worker owning its connection.
pub(crate) fn tracks(insts: &Instructions) -> bool {
    let apply = insts.apply.iter().flat_map(|a| a.iter());
    let write = insts.write.iter().flat_map(|w| w.list.iter());
    apply.chain(write).any(|a| matches!(a, Action::Ct(_)))
}

/// What a table-miss policy needs.
pub(crate) fn for_miss(miss: MissPolicy) -> ExtractPlan {
    match miss {
        MissPolicy::Normal => L2,
        // A packet-in takes in_port, in_phy_port, metadata and tunnel_id from the key.
        MissPolicy::Drop | MissPolicy::Controller { .. } | MissPolicy::GotoNext => {
            ExtractPlan::IN_PORT
        }
    }
}

/// What one action reads or edits.
fn for_action(a: &Action) -> ExtractPlan {
    match *a {
        // NORMAL learns and looks up by VLAN and Ethernet addresses (and retags with
        // push/pop VLAN, which need only the L2 offsets).
        Action::Output { port, .. } if port == OFPP_NORMAL => L2,
        // Only packet-out outputs to TABLE, with a key of its own; whole to be safe.
        Action::Output { port, .. } if port == OFPP_TABLE => ExtractPlan::FULL,
        // Plain ports, IN_PORT/ALL/FLOOD (in_port), CONTROLLER (in_port, in_phy_port,
        // metadata, tunnel_id), a tunnel port (tunnel_id).
        Action::Output { .. } | Action::SetQueue(_) | Action::Note(_) => ExtractPlan::IN_PORT,
        // The tables it goes to are in the version: their needs are counted with them.
        Action::Resubmit { .. } => ExtractPlan::IN_PORT,
        // A clause reads only its entry's match (counted with the mask).
        Action::Conjunction { .. } => ExtractPlan::IN_PORT,
        // Writes the conntrack words without reading them.
        Action::CtClear => ExtractPlan::IN_PORT,
        // A register write changes only the key; a match or move that reads the register
        // asks for it to start at zero.
        Action::SetField { field, .. } | Action::SetFieldMasked { field, .. }
            if field.is_register() || field == Field::Metadata =>
        {
            ExtractPlan::IN_PORT
        }
        Action::Move { src, dst, .. } => {
            let dst = if dst.is_register() || dst == Field::Metadata {
                ExtractPlan::IN_PORT
            } else {
                HEADERS
            };
            ExtractPlan::for_field(src).union(dst)
        }
        // Header edits need the parsed layers and offsets.
        Action::SetField { .. }
        | Action::SetFieldMasked { .. }
        | Action::PushVlan(_)
        | Action::PopVlan
        | Action::PushMpls(_)
        | Action::PopMpls(_)
        | Action::PushPbb(_)
        | Action::PopPbb
        | Action::SetMplsTtl(_)
        | Action::DecMplsTtl
        | Action::SetNwTtl(_)
        | Action::DecNwTtl
        | Action::CopyTtlOut
        | Action::CopyTtlIn => HEADERS,
        // Group buckets (any action, a select hash over the headers) and the tracker
        // (headers, a zone from any field, its own words): everything.
        Action::Group(_) | Action::Ct(_) => ExtractPlan::FULL,
    }
}
