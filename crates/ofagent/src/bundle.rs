//! Per-connection bundles (the ONF extension 230 that `ovs-ofctl -O OpenFlow13 --bundle`
//! uses): open, add, close, commit, discard.
//!
//! Messages are decoded and checked by the switch when added, so most errors come back
//! at once with the offending message; an add that fails marks its bundle failed, and its
//! commit then applies nothing and answers MSG_FAILED (all or nothing also for errors found
//! before the commit). What the switch keeps of each message ([`OfSwitch::bundle_stage`]:
//! ferroflowd keeps its converted flow-mod, so a commit does not convert again) goes at
//! the commit to [`OfSwitch::bundle_commit_staged`], which applies them in order, all or none, visible to packets at once, whether or not the
//! bundle asked for ATOMIC and ORDERED. Only flow-mods are bundled (what `ovs-ofctl
//! add-flows`, `del-flows` and `replace-flows` send); anything else is MSG_UNSUP. Bundles
//! live in the connection: closing it discards them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use openflow::bundle::{
    BundleAddRef, BundleCtrl, BundleCtrlType, BundleError, BundleFailedCode, BundleFlags,
    BundleMsgRef,
};
use openflow::error::BadRequestCode;
use openflow::{ErrorCode, Message, OfpMessage, OFP_HEADER_LEN, OFP_VERSION};

use crate::{BundleLimits, OfSwitch, Staged};

/// Messages held in open bundles by every connection together: the memory all peers can
/// make the switch hold is bounded by this times the size of one decoded flow-mod.
#[derive(Debug, Default)]
pub(crate) struct BundleMessages(AtomicUsize);

#[derive(Debug)]
struct Bundle {
    /// When it was opened or last added to: idle bundles expire.
    touched: Instant,
    /// The first bytes of the message that last touched it (what an expiry error quotes).
    last_head: Vec<u8>,
    flags: BundleFlags,
    closed: bool,
    /// An add was refused: the commit must fail.
    failed: bool,
    msgs: Vec<Staged>,
    /// The first bytes of the BUNDLE_ADD that carried each message (what an error found
    /// at commit time refers to), one after the other: message `i`'s end at
    /// `head_ends[i]` (one buffer, not an allocation per message).
    heads: Vec<u8>,
    head_ends: Vec<u32>,
}

impl Bundle {
    fn new(flags: BundleFlags, raw: &[u8]) -> Bundle {
        Bundle {
            touched: Instant::now(),
            last_head: head(raw),
            flags,
            closed: false,
            failed: false,
            msgs: Vec::new(),
            heads: Vec::new(),
            head_ends: Vec::new(),
        }
    }

    /// Remembers the first bytes of `raw` as the last message that touched the bundle.
    fn touch(&mut self, raw: &[u8]) {
        self.touched = Instant::now();
        self.last_head.clear();
        self.last_head
            .extend_from_slice(&raw[..raw.len().min(openflow::error::ERROR_DATA_LEN)]);
    }

    fn push_head(&mut self, raw: &[u8]) {
        self.heads
            .extend_from_slice(&raw[..raw.len().min(openflow::error::ERROR_DATA_LEN)]);
        self.head_ends.push(self.heads.len() as u32);
    }
}

/// The first bytes of the BUNDLE_ADD of message `i` ([`Bundle::heads`]).
fn head_at<'a>(heads: &'a [u8], head_ends: &[u32], i: usize) -> Option<&'a [u8]> {
    let end = *head_ends.get(i)? as usize;
    let start = i.checked_sub(1).map_or(0, |p| head_ends[p] as usize);
    heads.get(start..end)
}

fn head(raw: &[u8]) -> Vec<u8> {
    raw[..raw.len().min(openflow::error::ERROR_DATA_LEN)].to_vec()
}

/// The bundles of one connection.
/// A bundle id spread by one multiplication, for the connection's map of open bundles.
/// Every BUNDLE_ADD looks its bundle up, and SipHash of the id was ~240 instructions of
/// the agent's ~930 a BUNDLE_ADD. The map holds at most `BundleLimits::per_connection`
/// bundles (64), so ids a peer picks to collide cost it nothing but its own lookups.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 << 8 | u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // The golden ratio's odd multiplier: the low bits pick the bucket, the high ones
        // the control byte.
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug)]
pub(crate) struct Bundles {
    open: HashMap<u32, Bundle, BuildHasherDefault<IdHasher>>,
    limits: BundleLimits,
    /// Shared by every connection of the agent.
    total: Arc<BundleMessages>,
}

/// Whatever a closing connection still holds no longer counts against the total.
impl Drop for Bundles {
    fn drop(&mut self) {
        let held: usize = self.open.values().map(|b| b.msgs.len()).sum();
        self.total.0.fetch_sub(held, Relaxed);
    }
}

impl Bundles {
    pub fn new(limits: BundleLimits, total: Arc<BundleMessages>) -> Bundles {
        Bundles {
            open: HashMap::default(),
            limits,
            total,
        }
    }

    /// Takes a bundle out, releasing its messages from the total.
    fn remove(&mut self, id: u32) -> Option<Bundle> {
        let b = self.open.remove(&id)?;
        self.total.0.fetch_sub(b.msgs.len(), Relaxed);
        Some(b)
    }

    /// Discards the bundles idle for longer than the limit and returns the
    /// BUNDLE_FAILED/TIMEOUT error for each (OpenFlow 1.4, 7.3.9.1), quoting the message
    /// that last touched it.
    pub fn expire(&mut self, now: Instant) -> Vec<OfpMessage> {
        let idle = self.limits.idle_timeout;
        let expired: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, b)| now.saturating_duration_since(b.touched) >= idle)
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.remove(id))
            .map(|b| BundleError::from(BundleFailedCode::Timeout).reply_to(&b.last_head))
            .collect()
    }

    /// When the next bundle expires, if any is open.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|b| b.touched + self.limits.idle_timeout)
            .min()
    }

    /// Handles one bundle message (`raw`: its bytes, `xid`: its xid). Returns what to send
    /// back, replies and errors, in order. `slave`: the connection may not modify state.
    pub fn handle(
        &mut self,
        sw: &dyn OfSwitch,
        xid: u32,
        raw: &[u8],
        msg: Result<BundleMsgRef<'_>, BundleError>,
        slave: bool,
    ) -> Vec<OfpMessage> {
        let mut out = Vec::new();
        let r = match msg {
            Ok(BundleMsgRef::Ctrl(c)) => self.ctrl(sw, raw, c, slave, &mut out),
            Ok(BundleMsgRef::Add(a)) => self.add(sw, xid, raw, a, slave),
            Err(e) => Err(e),
        };
        match r {
            Ok(Some(reply)) => out.push(OfpMessage::new(xid, reply.to_message())),
            Ok(None) => {}
            Err(e) => out.push(e.reply_to(raw)),
        }
        out
    }

    fn ctrl(
        &mut self,
        sw: &dyn OfSwitch,
        raw: &[u8],
        c: BundleCtrl,
        slave: bool,
        out: &mut Vec<OfpMessage>,
    ) -> Result<Option<BundleCtrl>, BundleError> {
        use BundleCtrlType as T;
        if !BundleFlags::known().contains(c.flags) {
            return Err(BundleFailedCode::BadFlags.into());
        }
        let id = c.bundle_id;
        match c.ctrl_type {
            T::OpenRequest => {
                if self.open.contains_key(&id) {
                    return Err(BundleFailedCode::BundleExist.into());
                }
                if self.open.len() >= self.limits.per_connection {
                    return Err(BundleFailedCode::OutOfBundles.into());
                }
                self.open.insert(id, Bundle::new(c.flags, raw));
            }
            T::CloseRequest => {
                let b = self.open.get_mut(&id).ok_or(BundleFailedCode::BadId)?;
                if b.closed {
                    self.remove(id);
                    return Err(BundleFailedCode::BundleClosed.into());
                }
                if b.flags != c.flags {
                    self.remove(id);
                    return Err(BundleFailedCode::BadFlags.into());
                }
                b.closed = true;
                b.touch(raw);
            }
            T::CommitRequest => {
                let b = self.remove(id).ok_or(BundleFailedCode::BadId)?;
                if b.flags != c.flags {
                    return Err(BundleFailedCode::BadFlags.into());
                }
                if slave && !b.msgs.is_empty() {
                    return Err(ErrorCode::BadRequest(BadRequestCode::IsSlave).into());
                }
                if b.failed {
                    return Err(BundleFailedCode::MsgFailed.into());
                }
                let (heads, head_ends) = (b.heads, b.head_ends);
                if let Err((i, code)) = sw.bundle_commit_staged(b.msgs) {
                    // The failed message's own error first, then the commit's (as OVS).
                    if let Some(head) = head_at(&heads, &head_ends, i) {
                        out.push(code.reply_to(head));
                    }
                    return Err(BundleFailedCode::MsgFailed.into());
                }
            }
            T::DiscardRequest => {
                self.remove(id).ok_or(BundleFailedCode::BadId)?;
            }
            T::OpenReply | T::CloseReply | T::CommitReply | T::DiscardReply => {
                return Err(BundleFailedCode::BadType.into());
            }
        }
        Ok(c.reply())
    }

    fn add(
        &mut self,
        sw: &dyn OfSwitch,
        xid: u32,
        raw: &[u8],
        a: BundleAddRef<'_>,
        slave: bool,
    ) -> Result<Option<BundleCtrl>, BundleError> {
        if !BundleFlags::known().contains(a.flags) {
            return Err(BundleFailedCode::BadFlags.into());
        }
        // An add to an unknown bundle opens it (OpenFlow 1.4, 7.3.9.4; OVS does the same).
        // One lookup of the bundle per add.
        let (limits, n_open) = (self.limits, self.open.len());
        let b = match self.open.entry(a.bundle_id) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                if n_open >= limits.per_connection {
                    return Err(BundleFailedCode::OutOfBundles.into());
                }
                v.insert(Bundle::new(a.flags, raw))
            }
        };
        if b.closed {
            self.remove(a.bundle_id);
            return Err(BundleFailedCode::BundleClosed.into());
        }
        let total = &self.total;
        b.touch(raw);
        let r = (|| {
            if a.flags != b.flags {
                return Err(BundleFailedCode::BadFlags.into());
            }
            if b.msgs.len() >= limits.messages_per_bundle
                || total.0.load(Relaxed) >= limits.messages_total
            {
                return Err(BundleFailedCode::MsgTooMany.into());
            }
            // Read straight from its bytes when the switch can (a common flow-mod); what
            // it leaves is decoded and staged as before. The checks `inner` and the lines
            // below make first are made here too: version, xid, not a slave.
            let m = a.message;
            if !slave
                && m.len() >= OFP_HEADER_LEN
                && m[0] == OFP_VERSION
                && u32::from_be_bytes([m[4], m[5], m[6], m[7]]) == xid
            {
                if let Some(staged) = sw.bundle_stage_raw(m) {
                    return Ok(staged);
                }
            }
            let inner = a.inner(xid)?;
            if !matches!(inner.body, Message::FlowMod(_)) {
                return Err(BundleFailedCode::MsgUnsup.into());
            }
            if let Some(code) = inner.experimenter_error() {
                return Err(code.into());
            }
            if slave {
                return Err(ErrorCode::BadRequest(BadRequestCode::IsSlave).into());
            }
            Ok(sw.bundle_stage(inner.body)?)
        })();
        match r {
            Ok(m) => {
                b.msgs.push(m);
                b.push_head(raw);
                total.0.fetch_add(1, Relaxed);
                Ok(None)
            }
            Err(e) => {
                b.failed = true;
                Err(e)
            }
        }
    }

    /// Open bundles.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::bundle::{BundleAdd, BundleMsg, ONF_BUNDLE_ERROR_BASE};
    use openflow::error::BadActionCode;
    use openflow::messages::{ErrorMsg, FlowMod, SwitchFeatures};
    use openflow::{Action, Instruction, Match as OfMatch};
    use parking_lot::Mutex;

    /// Refuses flow-mods with priority 13 on add and priority 14 on commit; records commits.
    #[derive(Default)]
    struct Mock {
        committed: Mutex<Vec<Vec<Message>>>,
    }

    fn prio(m: &Message) -> u16 {
        match m {
            Message::FlowMod(f) => f.priority,
            _ => 0,
        }
    }

    impl OfSwitch for Mock {
        fn features(&self) -> SwitchFeatures {
            unimplemented!("not used")
        }
        fn handle(&self, _: &Message) -> Result<Vec<Message>, ErrorCode> {
            unimplemented!("not used")
        }
        fn barrier(&self) -> Result<(), ErrorCode> {
            Ok(())
        }
        fn try_barrier(&self) -> bool {
            true
        }
        fn bundle_check(&self, m: &Message) -> Result<(), ErrorCode> {
            match prio(m) {
                13 => Err(ErrorCode::BadAction(BadActionCode::BadOutPort)),
                _ => Ok(()),
            }
        }
        fn bundle_commit(&self, ms: &[Message]) -> Result<(), (usize, ErrorCode)> {
            if let Some(i) = ms.iter().position(|m| prio(m) == 14) {
                return Err((i, ErrorCode::BadAction(BadActionCode::BadOutGroup)));
            }
            self.committed.lock().push(ms.to_vec());
            Ok(())
        }
    }

    fn bundles() -> Bundles {
        Bundles::new(BundleLimits::default(), Arc::default())
    }

    const AO: BundleFlags = BundleFlags(BundleFlags::ATOMIC.0 | BundleFlags::ORDERED.0);

    fn ctrl(id: u32, t: BundleCtrlType, flags: BundleFlags) -> (u32, Vec<u8>) {
        let m = OfpMessage::new(
            1,
            BundleCtrl {
                bundle_id: id,
                ctrl_type: t,
                flags,
                properties: vec![],
            }
            .to_message(),
        );
        (1, m.encode().unwrap())
    }

    fn add(id: u32, xid: u32, priority: u16) -> (u32, Vec<u8>) {
        let fm = FlowMod::add(
            0,
            priority,
            OfMatch::any(),
            vec![Instruction::ApplyActions(vec![Action::output(1)])],
        );
        let inner = OfpMessage::new(xid, Message::FlowMod(fm)).encode().unwrap();
        let m = OfpMessage::new(
            xid,
            BundleAdd {
                bundle_id: id,
                flags: AO,
                message: inner,
                properties: vec![],
            }
            .to_message(),
        );
        (xid, m.encode().unwrap())
    }

    /// Feeds raw bytes through the parse the connection does.
    fn feed(b: &mut Bundles, sw: &Mock, (xid, raw): (u32, Vec<u8>)) -> Vec<OfpMessage> {
        b.handle(sw, xid, &raw, BundleMsg::parse_raw(&raw).unwrap(), false)
    }

    fn bundle_err(m: &OfpMessage) -> Option<BundleFailedCode> {
        match &m.body {
            Message::Error(e) => BundleFailedCode::from_error(e),
            _ => None,
        }
    }

    fn is_reply(m: &OfpMessage, t: BundleCtrlType) -> bool {
        let Message::Experimenter(e) = &m.body else {
            return false;
        };
        matches!(BundleMsg::parse(e), Some(Ok(BundleMsg::Ctrl(c))) if c.ctrl_type == t)
    }

    #[test]
    fn open_add_commit_applies_everything_once() {
        let (sw, mut b) = (Mock::default(), bundles());
        let r = feed(&mut b, &sw, ctrl(0, BundleCtrlType::OpenRequest, AO));
        assert!(is_reply(&r[0], BundleCtrlType::OpenReply));
        for x in 10..20 {
            assert!(
                feed(&mut b, &sw, add(0, x, 100)).is_empty(),
                "adds are silent"
            );
        }
        assert!(sw.committed.lock().is_empty(), "nothing before the commit");
        let r = feed(&mut b, &sw, ctrl(0, BundleCtrlType::CommitRequest, AO));
        assert!(is_reply(&r[0], BundleCtrlType::CommitReply));
        assert_eq!(sw.committed.lock().len(), 1);
        assert_eq!(sw.committed.lock()[0].len(), 10);
        assert_eq!(b.len(), 0, "a committed bundle is gone");
    }

    #[test]
    fn a_refused_add_fails_the_whole_commit() {
        let (sw, mut b) = (Mock::default(), bundles());
        feed(&mut b, &sw, ctrl(5, BundleCtrlType::OpenRequest, AO));
        assert!(feed(&mut b, &sw, add(5, 1, 100)).is_empty());
        let r = feed(&mut b, &sw, add(5, 2, 13));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].xid, 2, "the error answers the refused add");
        assert_eq!(
            r[0].body,
            ErrorCode::BadAction(BadActionCode::BadOutPort)
                .reply_to(&add(5, 2, 13).1)
                .body
        );
        feed(&mut b, &sw, add(5, 3, 100));
        let r = feed(&mut b, &sw, ctrl(5, BundleCtrlType::CommitRequest, AO));
        assert_eq!(bundle_err(&r[0]), Some(BundleFailedCode::MsgFailed));
        assert!(sw.committed.lock().is_empty(), "nothing applied");
    }

    #[test]
    fn a_failure_at_commit_names_the_message_then_fails_the_commit() {
        let (sw, mut b) = (Mock::default(), bundles());
        feed(&mut b, &sw, ctrl(1, BundleCtrlType::OpenRequest, AO));
        feed(&mut b, &sw, add(1, 7, 100));
        feed(&mut b, &sw, add(1, 8, 14));
        let r = feed(&mut b, &sw, ctrl(1, BundleCtrlType::CommitRequest, AO));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].xid, 8);
        assert!(matches!(
            &r[0].body,
            Message::Error(ErrorMsg::Standard { .. })
        ));
        assert_eq!(bundle_err(&r[1]), Some(BundleFailedCode::MsgFailed));
        assert!(sw.committed.lock().is_empty());
    }

    /// Keeps each flow-mod as its priority (its "converted form"); refuses 14 at commit.
    /// Reads even priorities from the bytes (`bundle_stage_raw`), odd ones decoded.
    #[derive(Default)]
    struct Staging {
        committed: Mutex<Vec<Vec<u16>>>,
        raw_taken: AtomicUsize,
    }

    impl OfSwitch for Staging {
        fn features(&self) -> SwitchFeatures {
            unimplemented!("not used")
        }
        fn handle(&self, _: &Message) -> Result<Vec<Message>, ErrorCode> {
            unimplemented!("not used")
        }
        fn barrier(&self) -> Result<(), ErrorCode> {
            Ok(())
        }
        fn try_barrier(&self) -> bool {
            true
        }
        fn bundle_check(&self, _: &Message) -> Result<(), ErrorCode> {
            unimplemented!("bundles stage, not check")
        }
        fn bundle_commit(&self, _: &[Message]) -> Result<(), (usize, ErrorCode)> {
            unimplemented!("bundles commit what they staged")
        }
        fn bundle_stage(&self, m: Message) -> Result<Staged, ErrorCode> {
            Ok(Staged::Converted(Box::new(prio(&m))))
        }
        fn bundle_stage_raw(&self, raw: &[u8]) -> Option<Staged> {
            // A FLOW_MOD's priority is at bytes 30-31.
            let p = u16::from_be_bytes([raw[30], raw[31]]);
            p.is_multiple_of(2).then(|| {
                self.raw_taken.fetch_add(1, Relaxed);
                Staged::Converted(Box::new(p))
            })
        }
        fn bundle_commit_staged(&self, staged: Vec<Staged>) -> Result<(), (usize, ErrorCode)> {
            let mut prios = Vec::new();
            for (i, s) in staged.into_iter().enumerate() {
                let Staged::Converted(c) = s else {
                    panic!("staged as converted");
                };
                match *c.downcast::<u16>().expect("this switch's form") {
                    14 => return Err((i, ErrorCode::BadAction(BadActionCode::BadOutGroup))),
                    p => prios.push(p),
                }
            }
            self.committed.lock().push(prios);
            Ok(())
        }
    }

    #[test]
    fn what_the_switch_staged_is_committed_in_order() {
        let (sw, mut b) = (Staging::default(), bundles());
        let feed = |b: &mut Bundles, (xid, raw): (u32, Vec<u8>)| {
            b.handle(&sw, xid, &raw, BundleMsg::parse_raw(&raw).unwrap(), false)
        };
        feed(&mut b, ctrl(0, BundleCtrlType::OpenRequest, AO));
        for (x, p) in [(1, 300), (2, 100), (3, 200)] {
            assert!(feed(&mut b, add(0, x, p)).is_empty());
        }
        let r = feed(&mut b, ctrl(0, BundleCtrlType::CommitRequest, AO));
        assert!(is_reply(&r[0], BundleCtrlType::CommitReply));
        assert_eq!(*sw.committed.lock(), vec![vec![300, 100, 200]]);

        // Refused at commit: the error quotes the add that carried it (the third).
        feed(&mut b, ctrl(1, BundleCtrlType::OpenRequest, AO));
        for (x, p) in [(7, 100), (8, 101), (9, 14), (10, 102)] {
            feed(&mut b, add(1, x, p));
        }
        let r = feed(&mut b, ctrl(1, BundleCtrlType::CommitRequest, AO));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].xid, 9);
        assert_eq!(
            r[0].body,
            ErrorCode::BadAction(BadActionCode::BadOutGroup)
                .reply_to(&add(1, 9, 14).1)
                .body
        );
        assert_eq!(bundle_err(&r[1]), Some(BundleFailedCode::MsgFailed));
        assert_eq!(sw.committed.lock().len(), 1, "nothing more applied");
        assert_eq!(b.total.0.load(Relaxed), 0, "nothing held any more");
        // Read from the bytes: 300, 100, 200, then 100, 14, 102 (101 was decoded).
        assert_eq!(sw.raw_taken.load(Relaxed), 6);

        // An add whose inner xid is not its own is refused before the switch sees it.
        feed(&mut b, ctrl(2, BundleCtrlType::OpenRequest, AO));
        let (xid, mut raw) = add(2, 20, 200);
        // The inner message follows the 24 bytes of the BUNDLE_ADD's own headers.
        raw[24 + 4..24 + 8].copy_from_slice(&21u32.to_be_bytes());
        let r = feed(&mut b, (xid, raw));
        assert_eq!(bundle_err(&r[0]), Some(BundleFailedCode::MsgBadXid));
        assert_eq!(sw.raw_taken.load(Relaxed), 6);
    }

    #[test]
    fn ids_flags_and_states_are_checked() {
        use BundleCtrlType as T;
        let (sw, mut b) = (Mock::default(), bundles());
        let err = |r: Vec<OfpMessage>| bundle_err(&r[0]);
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::CommitRequest, AO))),
            Some(BundleFailedCode::BadId)
        );
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::DiscardRequest, AO))),
            Some(BundleFailedCode::BadId)
        );
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::CloseRequest, AO))),
            Some(BundleFailedCode::BadId)
        );
        feed(&mut b, &sw, ctrl(9, T::OpenRequest, AO));
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::OpenRequest, AO))),
            Some(BundleFailedCode::BundleExist)
        );
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::OpenReply, AO))),
            Some(BundleFailedCode::BadType)
        );
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(9, T::OpenRequest, BundleFlags(4)))),
            Some(BundleFailedCode::BadFlags)
        );
        let r = feed(&mut b, &sw, ctrl(9, T::CloseRequest, AO));
        assert!(is_reply(&r[0], T::CloseReply));
        assert_eq!(
            err(feed(&mut b, &sw, add(9, 3, 100))),
            Some(BundleFailedCode::BundleClosed)
        );
        assert_eq!(b.len(), 0, "an add to a closed bundle discards it");
        feed(&mut b, &sw, ctrl(2, T::OpenRequest, BundleFlags::ATOMIC));
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(2, T::CommitRequest, AO))),
            Some(BundleFailedCode::BadFlags)
        );
        feed(&mut b, &sw, ctrl(3, T::OpenRequest, AO));
        let r = feed(&mut b, &sw, ctrl(3, T::DiscardRequest, AO));
        assert!(is_reply(&r[0], T::DiscardReply));
        assert_eq!(b.len(), 0);
        for i in 0..BundleLimits::default().per_connection as u32 {
            feed(&mut b, &sw, ctrl(100 + i, T::OpenRequest, AO));
        }
        assert_eq!(
            err(feed(&mut b, &sw, ctrl(1, T::OpenRequest, AO))),
            Some(BundleFailedCode::OutOfBundles)
        );
        assert!(sw.committed.lock().is_empty());
    }

    #[test]
    fn inner_messages_must_match_and_be_flow_mods() {
        let (sw, mut b) = (Mock::default(), bundles());
        // An add without an open opens the bundle.
        assert!(feed(&mut b, &sw, add(4, 1, 100)).is_empty());
        assert_eq!(b.len(), 1);
        // A barrier inside a bundle.
        let inner = OfpMessage::new(2, Message::BarrierRequest)
            .encode()
            .unwrap();
        let raw = OfpMessage::new(
            2,
            BundleAdd {
                bundle_id: 4,
                flags: AO,
                message: inner,
                properties: vec![],
            }
            .to_message(),
        )
        .encode()
        .unwrap();
        assert_eq!(
            bundle_err(&feed(&mut b, &sw, (2, raw))[0]),
            Some(BundleFailedCode::MsgUnsup)
        );
        // The inner xid differs from the outer.
        let (_, mut raw) = add(4, 3, 100);
        raw[7] = 4;
        let r = feed(&mut b, &sw, (4, raw));
        assert_eq!(bundle_err(&r[0]), Some(BundleFailedCode::MsgBadXid));
        let r = feed(&mut b, &sw, ctrl(4, BundleCtrlType::CommitRequest, AO));
        assert_eq!(bundle_err(&r[0]), Some(BundleFailedCode::MsgFailed));
        let e = ErrorMsg::Experimenter {
            exp_type: ONF_BUNDLE_ERROR_BASE + 13,
            experimenter: 0x4f4e_4600,
            data: vec![],
        };
        assert_eq!(
            BundleFailedCode::from_error(&e),
            Some(BundleFailedCode::MsgFailed)
        );
    }
}
