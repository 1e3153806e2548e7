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
use packet::{Field, FLOW_KEY_WORDS};
use smallvec::SmallVec;

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

/// The (value, mask) words a match reads, in word order. Pipeline B's matches read two
/// or three of the 32 key words: inline, a match is 80 bytes instead of the 530 two whole
/// [`Words`] took (and a bundle held two matches per flow until the commit).
type UsedWords = SmallVec<[(u64, u64); 3]>;

/// A match: `key & mask == value` on every word. The value is stored already masked, and
/// only the words the mask reads (`used`) are stored: two matches are the same exactly
/// when their `used` and stored words are.
#[derive(Clone, Debug)]
pub struct Match {
    /// `(value, mask)` of each word of `used`, lowest word first.
    words: UsedWords,
    fields: Box<[MatchField]>,
    /// Bit `w` set: mask word `w` != 0. A usual match reads two or three of the 32 words:
    /// the control plane's per-entry work (the strict index's hash and compares, the
    /// extract plan, the compile's mask comparisons) visits those words only.
    used: u32,
}

impl PartialEq for Match {
    fn eq(&self, other: &Self) -> bool {
        self.used == other.used && self.words == other.words
    }
}
impl Eq for Match {}

impl std::hash::Hash for Match {
    /// From the stored words only, which equal matches have equal.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.used.hash(state);
        self.words.as_slice().hash(state);
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
            words: SmallVec::new(),
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
        let mut value = [0u64; FLOW_KEY_WORDS];
        let mut mask = [0u64; FLOW_KEY_WORDS];
        // The words some field touches; those left zero by a zero mask are dropped below.
        let mut used = 0u32;
        // Each field ORed into its own bits only (a whole-key OR per field was 800
        // instructions of a bundled flow-mod's conversion).
        for f in &fields {
            let m = f.mask.unwrap_or(u128::MAX) & f.field.value_mask();
            let p = f.field.pos();
            let w = usize::from(p.word);
            if p.bits > 64 {
                let v = f.value & m;
                mask[w] |= (m >> 64) as u64;
                mask[w + 1] |= m as u64;
                value[w] |= (v >> 64) as u64;
                value[w + 1] |= v as u64;
                used |= 3 << (w as u32 % 32);
            } else {
                let pm = low_mask(p.bits) << p.shift;
                mask[w] |= ((m as u64) << p.shift) & pm;
                value[w] |= (((f.value & m) as u64) << p.shift) & pm;
                used |= 1 << (w as u32 % 32);
            }
        }
        let mut words = UsedWords::new();
        let mut u = used;
        while u != 0 {
            let w = u.trailing_zeros();
            u &= u - 1;
            let m = mask[w as usize];
            if m == 0 {
                used &= !(1 << w);
            } else {
                // Each value was cut to its own mask: the value is within the mask.
                debug_assert_eq!(value[w as usize] & !m, 0);
                words.push((value[w as usize], m));
            }
        }
        debug_assert_eq!(used, used_words(&mask));
        Match {
            words,
            fields,
            used,
        }
    }

    /// A match of whole key words with no field list (classifier tests and benchmarks,
    /// whose rules are words, not fields). The value is cut to the mask.
    pub fn from_words(value: &Words, mask: &Words) -> Match {
        let used = used_words(mask);
        let mut words = UsedWords::new();
        for_each_bit(used, |w| words.push((value[w] & mask[w], mask[w])));
        Match {
            words,
            fields: Box::new([]),
            used,
        }
    }

    /// The same mask as `other` (compares the words the mask reads only).
    #[inline]
    pub fn same_mask(&self, other: &Match) -> bool {
        self.used == other.used && self.words.iter().zip(&other.words).all(|(a, b)| a.1 == b.1)
    }

    /// Bit `w` set: the mask reads key word `w` (`mask_word(w) != 0`).
    #[inline]
    pub fn used_words(&self) -> u32 {
        self.used
    }

    /// Where word `w` is stored, if the mask reads it.
    #[inline]
    fn slot(&self, w: usize) -> Option<usize> {
        let bit = 1u32.checked_shl(w as u32)?;
        (self.used & bit != 0).then(|| (self.used & (bit - 1)).count_ones() as usize)
    }

    /// Key word `w` of the (masked) value; 0 for a word the mask does not read.
    #[inline]
    pub fn value_word(&self, w: usize) -> u64 {
        self.slot(w).map_or(0, |i| self.words[i].0)
    }

    /// Key word `w` of the mask; 0 for a word it does not read.
    #[inline]
    pub fn mask_word(&self, w: usize) -> u64 {
        self.slot(w).map_or(0, |i| self.words[i].1)
    }

    /// `(w, value word, mask word)` of each word the mask reads, lowest first.
    #[inline]
    pub fn iter_words(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        let mut u = self.used;
        self.words.iter().map(move |&(v, m)| {
            let w = u.trailing_zeros() as usize;
            u &= u - 1;
            (w, v, m)
        })
    }

    /// The whole value as key words (zero where the mask does not read).
    #[cold]
    pub fn value_words(&self) -> Words {
        let mut out = [0; FLOW_KEY_WORDS];
        for (w, v, _) in self.iter_words() {
            out[w] = v;
        }
        out
    }

    /// The whole mask as key words.
    #[cold]
    pub fn mask_words(&self) -> Words {
        let mut out = [0; FLOW_KEY_WORDS];
        for (w, _, m) in self.iter_words() {
            out[w] = m;
        }
        out
    }

    /// `(value_words(), mask_words())`, for callers that need a whole key.
    #[cold]
    pub fn to_words(&self) -> (Words, Words) {
        (self.value_words(), self.mask_words())
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
        for (w, v, m) in self.iter_words() {
            diff |= (key[w] & m) ^ v;
        }
        diff == 0
    }

    /// Non-strict flow-mod semantics: every packet `other` matches, `self` matches too
    /// (`self` is at most as specific as `other` and agrees where it looks).
    pub fn covers(&self, other: &Match) -> bool {
        // A word `self` reads and `other` does not: `self` is more specific there.
        self.used & !other.used == 0
            && self.iter_words().all(|(w, v, m)| {
                let (ov, om) = other.words[other.slot(w).expect("within other.used")];
                m & !om == 0 && (ov ^ v) & m == 0
            })
    }

    /// Some packet matches both (CHECK_OVERLAP).
    pub fn overlaps(&self, other: &Match) -> bool {
        self.iter_words().all(|(w, v, m)| match other.slot(w) {
            Some(i) => {
                let (ov, om) = other.words[i];
                (v ^ ov) & m & om == 0
            }
            None => true,
        })
    }

    /// The exact value this match requires of `field`, if it matches it exactly.
    pub fn exact_value(&self, field: Field) -> Option<u128> {
        let p = field.pos();
        let w = usize::from(p.word);
        if p.bits > 64 {
            let m = (u128::from(self.mask_word(w)) << 64) | u128::from(self.mask_word(w + 1));
            (m == field.value_mask()).then(|| {
                (u128::from(self.value_word(w)) << 64) | u128::from(self.value_word(w + 1))
            })
        } else {
            let get = |x: u64| u128::from((x >> p.shift) & low_mask(p.bits));
            (get(self.mask_word(w)) == field.value_mask()).then(|| get(self.value_word(w)))
        }
    }
}

/// A rule's value words as the classifier builders index them (`value[w]`): a match's
/// stored words, or whole words (tests and benchmarks that build rules from words).
#[derive(Clone, Copy, Debug)]
pub enum ValueWords<'a> {
    Whole(&'a Words),
    Used(&'a Match),
}

impl std::ops::Index<usize> for ValueWords<'_> {
    type Output = u64;
    #[inline]
    fn index(&self, w: usize) -> &u64 {
        match self {
            ValueWords::Whole(x) => &x[w],
            ValueWords::Used(m) => m.slot(w).map_or(&0, |i| &m.words[i].0),
        }
    }
}

impl<'a> From<&'a Words> for ValueWords<'a> {
    fn from(x: &'a Words) -> Self {
        ValueWords::Whole(x)
    }
}

impl<'a> From<&'a Match> for ValueWords<'a> {
    fn from(m: &'a Match) -> Self {
        ValueWords::Used(m)
    }
}

/// The low `bits` bits set.
const fn low_mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Calls `f` with each set bit's index, lowest first.
#[inline]
fn for_each_bit(mut u: u32, mut f: impl FnMut(usize)) {
    while u != 0 {
        let w = u.trailing_zeros() as usize;
        u &= u - 1;
        f(w);
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
    use packet::FlowKey;
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

    /// The whole-word form a match had before it stored its used words only: every
    /// field ORed into a whole value and mask key, the value cut to the mask.
    fn whole(fields: &[MatchField]) -> (Words, Words) {
        let (mut v, mut m) = (FlowKey::default(), FlowKey::default());
        for f in fields {
            let fm = f.mask.unwrap_or(u128::MAX) & f.field.value_mask();
            let p = f.field.pos();
            m.set_pos(p, m.get_pos(p) | fm);
            v.set_pos(p, v.get_pos(p) | (f.value & fm));
        }
        (v.words, m.words)
    }

    fn hash_of(m: &Match) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(m)
    }

    proptest! {
        /// The compact match answers everything as the whole-word form does: its words,
        /// equality (and equal hashes), same mask, matches, covers, overlaps, the exact
        /// value of each field; built from random field lists, the second one unrelated,
        /// the same, the same fields with other values, or a prefix of the fields (which
        /// covers the first unless two of its fields share bits).
        #[test]
        fn compact_match_answers_as_whole_words(
            a in a_match(),
            b in a_match(),
            how in 0u8..4,
            flip in any::<u128>(),
            noise in proptest::collection::vec(any::<u64>(), FLOW_KEY_WORDS),
        ) {
            let b = match how {
                0 => b,
                1 => Match::from_fields(a.fields()),
                2 => {
                    let f: Vec<MatchField> = a
                        .fields()
                        .iter()
                        .map(|f| MatchField { value: f.value ^ flip, ..*f })
                        .collect();
                    Match::from_fields(&f)
                }
                _ => Match::from_fields(&a.fields()[..(flip as usize) % (a.fields().len() + 1)]),
            };
            let (av, am) = whole(a.fields());
            let (bv, bm) = whole(b.fields());
            prop_assert_eq!(a.to_words(), (av, am));
            prop_assert_eq!(b.to_words(), (bv, bm));
            for w in 0..FLOW_KEY_WORDS {
                prop_assert_eq!(a.value_word(w), av[w]);
                prop_assert_eq!(a.mask_word(w), am[w]);
                prop_assert_eq!(ValueWords::from(&a)[w], av[w]);
            }
            prop_assert_eq!(a.used_words(), used_words(&am));
            prop_assert_eq!(a.is_any(), am.iter().all(|&m| m == 0));
            prop_assert_eq!(a == b, av == bv && am == bm);
            if av == bv && am == bm {
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
            prop_assert_eq!(a.same_mask(&b), am == bm);
            let covers = (0..FLOW_KEY_WORDS)
                .all(|i| am[i] & !bm[i] == 0 && (bv[i] ^ av[i]) & am[i] == 0);
            prop_assert_eq!(a.covers(&b), covers);
            prop_assert_eq!(b.covers(&a), (0..FLOW_KEY_WORDS)
                .all(|i| bm[i] & !am[i] == 0 && (av[i] ^ bv[i]) & bm[i] == 0));
            let overlaps = (0..FLOW_KEY_WORDS).all(|i| (av[i] ^ bv[i]) & am[i] & bm[i] == 0);
            prop_assert_eq!(a.overlaps(&b), overlaps);
            prop_assert_eq!(b.overlaps(&a), overlaps);
            // A random key, and keys b matches (b's value, noise where b does not look).
            let random: Words = std::array::from_fn(|i| noise[i]);
            let of_b: Words = std::array::from_fn(|i| bv[i] | (noise[i] & !bm[i]));
            for k in [random, of_b, bv, av] {
                let want = (0..FLOW_KEY_WORDS).all(|i| k[i] & am[i] == av[i]);
                prop_assert_eq!(a.matches(&k), want);
            }
            prop_assert!(b.matches(&of_b));
            let (kv, km) = (FlowKey { words: av, ..Default::default() }, FlowKey { words: am, ..Default::default() });
            for f in a.fields().iter().chain(b.fields()) {
                let want = (km.get(f.field) == f.field.value_mask()).then(|| kv.get(f.field));
                prop_assert_eq!(a.exact_value(f.field), want);
            }
            prop_assert_eq!(Match::from_words(&av, &am), a.clone());
        }
    }
}
