//! The pipeline's own representation of flow entries: matches as masked key words (what
//! the classifier compares), actions with packet-crate fields, instructions with the
//! write-actions already folded into an [`ActionSet`] delta. The OpenFlow wire types are
//! converted into these once, in the `ofproto` crate, and never looked at on the fast path.

use std::sync::Arc;
use std::time::Duration;

use crate::flags::flag_set;
use crate::group::OFPG_ANY;
use crate::ports::OFPP_ANY;
use arrayvec::ArrayVec;
use packet::{Field, FlowKey, FLOW_KEY_WORDS};

flag_set! {
    /// A flow entry's flags, with `ofp_flow_mod_flags`' values.
    pub struct FlowFlags: u16 {
        const SEND_FLOW_REM = 1 << 0;
        const CHECK_OVERLAP = 1 << 1;
        const RESET_COUNTS = 1 << 2;
        const NO_PKT_COUNTS = 1 << 3;
        const NO_BYT_COUNTS = 1 << 4;
    }
}

/// Key words, the unit the classifier hashes and compares.
pub type Words = [u64; FLOW_KEY_WORDS];

/// One field of a match as the controller gave it, kept so dumps and FLOW_REMOVED can
/// give back the fields that were asked for (several fields share key bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatchField {
    pub field: Field,
    pub value: u128,
    /// `None`: exact.
    pub mask: Option<u128>,
}

/// A match: `key & mask == value` on every word. The value is stored already masked, so
/// two matches are the same exactly when their words are.
#[derive(Clone, Debug)]
pub struct Match {
    pub value: Words,
    pub mask: Words,
    fields: Box<[MatchField]>,
    /// Bit `w` set: `mask[w] != 0`. A usual match reads two or three of the 32 words: the
    /// control plane's per-entry work (the strict index's hash and compares, the extract
    /// plan, the compile's mask comparisons) visits those words only.
    used: u32,
}

impl PartialEq for Match {
    /// Words outside `used` are zero in both value and mask (the value is masked), so
    /// equal `used` and equal used words are equal matches.
    fn eq(&self, other: &Self) -> bool {
        if self.used != other.used {
            return false;
        }
        let mut u = self.used;
        while u != 0 {
            let w = u.trailing_zeros() as usize;
            u &= u - 1;
            if self.mask[w] != other.mask[w] || self.value[w] != other.value[w] {
                return false;
            }
        }
        true
    }
}
impl Eq for Match {}

impl std::hash::Hash for Match {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
        self.mask.hash(state);
    }
}

impl Default for Match {
    fn default() -> Self {
        Match::any()
    }
}

impl Match {
    /// Matches every packet (the table-miss match).
    pub fn any() -> Match {
        Match {
            value: [0; FLOW_KEY_WORDS],
            mask: [0; FLOW_KEY_WORDS],
            fields: Box::new([]),
            used: 0,
        }
    }

    /// Builds a match from fields without checking prerequisites (tests and the profile
    /// compiler; OpenFlow input goes through `ofproto::convert_match`). Values and
    /// masks are cut to the field width.
    pub fn from_fields(fields: &[MatchField]) -> Match {
        Self::from_field_list(fields.into())
    }

    /// [`Match::from_fields`] keeping `fields` as they are (no copy of the list).
    pub fn from_field_list(fields: Box<[MatchField]>) -> Match {
        let mut value = FlowKey::default();
        let mut mask = FlowKey::default();
        // The words some field touches; those left zero by a zero mask are cleared below.
        let mut used = 0u32;
        // Each field ORed into its own bits only (a whole-key OR per field was 800
        // instructions of a bundled flow-mod's conversion).
        for f in &fields {
            let m = f.mask.unwrap_or(u128::MAX) & f.field.value_mask();
            let p = f.field.pos();
            mask.set_pos(p, mask.get_pos(p) | m);
            value.set_pos(p, value.get_pos(p) | (f.value & m));
            used |= 1 << (p.word as u32 % 32);
            if p.bits > 64 {
                used |= 1 << ((p.word as u32 + 1) % 32);
            }
        }
        let mut u = used;
        while u != 0 {
            let w = u.trailing_zeros();
            u &= u - 1;
            if mask.words[w as usize] == 0 {
                used &= !(1 << w);
            }
        }
        debug_assert_eq!(used, used_words(&mask.words));
        // Each value was cut to its own mask: the value is within the mask.
        debug_assert!(value
            .words
            .iter()
            .zip(&mask.words)
            .all(|(v, m)| v & !m == 0));
        Match {
            value: value.words,
            mask: mask.words,
            fields,
            used,
        }
    }

    /// The same mask as `other` (compares the words the mask reads only).
    #[inline]
    pub fn same_mask(&self, other: &Match) -> bool {
        if self.used != other.used {
            return false;
        }
        let mut u = self.used;
        while u != 0 {
            let w = u.trailing_zeros() as usize;
            u &= u - 1;
            if self.mask[w] != other.mask[w] {
                return false;
            }
        }
        true
    }

    /// Bit `w` set: the mask reads key word `w` (`mask[w] != 0`).
    #[inline]
    pub fn used_words(&self) -> u32 {
        self.used
    }

    /// Shorthand: exact fields.
    pub fn exact(fields: &[(Field, u128)]) -> Match {
        let f: Vec<MatchField> = fields
            .iter()
            .map(|&(field, value)| MatchField {
                field,
                value,
                mask: None,
            })
            .collect();
        Match::from_fields(&f)
    }

    pub fn fields(&self) -> &[MatchField] {
        &self.fields
    }

    /// True when the match wildcards everything.
    pub fn is_any(&self) -> bool {
        self.used == 0
    }

    #[inline]
    pub fn matches(&self, key: &Words) -> bool {
        let mut diff = 0u64;
        for ((k, m), v) in key.iter().zip(&self.mask).zip(&self.value) {
            diff |= (k & m) ^ v;
        }
        diff == 0
    }

    /// Non-strict flow-mod semantics: every packet `other` matches, `self` matches too
    /// (`self` is at most as specific as `other` and agrees where it looks).
    pub fn covers(&self, other: &Match) -> bool {
        (0..FLOW_KEY_WORDS).all(|i| {
            self.mask[i] & !other.mask[i] == 0
                && (other.value[i] ^ self.value[i]) & self.mask[i] == 0
        })
    }

    /// Some packet matches both (CHECK_OVERLAP).
    pub fn overlaps(&self, other: &Match) -> bool {
        (0..FLOW_KEY_WORDS)
            .all(|i| (self.value[i] ^ other.value[i]) & self.mask[i] & other.mask[i] == 0)
    }

    /// The exact value this match requires of `field`, if it matches it exactly.
    pub fn exact_value(&self, field: Field) -> Option<u128> {
        let m = FlowKey {
            words: self.mask,
            ..Default::default()
        };
        let full = field.value_mask();
        if m.get(field) != full {
            return None;
        }
        let v = FlowKey {
            words: self.value,
            ..Default::default()
        };
        Some(v.get(field))
    }
}

// [`Match::used_words`] has a bit per key word.
const _: () = assert!(FLOW_KEY_WORDS == 32);

/// Bit `w` set: `mask[w] != 0`.
pub fn used_words(mask: &Words) -> u32 {
    mask.iter()
        .enumerate()
        .fold(0, |u, (w, &m)| u | (u32::from(m != 0) << w))
}

/// The wire form a masked write came in as, so dumps give it back the same way
/// (Open vSwitch prints `load:` for one and `set_field:V/M->` for the other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadForm {
    /// NXAST_REG_LOAD (`load:V->F[a..b]`): the mask is one contiguous run of bits.
    RegLoad,
    /// NXAST_REG_LOAD2 (`set_field:V/M->F`).
    RegLoad2,
}

/// Where `ct` takes its zone from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtZone {
    Imm(u16),
    /// 16 bits of a key field from bit `ofs` (`zone=NXM_NX_REG6[0..15]`).
    Field {
        field: Field,
        ofs: u16,
    },
}

/// `nat` inside `ct`: the wire flags (`NX_NAT_F_*`: 1 src, 2 dst, 4 persistent, 8 hash,
/// 16 random) and the range as written; addresses are IPv4 in the low 32 bits unless `v6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtNat {
    pub flags: u16,
    pub v6: bool,
    pub addr_min: Option<u128>,
    pub addr_max: Option<u128>,
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
}

/// One nested action of `ct`, in the order written (kept for dumps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtNested {
    /// `set_field`/`load` of `ct_mark` or `ct_label`; `form` `None`: OFPAT_SET_FIELD.
    Set {
        field: Field,
        value: u128,
        mask: u128,
        form: Option<LoadForm>,
    },
    Nat(CtNat),
}

/// Open vSwitch `ct(...)`: tracks the packet in the worker's connection tracker, writes the
/// `ct_*` key fields, commits with `commit`, rewrites with `nat`, and with `table` runs a
/// walk from that table on the result (Open vSwitch's recirculation), bounded like resubmit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtAction {
    pub commit: bool,
    pub force: bool,
    pub zone: CtZone,
    pub table: Option<u8>,
    pub alg: u16,
    pub nested: Vec<CtNested>,
    /// From `nested`: what the tracker applies on commit.
    pub set_mark: Option<(u32, u32)>,
    pub set_label: Option<(u128, u128)>,
    pub nat: Option<CtNat>,
    /// What the tracker is asked (from the fields above), made once here rather than per
    /// packet; its `zone` is the immediate zone (0 for a zone taken from a field, which
    /// the action sets per packet).
    pub track: conntrack::TrackOptions,
}

impl CtAction {
    /// Fills `set_mark`, `set_label` and `nat` from `nested`.
    pub fn new(
        commit: bool,
        force: bool,
        zone: CtZone,
        table: Option<u8>,
        alg: u16,
        nested: Vec<CtNested>,
    ) -> CtAction {
        let (mut set_mark, mut set_label, mut nat) =
            (None::<(u32, u32)>, None::<(u128, u128)>, None);
        for n in &nested {
            match *n {
                CtNested::Set {
                    field: Field::CtMark,
                    value,
                    mask,
                    ..
                } => {
                    let (v0, m0) = set_mark.unwrap_or((0, 0));
                    let (v, m) = (value as u32, mask as u32);
                    set_mark = Some(((v0 & !m) | (v & m), m0 | m));
                }
                CtNested::Set { value, mask, .. } => {
                    let (v0, m0) = set_label.unwrap_or((0, 0));
                    set_label = Some(((v0 & !mask) | (value & mask), m0 | mask));
                }
                CtNested::Nat(n) => nat = Some(n),
            }
        }
        let track = conntrack::TrackOptions {
            zone: match zone {
                CtZone::Imm(z) => z,
                CtZone::Field { .. } => 0,
            },
            commit,
            nat: nat.is_some(),
            nat_range: nat.and_then(crate::exec::nat_range),
            set_mark,
            set_label,
        };
        CtAction {
            commit,
            force,
            zone,
            table,
            alg,
            nested,
            set_mark,
            set_label,
            nat,
            track,
        }
    }
}

/// An action as the pipeline executes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `max_len` matters only for CONTROLLER.
    Output {
        port: u32,
        max_len: u16,
    },
    Group(u32),
    SetQueue(u32),
    SetField {
        field: Field,
        value: u128,
    },
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    PushPbb(u16),
    PopPbb,
    SetMplsTtl(u8),
    DecMplsTtl,
    SetNwTtl(u8),
    DecNwTtl,
    CopyTtlOut,
    CopyTtlIn,
    /// Open vSwitch `resubmit([port],[table])`: looks `table` up now (`None`: the table
    /// the acting entry is in), with in_port replaced by `in_port` for the lookup and the
    /// matched entry's instructions, runs what matches, then carries on with the next action.
    /// Unlike goto it may go back to an earlier table; the walk bounds it
    /// ([`crate::exec::MAX_RESUBMIT_DEPTH`], [`crate::exec::MAX_RESUBMITS`]).
    Resubmit {
        in_port: Option<u32>,
        table: Option<u8>,
    },
    /// Sets the bits of `field` under `mask` to `value`'s (Open vSwitch `load`, masked
    /// `set_field`); registers and metadata live in the key, header fields in the frame.
    SetFieldMasked {
        field: Field,
        value: u128,
        mask: u128,
        form: LoadForm,
    },
    /// Open vSwitch `move`: copies `n_bits` bits of `src` from bit `src_ofs` into `dst` at
    /// bit `dst_ofs`.
    Move {
        src: Field,
        src_ofs: u16,
        dst: Field,
        dst_ofs: u16,
        n_bits: u16,
    },
    /// Open vSwitch `note`: does nothing; kept for dumps.
    Note(Arc<[u8]>),
    /// Open vSwitch `ct_clear`: clears the packet's connection-tracking fields.
    CtClear,
    /// Open vSwitch `ct(...)`.
    Ct(Arc<CtAction>),
    /// Open vSwitch `conjunction(id,k/n)`: never run; an entry whose actions are these
    /// (and notes) is a clause of conjunctive match `id` (dimension `clause + 1` of
    /// `n_clauses`), which the table's lookup combines ([`crate::conjunction`]).
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
}

impl Action {
    /// Open vSwitch extensions (they cannot be part of an action set).
    pub fn is_extension(&self) -> bool {
        matches!(
            self,
            Action::Resubmit { .. }
                | Action::SetFieldMasked { .. }
                | Action::Move { .. }
                | Action::Note(_)
                | Action::CtClear
                | Action::Ct(_)
                | Action::Conjunction { .. }
        )
    }

    pub fn output(port: u32) -> Action {
        Action::Output {
            port,
            max_len: crate::ports::OFPCML_NO_BUFFER,
        }
    }
}

/// The write-actions of an entry, and the action set a packet carries: at most one action
/// of each type (one set-field per field), executed in the spec's fixed order by
/// [`ActionSet::ordered`]. Fixed-size so a packet's set lives on the stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionSet {
    pub copy_ttl_in: bool,
    pub pop_vlan: bool,
    pub pop_pbb: bool,
    pub pop_mpls: Option<u16>,
    pub push_mpls: Option<u16>,
    pub push_pbb: Option<u16>,
    pub push_vlan: Option<u16>,
    pub copy_ttl_out: bool,
    pub dec_mpls_ttl: bool,
    pub dec_nw_ttl: bool,
    pub set_mpls_ttl: Option<u8>,
    pub set_nw_ttl: Option<u8>,
    /// Set-fields in the order their field first entered the set.
    pub set_fields: ArrayVec<(Field, u128), 64>,
    pub set_queue: Option<u32>,
    pub group: Option<u32>,
    /// (port, max_len).
    pub output: Option<(u32, u16)>,
}

impl ActionSet {
    pub fn is_empty(&self) -> bool {
        *self == ActionSet::default()
    }

    /// Adds one action, replacing the action of the same type (spec 5.10).
    pub fn write(&mut self, a: &Action) {
        match *a {
            Action::Output { port, max_len } => self.output = Some((port, max_len)),
            Action::Group(g) => self.group = Some(g),
            Action::SetQueue(q) => self.set_queue = Some(q),
            Action::SetField { field, value } => {
                if let Some(e) = self.set_fields.iter_mut().find(|e| e.0 == field) {
                    e.1 = value;
                } else {
                    self.set_fields.push((field, value));
                }
            }
            Action::PushVlan(t) => self.push_vlan = Some(t),
            Action::PopVlan => self.pop_vlan = true,
            Action::PushMpls(t) => self.push_mpls = Some(t),
            Action::PopMpls(t) => self.pop_mpls = Some(t),
            Action::PushPbb(t) => self.push_pbb = Some(t),
            Action::PopPbb => self.pop_pbb = true,
            Action::SetMplsTtl(t) => self.set_mpls_ttl = Some(t),
            Action::DecMplsTtl => self.dec_mpls_ttl = true,
            Action::SetNwTtl(t) => self.set_nw_ttl = Some(t),
            Action::DecNwTtl => self.dec_nw_ttl = true,
            Action::CopyTtlOut => self.copy_ttl_out = true,
            Action::CopyTtlIn => self.copy_ttl_in = true,
            // Refused in write-actions by the conversion (ExtensionInActionSet).
            Action::Resubmit { .. }
            | Action::SetFieldMasked { .. }
            | Action::Move { .. }
            | Action::Note(_)
            | Action::CtClear
            | Action::Ct(_)
            | Action::Conjunction { .. } => {}
        }
    }

    /// Merges an entry's write-actions into the packet's set.
    #[inline]
    pub fn merge(&mut self, w: &ActionSet) {
        macro_rules! take {
            ($($f:ident),*) => { $( if w.$f.is_some() { self.$f = w.$f; } )* };
        }
        macro_rules! flag {
            ($($f:ident),*) => { $( self.$f |= w.$f; )* };
        }
        flag!(
            copy_ttl_in,
            pop_vlan,
            pop_pbb,
            copy_ttl_out,
            dec_mpls_ttl,
            dec_nw_ttl
        );
        take!(
            pop_mpls,
            push_mpls,
            push_pbb,
            push_vlan,
            set_mpls_ttl,
            set_nw_ttl,
            set_queue,
            group,
            output
        );
        for &(field, value) in &w.set_fields {
            if let Some(e) = self.set_fields.iter_mut().find(|e| e.0 == field) {
                e.1 = value;
            } else {
                self.set_fields.push((field, value));
            }
        }
    }

    /// The set as actions in execution order (spec 5.10): copy TTL in, pops, push MPLS,
    /// push PBB, push VLAN, copy TTL out, decrement TTL, set (fields and TTLs), QoS, group,
    /// and output only when there is no group.
    pub fn ordered(&self) -> impl Iterator<Item = Action> + '_ {
        let head = [
            self.copy_ttl_in.then_some(Action::CopyTtlIn),
            self.pop_vlan.then_some(Action::PopVlan),
            self.pop_pbb.then_some(Action::PopPbb),
            self.pop_mpls.map(Action::PopMpls),
            self.push_mpls.map(Action::PushMpls),
            self.push_pbb.map(Action::PushPbb),
            self.push_vlan.map(Action::PushVlan),
            self.copy_ttl_out.then_some(Action::CopyTtlOut),
            self.dec_mpls_ttl.then_some(Action::DecMplsTtl),
            self.dec_nw_ttl.then_some(Action::DecNwTtl),
            self.set_mpls_ttl.map(Action::SetMplsTtl),
            self.set_nw_ttl.map(Action::SetNwTtl),
        ];
        let tail = [
            self.set_queue.map(Action::SetQueue),
            self.group.map(Action::Group),
            if self.group.is_none() {
                self.output
                    .map(|(port, max_len)| Action::Output { port, max_len })
            } else {
                None
            },
        ];
        head.into_iter()
            .flatten()
            .chain(
                self.set_fields
                    .iter()
                    .map(|&(field, value)| Action::SetField { field, value }),
            )
            .chain(tail.into_iter().flatten())
    }
}

/// Write-actions: the list as given (for dumps and out_port filters) and the set it
/// makes (what packets merge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteActions {
    pub list: Box<[Action]>,
    pub set: ActionSet,
}

/// The instructions of an entry, in the order the spec executes them: meter,
/// apply-actions, clear-actions, write-actions, write-metadata, goto-table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instructions {
    pub meter: Option<u32>,
    pub apply: Option<Box<[Action]>>,
    pub clear: bool,
    /// Boxed: an action set holds room for 64 set-fields (2 KiB), and most entries write
    /// none; inline, every entry's instructions took 2.2 KiB (220 MB for 100k flows).
    pub write: Option<Box<WriteActions>>,
    /// (value, mask).
    pub metadata: Option<(u64, u64)>,
    pub goto: Option<u8>,
}

impl Instructions {
    /// Apply-actions only (the common "actions=..." of ovs-ofctl).
    pub fn apply(actions: Vec<Action>) -> Instructions {
        Instructions {
            apply: Some(actions.into()),
            ..Default::default()
        }
    }

    fn actions(&self) -> impl Iterator<Item = &Action> {
        self.apply
            .iter()
            .flat_map(|a| a.iter())
            .chain(self.write.iter().flat_map(|w| w.list.iter()))
    }

    /// The out_port filter of flow-mod deletes and stats: an output action to `port`.
    pub fn outputs_to(&self, port: u32) -> bool {
        port == OFPP_ANY
            || self
                .actions()
                .any(|a| matches!(a, Action::Output { port: p, .. } if *p == port))
    }

    /// The out_group filter: a group action to `group`.
    pub fn uses_group(&self, group: u32) -> bool {
        group == OFPG_ANY
            || self
                .actions()
                .any(|a| matches!(a, Action::Group(g) if *g == group))
    }

    pub fn uses_meter(&self, meter: u32) -> bool {
        self.meter == Some(meter)
    }
}

/// What the flow-mod said about an entry, plus its counters carried across versions.
#[derive(Clone, Debug)]
pub struct FlowEntry {
    /// Identity across versions and the tie-break between overlapping entries of one
    /// priority: a larger uid was added later and wins. A replacing ADD takes a new uid.
    pub uid: u64,
    pub priority: u16,
    pub match_: Match,
    pub instructions: Arc<Instructions>,
    pub cookie: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: FlowFlags,
    /// When it was added (control-plane clock).
    pub created: Duration,
    /// Packets and bytes counted against compiled versions that are gone.
    pub(crate) base_packets: u64,
    pub(crate) base_bytes: u64,
    /// Last time the control plane saw the packet count move (idle timeout).
    pub(crate) last_used: Duration,
    pub(crate) last_seen_packets: u64,
    /// Where the entry sits in the table's current compiled version: the serial of its
    /// level (0: not compiled yet) and its slot there.
    pub(crate) level: u64,
    pub(crate) slot: u32,
}

impl FlowEntry {
    /// Total order used by every classifier: priority first, then the later addition.
    #[inline]
    pub fn rank(&self) -> u64 {
        rank(self.priority, self.uid)
    }

    /// A table-miss entry: priority 0 and wildcard-all. Its CONTROLLER output reports
    /// reason NO_MATCH.
    pub fn is_table_miss(&self) -> bool {
        self.priority == 0 && self.match_.is_any()
    }
}

/// Priority in the top 16 bits, uid below: unique, so "best" is a plain max.
#[inline]
pub fn rank(priority: u16, uid: u64) -> u64 {
    (u64::from(priority) << 48) | (uid & ((1 << 48) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A match of up to four fields (any of them, 128-bit ones included), each exact,
    /// masked, or masked with 0 (a field given that reads no bit).
    fn a_match() -> impl Strategy<Value = Match> {
        proptest::collection::vec(
            (
                0..Field::ALL.len(),
                any::<u128>(),
                prop_oneof![Just(None), Just(Some(0u128)), any::<u128>().prop_map(Some)],
            ),
            0..4,
        )
        .prop_map(|fs| {
            let fields: Vec<MatchField> = fs
                .into_iter()
                .map(|(i, value, mask)| MatchField {
                    field: Field::ALL[i],
                    value,
                    mask,
                })
                .collect();
            Match::from_fields(&fields)
        })
    }

    proptest! {
        /// The words a match knows it reads are those its mask reads, and comparing
        /// those only (equality, same mask) answers as comparing all the words does.
        #[test]
        fn used_words_stand_for_all_words(a in a_match(), b in a_match(), how in 0u8..3, flip in any::<u128>()) {
            // Another match, the same one, or the same fields with other values.
            let b = match how {
                0 => b,
                1 => Match::from_fields(a.fields()),
                _ => {
                    let f: Vec<MatchField> = a
                        .fields()
                        .iter()
                        .map(|f| MatchField { value: f.value ^ flip, ..*f })
                        .collect();
                    Match::from_fields(&f)
                }
            };
            prop_assert_eq!(a.used_words(), used_words(&a.mask));
            prop_assert_eq!(b.used_words(), used_words(&b.mask));
            prop_assert_eq!(a == b, a.value == b.value && a.mask == b.mask);
            prop_assert_eq!(a.same_mask(&b), a.mask == b.mask);
            prop_assert_eq!(a.is_any(), a.mask.iter().all(|&m| m == 0));
        }
    }
}
