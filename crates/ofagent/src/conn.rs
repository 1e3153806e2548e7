use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openflow::bundle::{BundleCtrlType, BundleError, BundleFailedCode, BundleMsg, BundleMsgRef};
use openflow::consts::async_mask as am;
use openflow::error::BadRequestCode;
use openflow::header::OFP_MAX_MSG_LEN;
use openflow::messages::{AsyncConfig, ControllerRole, Hello, RoleMsg};
use openflow::{
    decode, frame_len, EncodeError, ErrorCode, Message, MsgType, OfpMessage, OFP_HEADER_LEN,
    OFP_VERSION,
};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tracing::{debug, info, warn};

use crate::bundle::{BundleMessages, Bundles};
use crate::counters::AgentCounters;
use crate::roles::Generation;
use crate::target::{Target, TargetError};
use crate::{AgentConfig, AsyncEvent, OfSwitch};

/// Picks the masks of one message kind out of an async configuration.
type MaskOf = fn(&AsyncConfig) -> [u32; 2];

/// Outgoing messages queued per connection before async events are dropped.
const TX_QUEUE: usize = 1024;

/// Room for at least this many bytes is free in the read buffer before each read.
const READ_SIZE: usize = 65536;

pub(crate) struct Shared {
    pub switch: Arc<dyn OfSwitch>,
    pub config: AgentConfig,
    pub counters: AgentCounters,
    conns: Mutex<HashMap<u64, Arc<ConnHandle>>>,
    generation: Mutex<Generation>,
    next_id: AtomicU64,
    controllers_up: AtomicUsize,
    bundle_messages: Arc<BundleMessages>,
}

/// A connection as other connections and the event publisher see it.
struct ConnHandle {
    tx: mpsc::Sender<Vec<u8>>,
    state: Mutex<ConnState>,
}

struct ConnState {
    role: ControllerRole,
    async_config: AsyncConfig,
    /// Packet-in token bucket.
    tokens: f64,
    refilled: Instant,
}

/// OpenFlow 1.3's default asynchronous configuration (section 6.1.1): a
/// master or equal gets table-miss and action packet-ins, every port status
/// and flow removal; a slave gets port status only.
fn default_async() -> AsyncConfig {
    let all_port = am::PORT_STATUS_ADD | am::PORT_STATUS_DELETE | am::PORT_STATUS_MODIFY;
    let all_removed = am::FLOW_REMOVED_IDLE_TIMEOUT
        | am::FLOW_REMOVED_HARD_TIMEOUT
        | am::FLOW_REMOVED_DELETE
        | am::FLOW_REMOVED_GROUP_DELETE;
    AsyncConfig {
        packet_in_mask: [am::PACKET_IN_NO_MATCH | am::PACKET_IN_ACTION, 0],
        port_status_mask: [all_port, all_port],
        flow_removed_mask: [all_removed, 0],
    }
}

impl Shared {
    pub fn new(switch: Arc<dyn OfSwitch>, config: AgentConfig) -> Shared {
        Shared {
            switch,
            config,
            counters: AgentCounters::default(),
            conns: Mutex::new(HashMap::new()),
            generation: Mutex::new(Generation::default()),
            next_id: AtomicU64::new(1),
            controllers_up: AtomicUsize::new(0),
            bundle_messages: Arc::default(),
        }
    }

    pub fn connections(&self) -> usize {
        self.conns.lock().len()
    }

    pub fn controllers_connected(&self) -> usize {
        self.controllers_up.load(Relaxed)
    }

    pub fn publish(&self, event: &AsyncEvent) {
        let (msg, reason, pick): (Message, u8, MaskOf) = match event {
            AsyncEvent::PacketIn(p) => (Message::PacketIn(p.clone()), p.reason.raw(), |c| {
                c.packet_in_mask
            }),
            AsyncEvent::FlowRemoved(f) => (Message::FlowRemoved(f.clone()), f.reason.raw(), |c| {
                c.flow_removed_mask
            }),
            AsyncEvent::PortStatus(s) => (Message::PortStatus(*s), s.reason.raw(), |c| {
                c.port_status_mask
            }),
        };
        let is_packet_in = matches!(event, AsyncEvent::PacketIn(_));
        let Ok(bytes) = (OfpMessage { xid: 0, body: msg }).encode() else {
            AgentCounters::inc(&self.counters.async_dropped);
            return;
        };
        let conns: Vec<Arc<ConnHandle>> = self.conns.lock().values().cloned().collect();
        for c in conns {
            let mut st = c.state.lock();
            let masks = pick(&st.async_config);
            let mask = if st.role == ControllerRole::Slave {
                masks[1]
            } else {
                masks[0]
            };
            if reason >= 32 || mask & (1 << reason) == 0 {
                continue;
            }
            if is_packet_in {
                let now = Instant::now();
                let rate = f64::from(self.config.packet_in_rate);
                st.tokens = (st.tokens + now.duration_since(st.refilled).as_secs_f64() * rate)
                    .min(f64::from(self.config.packet_in_burst));
                st.refilled = now;
                if st.tokens < 1.0 {
                    AgentCounters::inc(&self.counters.packet_ins_dropped);
                    continue;
                }
                st.tokens -= 1.0;
            }
            drop(st);
            match c.tx.try_send(bytes.clone()) {
                Ok(()) if is_packet_in => AgentCounters::inc(&self.counters.packet_ins_sent),
                Ok(()) => {}
                Err(_) if is_packet_in => AgentCounters::inc(&self.counters.packet_ins_dropped),
                Err(_) => AgentCounters::inc(&self.counters.async_dropped),
            }
        }
    }
}

/// The connections one listener serves now, against its cap.
struct ListenerSlots {
    live: Arc<AtomicUsize>,
    cap: usize,
}

/// One served connection: frees its slot when the connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl ListenerSlots {
    fn new(cap: usize) -> ListenerSlots {
        ListenerSlots {
            live: Arc::default(),
            cap,
        }
    }

    /// A slot for a new connection, or `None` (counted) when the listener is full: the
    /// caller closes the connection at once.
    fn take(&self, shared: &Shared, target: &Target) -> Option<Slot> {
        let taken = self
            .live
            .fetch_update(Relaxed, Relaxed, |n| (n < self.cap).then_some(n + 1))
            .is_ok();
        if taken {
            Some(Slot(Arc::clone(&self.live)))
        } else {
            let refused = shared.counters.connections_refused.fetch_add(1, Relaxed);
            // One line per 1024 refusals: a flood must not flood the log too.
            if refused.is_multiple_of(1024) {
                warn!(%target, cap = self.cap, refused = refused + 1, "connection refused: listener full");
            }
            None
        }
    }
}

/// Bounds a TLS handshake by the handshake timeout (counted as one when it runs out).
async fn bounded_tls<T, E: std::fmt::Display>(
    shared: &Shared,
    handshake: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(shared.config.limits.handshake_timeout, handshake).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            AgentCounters::inc(&shared.counters.handshake_timeouts);
            Err("no TLS handshake within the handshake timeout".into())
        }
    }
}

pub(crate) async fn listen(shared: Arc<Shared>, target: &Target) -> Result<(), TargetError> {
    let slots = ListenerSlots::new(shared.config.limits.connections_per_listener);
    let target_name = target.clone();
    let bind_err = |source| TargetError::Bind {
        target: target.to_string(),
        source,
    };
    match target {
        Target::PassiveTcp(addr) => {
            let l = TcpListener::bind(addr).await.map_err(bind_err)?;
            info!(%target, "OpenFlow listener ready");
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, peer)) => {
                            let Some(slot) = slots.take(&shared, &target_name) else {
                                continue;
                            };
                            let _ = s.set_nodelay(true);
                            let shared = Arc::clone(&shared);
                            tokio::spawn(async move {
                                serve(shared, s, peer.to_string(), false, None).await;
                                drop(slot);
                            });
                        }
                        Err(e) => {
                            warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        Target::PassiveUnix(path) => {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).map_err(bind_err)?;
            info!(%target, "OpenFlow listener ready");
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            let Some(slot) = slots.take(&shared, &target_name) else {
                                continue;
                            };
                            let shared = Arc::clone(&shared);
                            tokio::spawn(async move {
                                serve(shared, s, "unix".into(), false, None).await;
                                drop(slot);
                            });
                        }
                        Err(e) => {
                            warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        Target::PassiveSsl(addr) => {
            let tls = shared
                .config
                .tls
                .clone()
                .ok_or_else(|| TargetError::TlsNotConfigured {
                    target: target.to_string(),
                })?;
            let l = TcpListener::bind(addr).await.map_err(bind_err)?;
            info!(%target, "OpenFlow listener ready");
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, peer)) => {
                            let Some(slot) = slots.take(&shared, &target_name) else {
                                continue;
                            };
                            let _ = s.set_nodelay(true);
                            let shared = Arc::clone(&shared);
                            let acceptor = tls.acceptor.clone();
                            tokio::spawn(async move {
                                match bounded_tls(&shared, acceptor.accept(s)).await {
                                    Ok(s) => serve(shared, s, peer.to_string(), false, None).await,
                                    Err(e) => {
                                        AgentCounters::inc(&shared.counters.tls_failures);
                                        warn!(%peer, "TLS handshake failed: {e}");
                                    }
                                }
                                drop(slot);
                            });
                        }
                        Err(e) => {
                            warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        _ => return Err(TargetError::Syntax(target.to_string())),
    }
    Ok(())
}

/// A controller connection's state, shared with its [`crate::ControllerLink`].
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    pub up: std::sync::atomic::AtomicBool,
}

/// Aborts the connection's task when the loop that awaits it is itself
/// aborted (a removed controller), so that no connection outlives its link.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn keep_connected(shared: Arc<Shared>, target: Target) {
    keep_connected_with(shared, target, None).await
}

pub(crate) async fn keep_connected_with(
    shared: Arc<Shared>,
    target: Target,
    link: Option<Arc<LinkState>>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let connected = match &target {
            Target::Tcp(addr) => match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    Some(tokio::spawn(serve(
                        Arc::clone(&shared),
                        s,
                        target.to_string(),
                        true,
                        link.clone(),
                    )))
                }
                Err(e) => {
                    debug!(%target, "connect: {e}");
                    None
                }
            },
            Target::Ssl(addr) => {
                match (TcpStream::connect(addr).await, shared.config.tls.clone()) {
                    (Ok(s), Some(tls)) => {
                        let _ = s.set_nodelay(true);
                        let name = ServerName::IpAddress(addr.ip().into());
                        match bounded_tls(&shared, tls.connector.connect(name, s)).await {
                            Ok(s) => Some(tokio::spawn(serve(
                                Arc::clone(&shared),
                                s,
                                target.to_string(),
                                true,
                                link.clone(),
                            ))),
                            Err(e) => {
                                AgentCounters::inc(&shared.counters.tls_failures);
                                warn!(%target, "TLS handshake failed: {e}");
                                None
                            }
                        }
                    }
                    (Ok(_), None) => {
                        warn!(%target, "ssl: needs TLS certificates in [openflow]");
                        return;
                    }
                    (Err(e), _) => {
                        debug!(%target, "connect: {e}");
                        None
                    }
                }
            }
            Target::Unix(path) => match UnixStream::connect(path).await {
                Ok(s) => Some(tokio::spawn(serve(
                    Arc::clone(&shared),
                    s,
                    target.to_string(),
                    true,
                    link.clone(),
                ))),
                Err(e) => {
                    debug!(%target, "connect: {e}");
                    None
                }
            },
            _ => {
                warn!(%target, "not an active target");
                return;
            }
        };
        if let Some(task) = connected {
            let mut task = AbortOnDrop(task);
            let _ = (&mut task.0).await;
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.config.max_backoff);
    }
}

/// The requests a slave may not send (OpenFlow 1.3.5, 6.3.5).
fn modifies_state(t: MsgType) -> bool {
    matches!(
        t,
        MsgType::FlowMod
            | MsgType::GroupMod
            | MsgType::PortMod
            | MsgType::TableMod
            | MsgType::MeterMod
            | MsgType::PacketOut
    )
}

/// Splits every multipart reply into messages that fit OpenFlow's 16-bit length, all
/// before anything is sent: a reply that cannot be sent whole is refused whole.
fn fit_replies(replies: Vec<Message>) -> Result<Vec<Message>, EncodeError> {
    let mut out = Vec::with_capacity(replies.len());
    for r in replies {
        match r {
            Message::MultipartReply(m) => out.extend(
                m.split_to_fit(OFP_MAX_MSG_LEN)?
                    .into_iter()
                    .map(Message::MultipartReply),
            ),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Why a connection ends.
enum Close {
    Peer,
    Io(std::io::Error),
    Unframeable,
    HelloFailed,
    ProbeTimeout,
    HandshakeTimeout,
}

pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    shared: Arc<Shared>,
    stream: S,
    peer: String,
    active: bool,
    link: Option<Arc<LinkState>>,
) {
    AgentCounters::inc(&shared.counters.connections_accepted);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TX_QUEUE);
    let writer_counters = Arc::clone(&shared);
    let writer = tokio::spawn(async move {
        while let Some(buf) = rx.recv().await {
            if wr.write_all(&buf).await.is_err() {
                break;
            }
            writer_counters.counters.messages_sent.fetch_add(1, Relaxed);
        }
        let _ = wr.shutdown().await;
    });
    let id = shared.next_id.fetch_add(1, Relaxed);
    let handle = Arc::new(ConnHandle {
        tx: tx.clone(),
        state: Mutex::new(ConnState {
            role: ControllerRole::Equal,
            async_config: default_async(),
            tokens: f64::from(shared.config.packet_in_burst),
            refilled: Instant::now(),
        }),
    });
    let mut conn = Conn {
        shared: Arc::clone(&shared),
        id,
        handle,
        tx,
        registered: false,
        active,
        link,
        bundles: Bundles::new(
            shared.config.limits.bundles,
            Arc::clone(&shared.bundle_messages),
        ),
    };
    conn.send(OfpMessage {
        xid: 0,
        body: Message::Hello(Hello::ofp13()),
    })
    .await;
    let why = conn.run(&mut rd).await;
    match &why {
        Close::Peer => debug!(%peer, "connection closed by peer"),
        Close::Io(e) => debug!(%peer, "connection error: {e}"),
        Close::Unframeable => {
            warn!(%peer, "closing: a message header with a length below 8 cannot be resynchronised")
        }
        Close::HelloFailed => warn!(%peer, "closing: no common OpenFlow version"),
        Close::ProbeTimeout => warn!(%peer, "closing: no reply to the inactivity probe"),
        Close::HandshakeTimeout => {
            warn!(%peer, "closing: no OpenFlow message within the handshake timeout")
        }
    }
    conn.unregister();
    drop(conn);
    let _ = writer.await;
    AgentCounters::inc(&shared.counters.connections_closed);
}

struct Conn {
    shared: Arc<Shared>,
    id: u64,
    handle: Arc<ConnHandle>,
    tx: mpsc::Sender<Vec<u8>>,
    registered: bool,
    active: bool,
    link: Option<Arc<LinkState>>,
    /// Open bundles: discarded with the connection.
    bundles: Bundles,
}

/// An aborted connection (its controller was removed) unregisters too.
impl Drop for Conn {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Conn {
    async fn send(&self, msg: OfpMessage) {
        match msg.encode() {
            Ok(b) => {
                let _ = self.tx.send(b).await;
            }
            Err(e) => {
                AgentCounters::inc(&self.shared.counters.replies_too_long);
                warn!("cannot encode {:?}: {e}", msg.body.msg_type());
            }
        }
    }

    async fn send_error(&self, code: ErrorCode, request: &[u8]) {
        AgentCounters::inc(&self.shared.counters.errors_sent);
        self.send(code.reply_to(request)).await;
    }

    fn register(&mut self) {
        if !self.registered {
            self.shared
                .conns
                .lock()
                .insert(self.id, Arc::clone(&self.handle));
            if self.active {
                self.shared.controllers_up.fetch_add(1, Relaxed);
            }
            if let Some(l) = &self.link {
                l.up.store(true, Relaxed);
            }
            self.registered = true;
        }
    }

    fn unregister(&mut self) {
        if self.registered {
            self.shared.conns.lock().remove(&self.id);
            if self.active {
                self.shared.controllers_up.fetch_sub(1, Relaxed);
            }
            if let Some(l) = &self.link {
                l.up.store(false, Relaxed);
            }
            self.registered = false;
        }
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Close {
        let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
        let mut last_rx = Instant::now();
        // When the inactivity probe went out, if it did since the last input.
        let mut probe_sent: Option<Instant> = None;
        let probe = self.shared.config.probe_interval;
        let handshake_deadline = Instant::now() + self.shared.config.limits.handshake_timeout;
        let mut hello_seen = false;
        loop {
            for err in self.bundles.expire(Instant::now()) {
                AgentCounters::inc(&self.shared.counters.bundles_expired);
                AgentCounters::inc(&self.shared.counters.errors_sent);
                self.send(err).await;
            }
            // Every complete message in the buffer first, in place; what they took is
            // dropped from the buffer once, after them (draining each message from the
            // front moved the rest of a 64 KiB read each time: a read of 500 bundled
            // flow-mods moved 16 MB).
            let mut at = 0;
            loop {
                let rest = &buf[at..];
                let len = match frame_len(rest) {
                    Ok(Some(len)) => len,
                    Ok(None) => break,
                    Err(e) => {
                        AgentCounters::inc(&self.shared.counters.malformed_messages);
                        self.send_error(e.code(), &rest[..rest.len().min(64)]).await;
                        return Close::Unframeable;
                    }
                };
                self.shared.counters.messages_received.fetch_add(1, Relaxed);
                let raw = &buf[at..at + len];
                at += len;
                if let Some(close) = self.dispatch(raw, &mut hello_seen).await {
                    return close;
                }
            }
            buf.drain(..at);
            if !hello_seen && Instant::now() >= handshake_deadline {
                AgentCounters::inc(&self.shared.counters.handshake_timeouts);
                return Close::HandshakeTimeout;
            }
            // The next thing due: the probe, the probe's deadline, the handshake deadline,
            // a bundle's expiry.
            let mut due = match probe_sent {
                Some(at) => at + probe,
                None => last_rx + probe,
            };
            if !hello_seen {
                due = due.min(handshake_deadline);
            }
            if let Some(at) = self.bundles.next_expiry() {
                due = due.min(at);
            }
            let wait = due.saturating_duration_since(Instant::now());
            // Read into the buffer's free room (a read into a separate chunk copied every
            // byte again, ~110 instructions of each BUNDLE_ADD).
            buf.reserve(READ_SIZE);
            match tokio::time::timeout(wait.max(Duration::from_millis(10)), rd.read_buf(&mut buf))
                .await
            {
                Ok(Ok(0)) => return Close::Peer,
                Ok(Ok(_)) => {
                    last_rx = Instant::now();
                    probe_sent = None;
                }
                Ok(Err(e)) => return Close::Io(e),
                Err(_) => match probe_sent {
                    Some(at) if at.elapsed() >= probe => {
                        AgentCounters::inc(&self.shared.counters.probe_timeouts);
                        return Close::ProbeTimeout;
                    }
                    Some(_) => {}
                    None if last_rx.elapsed() >= probe => {
                        self.send(OfpMessage {
                            xid: 0,
                            body: Message::EchoRequest(Vec::new()),
                        })
                        .await;
                        probe_sent = Some(Instant::now());
                    }
                    None => {}
                },
            }
        }
    }

    /// Handles one whole message; `Some` closes the connection.
    async fn dispatch(&mut self, raw: &[u8], hello_seen: &mut bool) -> Option<Close> {
        // A slave's state-changing request is refused before anything else is checked
        // (OpenFlow 1.3.5, 6.3.5): whatever else is wrong with it, the role answers first.
        if raw.len() >= OFP_HEADER_LEN
            && raw[0] == OFP_VERSION
            && MsgType::from_raw(raw[1]).is_some_and(modifies_state)
            && self.handle.state.lock().role == ControllerRole::Slave
        {
            self.send_error(ErrorCode::BadRequest(BadRequestCode::IsSlave), raw)
                .await;
            return None;
        }
        // A bundle message is read from its bytes as they are (a BUNDLE_ADD per bundled
        // flow-mod: decoding it as an EXPERIMENTER first copied it twice); anything
        // `parse_raw` leaves is decoded, bundle or not, exactly as before.
        if let Some(parsed) = BundleMsg::parse_raw(raw) {
            if !*hello_seen {
                // A peer that skips HELLO but speaks 1.3 is served (OVS does the same).
                *hello_seen = true;
                self.register();
            }
            let xid = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            self.bundle(xid, raw, parsed).await;
            return None;
        }
        // A common FLOW_MOD is read by the switch from its bytes (no decode into the
        // codec's types first); what it leaves is decoded and handled below, errors
        // included. After HELLO only, so that the first message still registers the peer.
        if *hello_seen
            && raw.len() >= OFP_HEADER_LEN
            && raw[0] == OFP_VERSION
            && raw[1] == MsgType::FlowMod.raw()
        {
            if let Some(r) = self.shared.switch.flow_mod_raw(raw) {
                if let Err(code) = r {
                    self.send_error(code, raw).await;
                }
                return None;
            }
        }
        let msg = match decode(raw) {
            Ok(m) => m,
            Err(e) => {
                AgentCounters::inc(&self.shared.counters.malformed_messages);
                debug!("malformed message: {e}");
                if let Some(reply) = e.reply_to(raw) {
                    AgentCounters::inc(&self.shared.counters.errors_sent);
                    self.send(reply).await;
                }
                return None;
            }
        };
        let xid = msg.xid;
        if let Message::Hello(h) = &msg.body {
            return match h.negotiate() {
                Ok(_) => {
                    *hello_seen = true;
                    self.register();
                    None
                }
                Err(code) => {
                    AgentCounters::inc(&self.shared.counters.version_mismatches);
                    self.send_error(code, raw).await;
                    Some(Close::HelloFailed)
                }
            };
        }
        if !*hello_seen {
            // A peer that skips HELLO but speaks 1.3 is served (OVS does the same).
            *hello_seen = true;
            self.register();
        }
        // Open vSwitch's Geneve TLV map messages are the switch's to answer.
        let tlv = matches!(&msg.body, Message::Experimenter(e)
            if openflow::tlv::TlvMsg::parse(e).is_some());
        if let Some(code) = msg.experimenter_error().filter(|_| !tlv) {
            AgentCounters::inc(&self.shared.counters.experimenter_refused);
            self.send_error(code, raw).await;
            return None;
        }
        let reply = |body| OfpMessage { xid, body };
        match &msg.body {
            Message::EchoRequest(data) => self.send(reply(Message::EchoReply(data.clone()))).await,
            Message::EchoReply(_) | Message::Error(_) => {}
            Message::FeaturesRequest => {
                self.send(reply(Message::FeaturesReply(self.shared.switch.features())))
                    .await
            }
            Message::BarrierRequest => {
                let sw = Arc::clone(&self.shared.switch);
                // block_in_place hands the runtime to another thread, which costs more
                // than the publish itself: only when the workers must be waited for.
                let done = if sw.try_barrier() {
                    Ok(())
                } else {
                    tokio::task::block_in_place(|| sw.barrier())
                };
                match done {
                    Ok(()) => self.send(reply(Message::BarrierReply)).await,
                    Err(code) => self.send_error(code, raw).await,
                }
            }
            Message::RoleRequest(r) => match self.role_request(r) {
                Ok(m) => self.send(reply(Message::RoleReply(m))).await,
                Err(code) => self.send_error(code, raw).await,
            },
            Message::GetAsyncRequest => {
                let cfg = self.handle.state.lock().async_config;
                self.send(reply(Message::GetAsyncReply(cfg))).await;
            }
            Message::SetAsync(cfg) => self.handle.state.lock().async_config = *cfg,
            // Messages only a switch sends.
            Message::Hello(_)
            | Message::FeaturesReply(_)
            | Message::GetConfigReply(_)
            | Message::PacketIn(_)
            | Message::FlowRemoved(_)
            | Message::PortStatus(_)
            | Message::MultipartReply(_)
            | Message::BarrierReply
            | Message::QueueGetConfigReply(_)
            | Message::RoleReply(_)
            | Message::GetAsyncReply(_) => {
                self.send_error(ErrorCode::BadRequest(BadRequestCode::BadType), raw)
                    .await;
            }
            body => {
                if let Err(code) = body.validate() {
                    AgentCounters::inc(&self.shared.counters.malformed_messages);
                    self.send_error(code, raw).await;
                    return None;
                }
                let sw = Arc::clone(&self.shared.switch);
                // A flow-mod is short (a table lock, a conversion, an insert; a
                // non-strict delete of 100k entries takes tens of milliseconds): run
                // in place, as a thread hand-off per flow-mod would cost more.
                // Anything else (dumps, packet-out) may take longer.
                let r = if matches!(body, Message::FlowMod(_)) {
                    sw.handle(body)
                } else {
                    tokio::task::block_in_place(|| sw.handle(body))
                };
                match r.and_then(|replies| {
                    fit_replies(replies).map_err(|e| {
                        AgentCounters::inc(&self.shared.counters.replies_too_long);
                        warn!("refusing a request whose reply cannot be sent: {e}");
                        e.code()
                    })
                }) {
                    Ok(replies) => {
                        for r in replies {
                            self.send(reply(r)).await;
                        }
                    }
                    Err(code) => self.send_error(code, raw).await,
                }
            }
        }
        None
    }

    /// A bundle message: replies and errors go out in order; a commit may wait for the
    /// workers (as a barrier does).
    async fn bundle(
        &mut self,
        xid: u32,
        raw: &[u8],
        parsed: Result<BundleMsgRef<'_>, BundleError>,
    ) {
        let slave = self.handle.state.lock().role == ControllerRole::Slave;
        let commit = matches!(&parsed, Ok(BundleMsgRef::Ctrl(c)) if c.ctrl_type == BundleCtrlType::CommitRequest);
        let sw = Arc::clone(&self.shared.switch);
        let bundles = &mut self.bundles;
        let out = if commit {
            tokio::task::block_in_place(|| bundles.handle(&*sw, xid, raw, parsed, slave))
        } else {
            bundles.handle(&*sw, xid, raw, parsed, slave)
        };
        let counters = &self.shared.counters;
        for m in out {
            match &m.body {
                Message::Error(e) => {
                    AgentCounters::inc(&counters.bundle_errors);
                    AgentCounters::inc(&counters.errors_sent);
                    match BundleFailedCode::from_error(e) {
                        Some(BundleFailedCode::OutOfBundles) => {
                            AgentCounters::inc(&counters.bundles_out_of_bundles)
                        }
                        Some(BundleFailedCode::MsgTooMany) => {
                            AgentCounters::inc(&counters.bundle_messages_too_many)
                        }
                        _ => {}
                    }
                }
                _ if commit => AgentCounters::inc(&counters.bundles_committed),
                _ => {}
            }
            self.send(m).await;
        }
    }

    fn role_request(&self, r: &RoleMsg) -> Result<RoleMsg, ErrorCode> {
        let mut generation = self.shared.generation.lock();
        if r.role != ControllerRole::NoChange {
            generation.check(r.role, r.generation_id)?;
            if r.role == ControllerRole::Master {
                // There is one master: the others become slaves. The connection list is
                // copied first, so no connection's state is locked under the list's lock.
                let others: Vec<Arc<ConnHandle>> = self
                    .shared
                    .conns
                    .lock()
                    .iter()
                    .filter(|(id, _)| **id != self.id)
                    .map(|(_, c)| Arc::clone(c))
                    .collect();
                for c in others {
                    let mut st = c.state.lock();
                    if st.role == ControllerRole::Master {
                        st.role = ControllerRole::Slave;
                    }
                }
            }
            self.handle.state.lock().role = r.role;
        }
        Ok(RoleMsg {
            role: self.handle.state.lock().role,
            generation_id: generation.current(),
        })
    }
}
