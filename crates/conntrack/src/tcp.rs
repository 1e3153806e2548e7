//! TCP state and window tracking, after Linux's `nf_conntrack_proto_tcp.c` (the state table,
//! the "Real Stateful TCP Packet Filtering" window checks, loose pick-up of established
//! connections), so that verdicts agree with the kernel's `ct state` (see
//! `tests/kernel_diff.rs`). NAT sequence adjustment is not needed: our NAT never changes
//! payload lengths.

use crate::packet::{TcpSegment, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

/// TCP connection states, in Linux's order (the state table is indexed by them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }
}

/// A state-table cell: a state, "invalid" or "ignore".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    S(TcpState),
    Iv,
    Ig,
}

use Next::{Ig, Iv, S};
use TcpState as T;
const SS: Next = S(T::SynSent);
const SR: Next = S(T::SynRecv);
const ES: Next = S(T::Established);
const FW: Next = S(T::FinWait);
const CW: Next = S(T::CloseWait);
const LA: Next = S(T::LastAck);
const TW: Next = S(T::TimeWait);
const CL: Next = S(T::Close);
const S2: Next = S(T::SynSent2);

// Packet classes (Linux's get_conntrack_index).
const SYN: usize = 0;
const SYNACK: usize = 1;
const FIN: usize = 2;
const ACK: usize = 3;
const RST: usize = 4;
const NONE: usize = 5;

/// [direction][packet class][old state], columns NO SS SR ES FW CW LA TW CL S2.
#[rustfmt::skip]
const TABLE: [[[Next; 10]; 6]; 2] = [
    [
        /* syn    */ [SS, SS, Ig, Ig, Ig, Ig, Ig, SS, SS, S2],
        /* synack */ [Iv, Iv, SR, Iv, Iv, Iv, Iv, Iv, Iv, SR],
        /* fin    */ [Iv, Iv, FW, FW, LA, LA, LA, TW, CL, Iv],
        /* ack    */ [ES, Iv, ES, ES, CW, CW, TW, TW, CL, Iv],
        /* rst    */ [Iv, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv],
    ],
    [
        /* syn    */ [Iv, S2, Iv, Iv, Iv, Iv, Iv, SS, Iv, S2],
        /* synack */ [Iv, SR, Ig, Ig, Ig, Ig, Ig, Ig, Ig, SR],
        /* fin    */ [Iv, Iv, FW, FW, LA, LA, LA, TW, CL, Iv],
        /* ack    */ [Iv, Ig, SR, ES, CW, CW, TW, TW, CL, Ig],
        /* rst    */ [Iv, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv, Iv],
    ],
];

// Per-direction flags.
const F_WINDOW_SCALE: u8 = 0x01;
const F_SACK_PERM: u8 = 0x02;
const F_CLOSE_INIT: u8 = 0x04;
const F_BE_LIBERAL: u8 = 0x08;
const F_DATA_UNACK: u8 = 0x10;
const F_MAXACK_SET: u8 = 0x20;

// Connection-wide flags (Linux's last_flags).
const L_SIMULTANEOUS_OPEN: u8 = 0x01;
const L_CHALLENGE_ACK: u8 = 0x02;

const MAX_ACK_WIN_CONST: u32 = 66000;
/// Retransmissions of the same segment after which the RETRANS timeout applies.
const MAX_RETRANS: u8 = 3;

pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

#[derive(Clone, Copy, Debug, Default)]
struct Dir {
    end: u32,
    maxend: u32,
    maxwin: u32,
    maxack: u32,
    scale: u8,
    flags: u8,
}

/// The TCP part of a connection entry.
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub state: TcpState,
    seen: [Dir; 2],
    last_dir: u8,
    last_index: u8,
    last_seq: u32,
    last_ack: u32,
    last_end: u32,
    last_win: u16,
    last_wscale: u8,
    last_flags: u8,
    retrans: u8,
}

/// What processing a segment on an existing connection decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// In window: the state was updated; `timeout` is the state's timeout class.
    Accept(Timeout),
    /// Passed without changing state (Linux's NF_ACCEPT from the "ignore" paths and
    /// NFCT_TCP_IGNORE): the packet keeps the connection's verdict.
    Ignore,
    Invalid,
    /// A SYN reopening a closed connection: delete the entry and track the packet anew.
    Reopen,
}

/// TCP timeouts in milliseconds (defaults: Linux's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTimeouts {
    pub syn_sent_ms: u64,
    pub syn_recv_ms: u64,
    pub established_ms: u64,
    pub fin_wait_ms: u64,
    pub close_wait_ms: u64,
    pub last_ack_ms: u64,
    pub time_wait_ms: u64,
    pub close_ms: u64,
    /// After 3 retransmissions of a segment, or with a zero window.
    pub retrans_ms: u64,
    /// While data is unacknowledged.
    pub unack_ms: u64,
}

impl Default for TcpTimeouts {
    fn default() -> Self {
        const S: u64 = 1000;
        TcpTimeouts {
            syn_sent_ms: 120 * S,
            syn_recv_ms: 60 * S,
            established_ms: 5 * 24 * 3600 * S,
            fin_wait_ms: 120 * S,
            close_wait_ms: 60 * S,
            last_ack_ms: 30 * S,
            time_wait_ms: 120 * S,
            close_ms: 10 * S,
            retrans_ms: 300 * S,
            unack_ms: 300 * S,
        }
    }
}

impl TcpTimeouts {
    pub fn state_ms(&self, s: TcpState) -> u64 {
        match s {
            TcpState::None | TcpState::SynSent | TcpState::SynSent2 => self.syn_sent_ms,
            TcpState::SynRecv => self.syn_recv_ms,
            TcpState::Established => self.established_ms,
            TcpState::FinWait => self.fin_wait_ms,
            TcpState::CloseWait => self.close_wait_ms,
            TcpState::LastAck => self.last_ack_ms,
            TcpState::TimeWait => self.time_wait_ms,
            TcpState::Close => self.close_ms,
        }
    }
}

/// Which timeout applies after an accepted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    Ms(u64),
    /// A SYN retransmitted before any reply: the timer is not renewed.
    Keep,
    /// The only reply was a RST: the connection is deleted.
    Kill,
}

/// Linux's tcp_valid_flags: PSH, ECE and CWR are always allowed.
pub fn valid_flags(flags: u8) -> bool {
    let f = flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | 0x20);
    const SYNF: u8 = TCP_SYN;
    const URG: u8 = 0x20;
    matches!(
        f,
        SYNF | 0x22 | 0x12 | TCP_RST | 0x14 | 0x11 | 0x31 | TCP_ACK | 0x30
    ) || f == SYNF | URG
}

fn index(flags: u8) -> usize {
    if flags & TCP_RST != 0 {
        RST
    } else if flags & TCP_SYN != 0 {
        if flags & TCP_ACK != 0 {
            SYNACK
        } else {
            SYN
        }
    } else if flags & TCP_FIN != 0 {
        FIN
    } else if flags & TCP_ACK != 0 {
        ACK
    } else {
        NONE
    }
}

fn seg_end(s: &TcpSegment) -> u32 {
    s.seq
        .wrapping_add(s.payload_len)
        .wrapping_add(u32::from(s.flags & TCP_SYN != 0))
        .wrapping_add(u32::from(s.flags & TCP_FIN != 0))
}

fn options_into(s: &TcpSegment, d: &mut Dir) {
    d.scale = 0;
    d.flags &= F_BE_LIBERAL;
    if s.sack_permitted {
        d.flags |= F_SACK_PERM;
    }
    if let Some(w) = s.wscale {
        d.scale = w;
        d.flags |= F_WINDOW_SCALE;
    }
}

impl Tcp {
    /// Whether the first segment of a connection may create it (Linux's `tcp_new`), and the
    /// new entry's TCP state. `loose` picks up connections in the middle (any ACK segment),
    /// as Linux's default `nf_conntrack_tcp_loose=1` does.
    pub fn new(s: &TcpSegment, loose: bool) -> Option<Tcp> {
        let next = TABLE[0][index(s.flags)][0];
        let mut t = Tcp {
            state: TcpState::None,
            seen: [Dir::default(); 2],
            last_dir: 0,
            last_index: NONE as u8,
            last_seq: 0,
            last_ack: 0,
            last_end: 0,
            last_win: 0,
            last_wscale: 0,
            last_flags: 0,
            retrans: 0,
        };
        let end = seg_end(s);
        let d = &mut t.seen[0];
        d.end = end;
        d.maxwin = u32::from(s.window).max(1);
        match next {
            SS => {
                d.maxend = end;
                options_into(s, d);
            }
            S(_) if loose => {
                d.maxend = end.wrapping_add(d.maxwin);
                t.seen[0].flags = F_SACK_PERM | F_BE_LIBERAL;
                t.seen[1].flags = F_SACK_PERM | F_BE_LIBERAL;
            }
            _ => return None,
        }
        Some(t)
    }

    pub fn seen_close(&self) -> bool {
        (self.seen[0].flags | self.seen[1].flags) & F_CLOSE_INIT != 0
    }

    /// Processes a segment in direction `dir` (0 original, 1 reply) of an existing entry
    /// (Linux's `nf_conntrack_tcp_packet` after `tcp_new`).
    pub fn packet(
        &mut self,
        s: &TcpSegment,
        dir: usize,
        seen_reply: bool,
        assured: bool,
        be_liberal: bool,
        t: &TcpTimeouts,
    ) -> Outcome {
        let old = self.state;
        let idx = index(s.flags);
        let mut next = TABLE[dir][idx][old as usize];
        let mut skip_window = false;
        match next {
            SS if old >= TcpState::TimeWait => {
                if self.seen_close()
                    || (usize::from(self.last_dir) == dir && usize::from(self.last_index) == RST)
                {
                    return Outcome::Reopen;
                }
                return self.ignore(s, dir, idx, old);
            }
            Ig => {
                if idx == SYNACK
                    && usize::from(self.last_index) == SYN
                    && usize::from(self.last_dir) != dir
                    && s.ack == self.last_end
                {
                    // A SYN/ACK for a SYN we ignored: get in sync from the SYN's values.
                    let ld = usize::from(self.last_dir);
                    self.seen[ld].end = self.last_end;
                    self.seen[ld].maxend = self.last_end;
                    self.seen[ld].maxwin = u32::from(self.last_win).max(1);
                    self.seen[ld].scale = self.last_wscale;
                    self.last_flags &= !L_CHALLENGE_ACK;
                    self.seen[ld].flags = self.last_flags & (F_WINDOW_SCALE | F_SACK_PERM);
                    let d = &mut self.seen[dir];
                    *d = Dir {
                        flags: d.flags & F_BE_LIBERAL,
                        ..Dir::default()
                    };
                    next = SR;
                } else {
                    return self.ignore(s, dir, idx, old);
                }
            }
            Iv => return Outcome::Invalid,
            TW if old == TcpState::LastAck
                && idx == ACK
                && usize::from(self.last_dir) != dir
                && usize::from(self.last_index) == SYN
                && self.last_flags & L_CHALLENGE_ACK != 0 =>
            {
                self.last_flags &= !L_CHALLENGE_ACK;
                return Outcome::Ignore;
            }
            S2 => self.last_flags |= L_SIMULTANEOUS_OPEN,
            SR if dir == 1 && idx == ACK && self.last_flags & L_SIMULTANEOUS_OPEN != 0 => {
                next = ES;
            }
            CL if idx == RST => {
                let other = &self.seen[1 - dir];
                let closing = matches!(
                    old,
                    TcpState::FinWait
                        | TcpState::LastAck
                        | TcpState::TimeWait
                        | TcpState::Close
                        | TcpState::CloseWait
                );
                if closing {
                    skip_window = true;
                } else if other.flags & F_MAXACK_SET != 0 && usize::from(self.last_index) != SYN {
                    let established = old == TcpState::Established;
                    if s.seq != 0 || established {
                        if before(s.seq, other.maxack) {
                            return Outcome::Invalid;
                        }
                        if established
                            && s.seq != other.maxack
                            && !(usize::from(self.last_index) == ACK
                                && usize::from(self.last_dir) == dir
                                && s.seq == self.last_end)
                        {
                            next = S(old);
                        }
                    }
                }
                if !skip_window
                    && ((seen_reply && usize::from(self.last_index) == SYN)
                        || (!assured && usize::from(self.last_index) == ACK))
                    && s.ack == self.last_end
                {
                    skip_window = true;
                }
                if !skip_window
                    && old == TcpState::SynSent
                    && usize::from(self.last_index) == ACK
                    && self.last_dir == 1
                    && s.seq == self.last_ack
                {
                    skip_window = true;
                }
            }
            _ => {}
        }
        let S(new) = next else {
            return Outcome::Invalid;
        };
        if !skip_window {
            match self.in_window(s, dir, idx, be_liberal) {
                Window::Accept => {}
                Window::Ignore => return Outcome::Ignore,
                Window::Invalid => return Outcome::Invalid,
            }
        }
        self.last_index = idx as u8;
        self.last_dir = dir as u8;
        self.state = new;
        if old != new && new == TcpState::FinWait {
            self.seen[dir].flags |= F_CLOSE_INIT;
        }
        let unack = (self.seen[0].flags | self.seen[1].flags) & F_DATA_UNACK != 0;
        let state_ms = t.state_ms(new);
        let mut timeout = if self.retrans >= MAX_RETRANS && state_ms > t.retrans_ms {
            Timeout::Ms(t.retrans_ms)
        } else if idx == RST {
            Timeout::Ms(t.state_ms(TcpState::Close))
        } else if unack && state_ms > t.unack_ms {
            Timeout::Ms(t.unack_ms)
        } else if self.last_win == 0 && state_ms > t.retrans_ms {
            Timeout::Ms(t.retrans_ms)
        } else {
            Timeout::Ms(state_ms)
        };
        if !seen_reply {
            if s.flags & TCP_RST != 0 {
                timeout = Timeout::Kill;
            } else if idx == SYN && old == TcpState::SynSent {
                timeout = Timeout::Keep;
            } else if new == TcpState::Established {
                if let Timeout::Ms(ms) = timeout {
                    timeout = Timeout::Ms(ms.min(t.unack_ms));
                }
            }
        }
        Outcome::Accept(timeout)
    }

    /// Whether this packet makes the connection assured (Linux's IPS_ASSURED for TCP).
    pub fn assures(old: TcpState, new: TcpState) -> bool {
        matches!(old, TcpState::SynRecv | TcpState::Established) && new == TcpState::Established
    }

    fn ignore(&mut self, s: &TcpSegment, dir: usize, idx: usize, old: TcpState) -> Outcome {
        self.last_index = idx as u8;
        self.last_dir = dir as u8;
        self.last_seq = s.seq;
        self.last_end = seg_end(s);
        self.last_win = s.window;
        if idx == SYN && dir == 0 {
            self.last_flags = 0;
            self.last_wscale = 0;
            if let Some(w) = s.wscale {
                self.last_flags |= F_WINDOW_SCALE;
                self.last_wscale = w;
            }
            if s.sack_permitted {
                self.last_flags |= F_SACK_PERM;
            }
            if old == TcpState::LastAck {
                self.last_flags |= L_CHALLENGE_ACK;
            }
        }
        if old == TcpState::SynSent && idx == ACK && dir == 1 {
            self.last_ack = s.ack;
        }
        Outcome::Ignore
    }

    fn init_sender(&mut self, s: &TcpSegment, dir: usize, end: u32, win: u32) {
        let sender = &mut self.seen[dir];
        sender.end = end;
        sender.maxend = end;
        sender.maxwin = win.max(1);
        options_into(s, sender);
        if dir == 1
            && !(self.seen[1].flags & F_WINDOW_SCALE != 0
                && self.seen[0].flags & F_WINDOW_SCALE != 0)
        {
            self.seen[0].scale = 0;
            self.seen[1].scale = 0;
        }
    }

    fn in_window(&mut self, s: &TcpSegment, dir: usize, idx: usize, be_liberal: bool) -> Window {
        let liberal = |flags: u8, w: Window| {
            if be_liberal || flags & F_BE_LIBERAL != 0 {
                Window::Accept
            } else {
                w
            }
        };
        let mut seq = s.seq;
        let mut ack = s.ack;
        let mut sack = s.ack;
        let win_raw = s.window;
        let mut win = u32::from(win_raw);
        let mut end = seg_end(s);
        if self.seen[1 - dir].flags & F_SACK_PERM != 0 {
            if let Some(r) = s.sack_right_edge {
                if after(r, sack) {
                    sack = r;
                }
            }
        }
        let syn = s.flags & TCP_SYN != 0;
        if self.seen[dir].maxwin == 0 {
            if syn {
                self.init_sender(s, dir, end, win);
                if s.flags & TCP_ACK == 0 {
                    return Window::Accept;
                }
            } else {
                let sender = &mut self.seen[dir];
                sender.end = end;
                let swin = win << sender.scale;
                sender.maxwin = swin.max(1);
                sender.maxend = end.wrapping_add(sender.maxwin);
                let receiver = &mut self.seen[1 - dir];
                if receiver.maxwin == 0 {
                    receiver.end = sack;
                    receiver.maxend = sack;
                } else if sack == receiver.end.wrapping_add(1) {
                    receiver.end = receiver.end.wrapping_add(1);
                }
            }
        } else if syn
            && after(end, self.seen[dir].end)
            && matches!(self.state, TcpState::SynSent | TcpState::SynRecv)
        {
            self.init_sender(s, dir, end, win);
            if dir == 1 && s.flags & TCP_ACK == 0 {
                return Window::Accept;
            }
        }
        if s.flags & TCP_ACK == 0 || (s.flags & TCP_RST != 0 && ack == 0) {
            ack = self.seen[1 - dir].end;
            sack = ack;
        }
        if s.flags & TCP_RST != 0 && seq == 0 && self.state == TcpState::SynSent {
            seq = self.seen[dir].end;
            end = seq;
        }
        let sender = self.seen[dir];
        let receiver = self.seen[1 - dir];
        let max_ack_window = sender.maxwin.max(MAX_ACK_WIN_CONST);
        if !before(seq, sender.maxend.wrapping_add(1)) {
            let overshot = end.wrapping_sub(sender.maxend).wrapping_add(1);
            let ack_ok = after(
                sack,
                receiver.end.wrapping_sub(max_ack_window).wrapping_sub(1),
            );
            let in_recv_win = receiver.maxwin != 0
                && after(
                    end,
                    sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
                );
            if in_recv_win
                && ack_ok
                && overshot <= receiver.maxwin
                && before(sack, receiver.end.wrapping_add(1))
            {
                self.seen[dir].end = end;
                self.seen[dir].flags |= F_DATA_UNACK;
                return liberal(sender.flags, Window::Ignore);
            }
            return liberal(sender.flags, Window::Invalid);
        }
        if !before(sack, receiver.end.wrapping_add(1)) {
            return liberal(sender.flags, Window::Invalid);
        }
        let in_recv_win = receiver.maxwin == 0
            || after(
                end,
                sender.end.wrapping_sub(receiver.maxwin).wrapping_sub(1),
            );
        if !in_recv_win {
            return liberal(sender.flags, Window::Ignore);
        }
        if !after(
            sack,
            receiver.end.wrapping_sub(max_ack_window).wrapping_sub(1),
        ) {
            return liberal(sender.flags, Window::Ignore);
        }
        if !syn {
            win <<= sender.scale;
        }
        // Update the sender.
        let swin = win.wrapping_add(sack.wrapping_sub(ack));
        let sender = &mut self.seen[dir];
        if sender.maxwin < swin {
            sender.maxwin = swin;
        }
        if after(end, sender.end) {
            sender.end = end;
            sender.flags |= F_DATA_UNACK;
        }
        if s.flags & TCP_ACK != 0 {
            if sender.flags & F_MAXACK_SET == 0 {
                sender.maxack = ack;
                sender.flags |= F_MAXACK_SET;
            } else if after(ack, sender.maxack) {
                sender.maxack = ack;
            }
        }
        let sender_maxend = sender.maxend;
        // Update the receiver.
        let receiver = &mut self.seen[1 - dir];
        if receiver.maxwin != 0 && after(end, sender_maxend) {
            receiver.maxwin = receiver
                .maxwin
                .wrapping_add(end.wrapping_sub(sender_maxend));
        }
        if after(sack.wrapping_add(win), receiver.maxend.wrapping_sub(1)) {
            receiver.maxend = sack.wrapping_add(win);
            if win == 0 {
                receiver.maxend = receiver.maxend.wrapping_add(1);
            }
        }
        if ack == receiver.end {
            receiver.flags &= !F_DATA_UNACK;
        }
        if idx == ACK {
            if usize::from(self.last_dir) == dir
                && self.last_seq == seq
                && self.last_ack == ack
                && self.last_end == end
                && self.last_win == win_raw
            {
                self.retrans = self.retrans.saturating_add(1);
            } else {
                self.last_dir = dir as u8;
                self.last_seq = seq;
                self.last_ack = ack;
                self.last_end = end;
                self.last_win = win_raw;
                self.retrans = 0;
            }
        }
        Window::Accept
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Window {
    Accept,
    Ignore,
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_combinations_follow_linux() {
        assert!(valid_flags(TCP_SYN));
        assert!(valid_flags(TCP_SYN | TCP_ACK));
        assert!(valid_flags(TCP_FIN | TCP_ACK | crate::packet::TCP_PSH));
        assert!(!valid_flags(TCP_SYN | TCP_FIN));
        assert!(!valid_flags(TCP_FIN));
        assert!(!valid_flags(0));
        assert!(!valid_flags(TCP_SYN | TCP_RST));
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(before(0xffff_fff0, 0x10));
        assert!(after(0x10, 0xffff_fff0));
        assert!(!before(5, 5));
    }
}
