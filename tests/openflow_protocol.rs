//! The OpenFlow agent on the wire: handshake variants and bad input. Every bad
//! message gets the spec's error (or a close where the spec says so), and
//! neither the connection's later requests, other connections nor the flow
//! tables are disturbed.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use openflow::error::{BadMatchCode, BadRequestCode, HelloFailedCode};
use openflow::{decode, ErrorCode, Message};

const ADDR: &str = "127.0.0.1:16635";

fn start(tag: &str) -> Ferroflowd {
    let mut config = eal_section(&format!("ff-t-{tag}"));
    config += "[openflow]\nlisten = [\"ptcp:16635:127.0.0.1\"]\n[datapath]\nidle_sleep_us = 200\n";
    config += "\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0,no-rx=1\"\nofport = 1\n";
    Ferroflowd::start(tag, &config, 300.0)
}

struct Peer(TcpStream);

impl Peer {
    /// Connects and sends `hello` (raw bytes); returns the peer after reading the switch's HELLO.
    fn connect(hello: &[u8]) -> Peer {
        let s = TcpStream::connect(ADDR).expect("connect to the ptcp listener");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut p = Peer(s);
        p.0.write_all(hello).unwrap();
        match p.recv().map(|m| m.body) {
            Some(Message::Hello(h)) => assert_eq!(h.version, 4),
            other => panic!("expected HELLO, got {other:?}"),
        }
        p
    }

    fn recv(&mut self) -> Option<openflow::OfpMessage> {
        let mut hdr = [0u8; 8];
        self.0.read_exact(&mut hdr).ok()?;
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let mut buf = hdr.to_vec();
        buf.resize(len.max(8), 0);
        self.0.read_exact(&mut buf[8..]).ok()?;
        Some(decode(&buf).expect("the switch sends valid messages"))
    }

    /// Sends raw bytes and returns the next message, skipping echo requests.
    fn ask(&mut self, raw: &[u8]) -> Option<openflow::OfpMessage> {
        self.0.write_all(raw).unwrap();
        loop {
            let m = self.recv()?;
            if !matches!(m.body, Message::EchoRequest(_)) {
                return Some(m);
            }
        }
    }

    fn expect_error(&mut self, raw: &[u8], code: ErrorCode, what: &str) {
        let xid = u32::from_be_bytes(raw[4..8].try_into().unwrap());
        match self.ask(raw) {
            Some(m) => match &m.body {
                Message::Error(e) => {
                    assert_eq!(e.code(), Some(code), "{what}: wrong error");
                    assert_eq!(m.xid, xid, "{what}: the error carries the request's xid");
                    assert_eq!(
                        &e.data()[..8.min(e.data().len())],
                        &raw[..8],
                        "{what}: the error quotes the request"
                    );
                }
                other => panic!("{what}: expected an error, got {other:?}"),
            },
            None => panic!("{what}: connection closed instead of an error"),
        }
    }

    fn features_ok(&mut self) {
        match self.ask(&msg(5, 0x77, &[])).map(|m| m.body) {
            Some(Message::FeaturesReply(f)) => assert_eq!(f.datapath_id, 1),
            other => panic!("FEATURES_REQUEST after bad input: {other:?}"),
        }
    }
}

fn msg(ty: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![4, ty];
    m.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// HELLO without elements, as os-ken sends it.
fn bare_hello() -> Vec<u8> {
    msg(0, 1, &[])
}

/// HELLO with a version bitmap element, as ovs-ofctl sends it.
fn bitmap_hello(bitmap: u32) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 8];
    body.extend_from_slice(&bitmap.to_be_bytes());
    msg(0, 1, &body)
}

/// A FLOW_MOD (ADD, table 0) with the given OXM TLVs as its match.
fn flow_mod(oxms: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0; 16]); // cookie, cookie mask
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x80, 0]); // table, ADD, timeouts, priority
    body.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // buffer id
    body.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // out port
    body.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // out group
    body.extend_from_slice(&[0, 0, 0, 0]); // flags, pad
    let len = 4 + oxms.len();
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(&(len as u16).to_be_bytes());
    body.extend_from_slice(oxms);
    body.resize(body.len() + (8 - len % 8) % 8, 0);
    msg(14, 0x42, &body)
}

#[test]
fn handshakes_with_and_without_a_version_bitmap() {
    let _lock = DatapathLock::take();
    let ff = start("ofp-hello");
    let mut a = Peer::connect(&bare_hello());
    a.features_ok();
    match a.ask(&msg(2, 9, b"ping")).map(|m| m.body) {
        Some(Message::EchoReply(d)) => assert_eq!(d, b"ping"),
        other => panic!("echo: {other:?}"),
    }
    let mut b = Peer::connect(&bitmap_hello(1 << 4 | 1 << 1));
    b.features_ok();
    // A peer that speaks only OpenFlow 1.0 gets HELLO_FAILED/INCOMPATIBLE and a close.
    let mut c = TcpStream::connect(ADDR).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(&bitmap_hello(1 << 1)).unwrap();
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let mut at = 0;
    let mut codes = Vec::new();
    while at + 8 <= all.len() {
        let len = u16::from_be_bytes([all[at + 2], all[at + 3]]) as usize;
        if let Ok(m) = decode(&all[at..at + len]) {
            if let Message::Error(e) = m.body {
                codes.push(e.code());
            }
        }
        at += len;
    }
    assert_eq!(
        codes,
        vec![Some(ErrorCode::HelloFailed(HelloFailedCode::Incompatible))]
    );
    drop(ff.stop());
}

#[test]
fn bad_input_gets_the_spec_error_and_disturbs_nothing() {
    let _lock = DatapathLock::take();
    let ff = start("ofp-bad");
    let mut bystander = Peer::connect(&bitmap_hello(1 << 4));
    let mut p = Peer::connect(&bitmap_hello(1 << 4));

    // An experimenter (vendor) message: BAD_REQUEST/BAD_EXPERIMENTER.
    let nicira = [0x00, 0x00, 0x23, 0x20, 0, 0, 0, 16];
    p.expect_error(
        &msg(4, 0x10, &nicira),
        ErrorCode::BadRequest(BadRequestCode::BadExperimenter),
        "experimenter",
    );
    // An unknown message type.
    p.expect_error(
        &msg(99, 0x11, &[]),
        ErrorCode::BadRequest(BadRequestCode::BadType),
        "unknown type",
    );
    // A request in OpenFlow 1.0 after 1.3 was negotiated.
    let mut v1 = msg(5, 0x12, &[]);
    v1[0] = 1;
    p.expect_error(
        &v1,
        ErrorCode::BadRequest(BadRequestCode::BadVersion),
        "wrong version",
    );
    // A FEATURES_REQUEST with a body it must not have.
    p.expect_error(
        &msg(5, 0x13, &[1, 2, 3, 4]),
        ErrorCode::BadRequest(BadRequestCode::BadLen),
        "bad length",
    );
    // A match field of the experimenter class: BAD_MATCH/BAD_FIELD.
    let exp_oxm = [0xff, 0xff, 0x00, 0x08, 0x00, 0x00, 0x23, 0x20, 0, 0, 0, 1];
    p.expect_error(
        &flow_mod(&exp_oxm),
        ErrorCode::BadMatch(BadMatchCode::BadField),
        "experimenter OXM",
    );
    // A match field without its prerequisite (ipv4_dst without eth_type): BAD_PREREQ.
    let ipv4_dst = [0x80, 0x00, 0x18, 0x04, 10, 0, 0, 1];
    p.expect_error(
        &flow_mod(&ipv4_dst),
        ErrorCode::BadMatch(BadMatchCode::BadPrereq),
        "missing prerequisite",
    );
    // A truncated multipart request body.
    p.expect_error(
        &msg(18, 0x14, &[0, 1]),
        ErrorCode::BadRequest(BadRequestCode::BadLen),
        "truncated multipart",
    );

    // The connection, the other connection and the tables are intact.
    p.features_ok();
    bystander.features_ok();
    let flows = run("timeout 10 ovs-ofctl -O OpenFlow13 dump-flows tcp:127.0.0.1:16635");
    assert_eq!(
        flows.lines().filter(|l| l.contains("cookie=")).count(),
        1,
        "{flows}"
    );

    // A header whose length is below 8 cannot be resynchronised: error, then close.
    p.0.write_all(&[4, 0, 0, 4, 0, 0, 0, 0x15]).unwrap();
    let mut rest = Vec::new();
    let _ = p.0.read_to_end(&mut rest);
    assert!(!rest.is_empty(), "an error before the close");
    bystander.features_ok();
    let stats = ff.stop();
    assert!(stats["ports"].as_array().is_some());
}

fn role_request(role: u32, generation: u64, xid: u32) -> Vec<u8> {
    let mut body = role.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&generation.to_be_bytes());
    msg(24, xid, &body)
}

fn role_of(m: Option<openflow::OfpMessage>) -> (u32, u64) {
    match m.map(|m| m.body) {
        Some(Message::RoleReply(r)) => (r.role.raw(), r.generation_id),
        other => panic!("expected ROLE_REPLY, got {other:?}"),
    }
}

#[test]
fn roles_one_master_slaves_refused_stale_generations() {
    use openflow::error::RoleRequestFailedCode;
    const EQUAL: u32 = 1;
    const MASTER: u32 = 2;
    const SLAVE: u32 = 3;
    let _lock = DatapathLock::take();
    let ff = start("ofp-roles");
    let mut a = Peer::connect(&bitmap_hello(1 << 4));
    let mut b = Peer::connect(&bitmap_hello(1 << 4));
    assert_eq!(role_of(a.ask(&role_request(MASTER, 10, 1))), (MASTER, 10));
    // b takes over as master: a becomes a slave.
    assert_eq!(role_of(b.ask(&role_request(MASTER, 11, 2))), (MASTER, 11));
    assert_eq!(
        role_of(a.ask(&role_request(0, 0, 3))),
        (SLAVE, 11),
        "NOCHANGE reports the current role"
    );
    // A slave may not change the tables.
    a.expect_error(
        &flow_mod(&[]),
        ErrorCode::BadRequest(BadRequestCode::IsSlave),
        "flow-mod from a slave",
    );
    // A stale generation id is refused; EQUAL ignores generations.
    a.expect_error(
        &role_request(MASTER, 9, 4),
        ErrorCode::RoleRequestFailed(RoleRequestFailedCode::Stale),
        "stale generation",
    );
    assert_eq!(role_of(a.ask(&role_request(EQUAL, 0, 5))).0, EQUAL);
    // The master's flow-mod is accepted (no reply; a barrier confirms it).
    b.0.write_all(&flow_mod(&[])).unwrap();
    match b.ask(&msg(20, 6, &[])).map(|m| m.body) {
        Some(Message::BarrierReply) => {}
        other => panic!("master flow-mod: {other:?}"),
    }
    drop(ff.stop());
}

/// The flows' packet counts as dump-flows prints them, by table.
fn packets_by_table(dump: &str) -> Vec<(u8, u64)> {
    let field = |l: &str, k: &str| -> Option<u64> {
        let at = l.find(k)? + k.len();
        l[at..].split([',', ' ']).next()?.parse().ok()
    };
    let mut v: Vec<(u8, u64)> = dump
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| {
            (
                field(l, "table=").unwrap_or(0) as u8,
                field(l, "n_packets=").expect("n_packets"),
            )
        })
        .collect();
    v.sort();
    v
}

/// Issue 13's hang: with table 0 going to table 1 and table 1 forwarding, a MODIFY to
/// all tables with goto_table:1 (table 1 would go to itself), the same as MODIFY_STRICT,
/// and as a bundle, are refused with BAD_INSTRUCTION/BAD_TABLE_ID; the flows stay as they
/// were, barriers are answered, and packets keep flowing through both tables.
#[test]
fn a_goto_loop_is_refused_and_traffic_keeps_flowing() {
    use openflow::consts::OFPTT_ALL;
    use openflow::error::BadInstructionCode;
    use openflow::messages::{FlowMod, FlowModCommand};
    use openflow::{Instruction, OfpMessage};

    let _lock = DatapathLock::take();
    let mut config = eal_section("ff-t-ofp-loop");
    config += "[openflow]\nlisten = [\"ptcp:16635:127.0.0.1\"]\n";
    // Port 1 receives zero frames as fast as the worker takes them; port 2 drops them.
    config += "\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0\"\nofport = 1\n";
    config += "\n[[ports]]\nname = \"n2\"\ndevargs = \"net_null1,no-rx=1\"\nofport = 2\n";
    let ff = Ferroflowd::start("ofp-loop", &config, 300.0);
    let target = "tcp:127.0.0.1:16635";
    run(&format!(
        "timeout 10 ovs-ofctl -O OpenFlow13 del-flows {target} && \
         timeout 10 ovs-ofctl -O OpenFlow13 add-flow {target} table=0,actions=goto_table:1 && \
         timeout 10 ovs-ofctl -O OpenFlow13 add-flow {target} table=1,actions=output:2"
    ));
    let dump = || {
        run(&format!(
            "timeout 10 ovs-ofctl -O OpenFlow13 dump-flows {target}"
        ))
    };
    let before = packets_by_table(&dump());
    assert_eq!(before.len(), 2, "two flows");

    let mut p = Peer::connect(&bitmap_hello(1 << 4));
    let bad = ErrorCode::BadInstruction(BadInstructionCode::BadTableId);
    for (xid, command) in [
        (0x60, FlowModCommand::Modify),
        (0x61, FlowModCommand::ModifyStrict),
    ] {
        // ovs-ofctl's default priority: MODIFY_STRICT selects both flows.
        let mut fm = FlowMod::add(OFPTT_ALL, 0x8000, openflow::Match::any(), vec![]);
        fm.command = command;
        fm.instructions = vec![Instruction::GotoTable(1)];
        let raw = OfpMessage::new(xid, Message::FlowMod(fm)).encode().unwrap();
        p.expect_error(
            &raw,
            bad,
            &format!("{command:?} to all tables, goto_table:1"),
        );
        match p.ask(&msg(20, xid + 0x10, &[])).map(|m| m.body) {
            Some(Message::BarrierReply) => {}
            other => panic!("barrier after the refused {command:?}: {other:?}"),
        }
    }
    // The same as a bundle: ovs-ofctl names the error and nothing is applied.
    let (ok, out) = {
        let o = sh(&format!(
            "timeout 10 ovs-ofctl -O OpenFlow13 --bundle mod-flows {target} 'table=1,actions=goto_table:1'"
        ));
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(!ok, "the bundle is refused: {out}");
    assert!(out.contains("BAD_TABLE_ID"), "{out}");

    // Same flows, and their counters go on moving in both tables.
    let after = packets_by_table(&dump());
    assert_eq!(after.len(), 2);
    let later = loop {
        let now = packets_by_table(&dump());
        if now.iter().zip(&after).all(|(n, a)| n.1 > a.1) {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(later
        .iter()
        .zip(&before)
        .all(|(l, b)| l.0 == b.0 && l.1 > b.1));
    p.features_ok();
    drop(ff.stop());
}
