//! The agent's limits on a real listener, with small values so that each is reached in
//! a moment: each exceeded limit gets the spec's error (or a close where there is no
//! error to send) and is counted, and the agent keeps serving everyone else.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ofagent::{Agent, AgentConfig, AgentLimits, BundleLimits, OfSwitch, Target};
use openflow::bundle::{BundleAdd, BundleCtrl, BundleCtrlType, BundleFailedCode, BundleFlags};
use openflow::consts::Capabilities;
use openflow::messages::{FlowMod, SwitchFeatures};
use openflow::{decode, ErrorCode, Match, Message, OfpMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Mock;

impl OfSwitch for Mock {
    fn features(&self) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: 7,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: Capabilities::empty(),
            reserved: 0,
        }
    }
    fn handle(&self, _: &Message) -> Result<Vec<Message>, ErrorCode> {
        Ok(vec![])
    }
    fn barrier(&self) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn try_barrier(&self) -> bool {
        true
    }
    fn bundle_check(&self, _: &Message) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn bundle_commit(&self, _: &[Message]) -> Result<(), (usize, ErrorCode)> {
        Ok(())
    }
}

fn limits() -> AgentLimits {
    AgentLimits {
        bundles: BundleLimits {
            per_connection: 2,
            messages_per_bundle: 3,
            messages_total: 4,
            idle_timeout: Duration::from_millis(400),
        },
        connections_per_listener: 3,
        handshake_timeout: Duration::from_millis(400),
    }
}

async fn agent(port: u16) -> (Agent, String) {
    let agent = Agent::new(
        Arc::new(Mock),
        AgentConfig {
            limits: limits(),
            ..AgentConfig::default()
        },
    );
    let addr = format!("127.0.0.1:{port}");
    agent
        .listen(&Target::parse(&format!("ptcp:{port}:127.0.0.1")).unwrap())
        .await
        .unwrap();
    (agent, addr)
}

struct Peer(TcpStream);

impl Peer {
    /// Connects and reads the switch's HELLO; sends nothing.
    async fn connect(addr: &str) -> Peer {
        let mut p = Peer(TcpStream::connect(addr).await.unwrap());
        match p.recv().await.map(|m| m.body) {
            Some(Message::Hello(_)) => p,
            other => panic!("expected HELLO, got {other:?}"),
        }
    }

    /// Connects and completes the handshake (HELLO, then FEATURES round trip).
    async fn open(addr: &str) -> Peer {
        let mut p = Peer::connect(addr).await;
        p.send(OfpMessage::new(
            1,
            Message::Hello(openflow::messages::Hello::ofp13()),
        ))
        .await;
        p.send(OfpMessage::new(2, Message::FeaturesRequest)).await;
        match p.recv().await.map(|m| m.body) {
            Some(Message::FeaturesReply(f)) => assert_eq!(f.datapath_id, 7),
            other => panic!("expected FEATURES_REPLY, got {other:?}"),
        }
        p
    }

    async fn send(&mut self, m: OfpMessage) {
        self.0.write_all(&m.encode().unwrap()).await.unwrap();
    }

    /// The next message, or `None` on close (or nothing within 3 s).
    async fn recv(&mut self) -> Option<OfpMessage> {
        let read = async {
            let mut hdr = [0u8; 8];
            self.0.read_exact(&mut hdr).await.ok()?;
            let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
            let mut buf = hdr.to_vec();
            buf.resize(len.max(8), 0);
            self.0.read_exact(&mut buf[8..]).await.ok()?;
            Some(decode(&buf).expect("the agent sends valid messages"))
        };
        tokio::time::timeout(Duration::from_secs(3), read)
            .await
            .ok()
            .flatten()
    }

    /// Sends a bundle control message and returns the answer's bundle error, if any.
    async fn ctrl(&mut self, xid: u32, id: u32, t: BundleCtrlType) -> Option<BundleFailedCode> {
        let m = BundleCtrl {
            bundle_id: id,
            ctrl_type: t,
            flags: BundleFlags::ATOMIC,
            properties: vec![],
        };
        self.send(OfpMessage::new(xid, m.to_message())).await;
        bundle_error(self.recv().await)
    }

    /// Adds a flow-mod to bundle `id`, then a barrier: the bundle error if the add was
    /// refused, `None` if the barrier came back first.
    async fn add(&mut self, xid: u32, id: u32) -> Option<BundleFailedCode> {
        let inner = OfpMessage::new(
            xid,
            Message::FlowMod(FlowMod::add(0, 1, Match::any(), vec![])),
        )
        .encode()
        .unwrap();
        let m = BundleAdd {
            bundle_id: id,
            flags: BundleFlags::ATOMIC,
            message: inner,
            properties: vec![],
        };
        self.send(OfpMessage::new(xid, m.to_message())).await;
        self.send(OfpMessage::new(xid + 1, Message::BarrierRequest))
            .await;
        let first = self.recv().await;
        if matches!(first.as_ref().map(|m| &m.body), Some(Message::BarrierReply)) {
            return None;
        }
        let e = bundle_error(first);
        assert!(matches!(
            self.recv().await.map(|m| m.body),
            Some(Message::BarrierReply)
        ));
        e
    }

    async fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(3), self.0.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

fn bundle_error(m: Option<OfpMessage>) -> Option<BundleFailedCode> {
    match m.map(|m| m.body) {
        Some(Message::Error(e)) => BundleFailedCode::from_error(&e),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_says_nothing_is_dropped_after_the_handshake_timeout() {
    let (agent, addr) = agent(16701).await;
    let start = Instant::now();
    let mut silent = Peer::connect(&addr).await;
    assert!(silent.closed().await, "a silent peer is dropped");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "not before the bound: {took:?}"
    );
    // A peer trickling a header one byte at a time never completes a message: dropped too.
    let mut slow = Peer::connect(&addr).await;
    for b in [4u8, 0, 0] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = slow.0.write_all(&[b]).await;
    }
    assert!(slow.closed().await, "a trickling peer is dropped");
    assert_eq!(agent.counters().handshake_timeouts.load(Relaxed), 2);
    // A peer that says HELLO stays past the bound.
    let mut fine = Peer::open(&addr).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    fine.send(OfpMessage::new(9, Message::EchoRequest(vec![1])))
        .await;
    assert!(matches!(
        fine.recv().await.map(|m| m.body),
        Some(Message::EchoReply(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_listener_cap_are_refused_and_counted() {
    let (agent, addr) = agent(16702).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Peer::open(&addr).await);
    }
    let mut extra = Peer(TcpStream::connect(&addr).await.unwrap());
    assert!(extra.closed().await, "the fourth is closed without a HELLO");
    assert_eq!(agent.counters().connections_refused.load(Relaxed), 1);
    // The three are served; when one goes, a new one gets its slot.
    held[0]
        .send(OfpMessage::new(3, Message::FeaturesRequest))
        .await;
    assert!(held[0].recv().await.is_some());
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    Peer::open(&addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_counts_and_idle_bundles_are_bounded() {
    use BundleCtrlType as T;
    let (agent, addr) = agent(16703).await;
    let mut a = Peer::open(&addr).await;
    // Two open bundles per connection.
    assert_eq!(a.ctrl(10, 1, T::OpenRequest).await, None);
    assert_eq!(a.ctrl(11, 2, T::OpenRequest).await, None);
    assert_eq!(
        a.ctrl(12, 3, T::OpenRequest).await,
        Some(BundleFailedCode::OutOfBundles)
    );
    // An add to a new id would open a third.
    assert_eq!(a.add(13, 4).await, Some(BundleFailedCode::OutOfBundles));
    // Three messages per bundle.
    for x in 0..3 {
        assert_eq!(a.add(20 + 2 * x, 1).await, None);
    }
    assert_eq!(a.add(30, 1).await, Some(BundleFailedCode::MsgTooMany));
    assert_eq!(a.ctrl(32, 1, T::DiscardRequest).await, None);
    // Four messages in all connections' bundles together.
    let mut b = Peer::open(&addr).await;
    for x in 0..3 {
        assert_eq!(a.add(40 + 2 * x, 2).await, None);
    }
    assert_eq!(b.add(50, 7).await, None);
    assert_eq!(b.add(52, 8).await, Some(BundleFailedCode::MsgTooMany));
    // a's messages are released when a goes.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.add(54, 7).await, None);
    let c = agent.counters();
    assert_eq!(c.bundles_out_of_bundles.load(Relaxed), 2);
    assert_eq!(c.bundle_messages_too_many.load(Relaxed), 2);
    // Idle bundles expire with BUNDLE_FAILED/TIMEOUT, each error quoting the bundle's
    // last message: bundle 8 (opened by the refused add, xid 52), then bundle 7 (54).
    let start = Instant::now();
    let mut xids = Vec::new();
    for _ in 0..2 {
        let m = b.recv().await.expect("an expiry error");
        xids.push(m.xid);
        assert_eq!(bundle_error(Some(m)), Some(BundleFailedCode::Timeout));
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(xids, vec![52, 54]);
    assert_eq!(c.bundles_expired.load(Relaxed), 2);
    assert_eq!(
        b.ctrl(60, 7, T::CommitRequest).await,
        Some(BundleFailedCode::BadId),
        "an expired bundle is gone"
    );
}
