//! The OpenFlow 1.3 agent: the protocol engine between controllers (os-ken,
//! ONOS, ...) or tools (`ovs-ofctl -O OpenFlow13`) and the switch.
//!
//! The agent owns what is per connection or between connections: transports
//! and reconnection, HELLO negotiation, ECHO and the inactivity probe, error
//! replies to malformed input, controller roles and generation ids, async
//! configuration, the filtering and rate limiting of asynchronous messages.
//! What a message *means* to the switch (flow-mods, stats, packet-out...) is
//! behind [`OfSwitch`], which ferroflowd implements over its pipeline.

mod bundle;
mod conn;
mod counters;
#[doc(hidden)]
pub mod fuzzing;
mod roles;
mod target;
mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use counters::AgentCounters;
use openflow::messages::{FlowRemoved, PacketIn, PortStatus, SwitchFeatures};
use openflow::{ErrorCode, Message};
pub use target::{Target, TargetError};
pub use tls::{Tls, TlsError, TlsFiles};

/// The switch as the agent sees it.
pub trait OfSwitch: Send + Sync + 'static {
    fn features(&self) -> SwitchFeatures;

    /// Handles every request the agent does not answer itself (flow, group,
    /// meter, port and table mods, packet-out, multipart, switch config,
    /// queue config). Returns the replies to send, in order (a multipart
    /// reply may be several messages), or the error to answer with.
    fn handle(&self, request: &Message) -> Result<Vec<Message>, ErrorCode>;

    /// Returns once every change made by earlier requests is visible to every
    /// packet (the BARRIER_REPLY promise). Bounded: when the switch cannot keep
    /// that promise in time (a stuck worker) it returns the error the requester
    /// gets instead of BARRIER_REPLY.
    fn barrier(&self) -> Result<(), ErrorCode>;

    /// The barrier's fast path, which must not block: publishes pending
    /// changes and returns true when every packet already sees them (the
    /// usual case), false when [`OfSwitch::barrier`] must wait for the workers.
    fn try_barrier(&self) -> bool;

    /// Checks a message as it is added to a bundle: the error the switch would
    /// refuse it with now. Only flow-mods reach it.
    fn bundle_check(&self, request: &Message) -> Result<(), ErrorCode>;

    /// Commits a bundle: applies the messages in order, all or none, and makes
    /// them visible to packets at once (no packet sees part of it), before
    /// returning. On failure, nothing changed; the error names the index of the
    /// message that failed.
    fn bundle_commit(&self, requests: &[Message]) -> Result<(), (usize, ErrorCode)>;

    /// [`OfSwitch::bundle_check`] that also returns what the bundle keeps of the message
    /// until its commit: the message itself (the default), or the switch's own checked
    /// form of it, so that a commit of 100k flow-mods does not convert each one again.
    /// A switch that returns [`Staged::Converted`] must override
    /// [`OfSwitch::bundle_commit_staged`].
    fn bundle_stage(&self, request: Message) -> Result<Staged, ErrorCode> {
        self.bundle_check(&request)?;
        Ok(Staged::Message(request))
    }

    /// [`OfSwitch::handle`] of a FLOW_MOD read from its bytes (`raw`: the whole message),
    /// for a switch that reads common flow-mods without decoding them into [`Message`]
    /// first. `Some`: the flow-mod was taken (and applied, or refused when applied, with
    /// the error to answer); `None` (the default): the agent decodes the message and
    /// calls [`OfSwitch::handle`] as before, so a switch returns `None` for anything it
    /// does not read itself or would refuse before applying it, and the general path
    /// gives the error.
    fn flow_mod_raw(&self, _raw: &[u8]) -> Option<Result<(), ErrorCode>> {
        None
    }

    /// [`OfSwitch::bundle_stage`] of a FLOW_MOD read from its bytes (`raw`: the whole
    /// inner message, its version and xid already checked), for a switch that reads
    /// common flow-mods without decoding them into [`Message`] first (a bundle of 100k
    /// flow-mods decoded each into the codec's types, then converted). `None` (the
    /// default): the agent decodes the message and calls [`OfSwitch::bundle_stage`] as
    /// before, so a switch returns `None` for anything it would refuse or does not read
    /// itself, and the general path gives the error.
    fn bundle_stage_raw(&self, _raw: &[u8]) -> Option<Staged> {
        None
    }

    /// [`OfSwitch::bundle_commit`] of what [`OfSwitch::bundle_stage`] kept, same promise.
    /// The default commits the kept messages and refuses converted forms it cannot know.
    fn bundle_commit_staged(&self, staged: Vec<Staged>) -> Result<(), (usize, ErrorCode)> {
        let mut msgs = Vec::with_capacity(staged.len());
        for (i, s) in staged.into_iter().enumerate() {
            match s {
                Staged::Message(m) => msgs.push(m),
                Staged::Converted(_) => {
                    return Err((
                        i,
                        ErrorCode::BadRequest(openflow::error::BadRequestCode::BadType),
                    ))
                }
            }
        }
        self.bundle_commit(&msgs)
    }
}

/// One message of a bundle as the switch asked to keep it ([`OfSwitch::bundle_stage`]).
pub enum Staged {
    /// The message as decoded: the commit works from it.
    Message(Message),
    /// The switch's checked form of the message, only for that switch's commit.
    Converted(Box<dyn std::any::Any + Send + Sync>),
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staged::Message(m) => f.debug_tuple("Message").field(m).finish(),
            Staged::Converted(_) => f.write_str("Converted(..)"),
        }
    }
}

/// Something the switch tells controllers without being asked.
#[derive(Debug, Clone)]
pub enum AsyncEvent {
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
}

/// Agent settings; the defaults match Open vSwitch's.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Idle time after which an ECHO_REQUEST probes the peer; twice this
    /// without any message closes the connection.
    pub probe_interval: Duration,
    /// Longest back-off between reconnection attempts to a controller.
    pub max_backoff: Duration,
    /// PACKET_INs per second per connection (a token bucket) and its burst.
    pub packet_in_rate: u32,
    pub packet_in_burst: u32,
    /// Certificates for `ssl:` and `pssl:` targets.
    pub tls: Option<Tls>,
    /// What one peer, and all of them together, can make the agent hold.
    pub limits: AgentLimits,
}

/// Bounds on what peers can make the agent hold. Each exceeded limit is answered with
/// the spec's error where there is one, and counted in [`AgentCounters`].
#[derive(Debug, Clone, Copy)]
pub struct AgentLimits {
    pub bundles: BundleLimits,
    /// Connections one passive listener serves at once; more are closed as they are
    /// accepted (`connections_refused`). Default 256.
    pub connections_per_listener: usize,
    /// From accept (or connect) to a first OpenFlow message, TLS handshake included; a peer
    /// that says nothing within it is dropped (`handshake_timeouts`). Default 10 s.
    pub handshake_timeout: Duration,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            bundles: BundleLimits::default(),
            connections_per_listener: 256,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Bounds on bundles (the memory a peer can make the switch hold before a commit).
#[derive(Debug, Clone, Copy)]
pub struct BundleLimits {
    /// Open bundles per connection; one more is BUNDLE_FAILED/OUT_OF_BUNDLES. Default 64.
    pub per_connection: usize,
    /// Messages in one bundle; one more is BUNDLE_FAILED/MSG_TOO_MANY. Default 262144
    /// (`ovs-ofctl --bundle add-flows` of 100k flows fits twice).
    pub messages_per_bundle: usize,
    /// Messages in the open bundles of all connections together; one more is
    /// BUNDLE_FAILED/MSG_TOO_MANY. Default 1048576 (a few hundred MB of flow-mods).
    pub messages_total: usize,
    /// A bundle neither added to, closed nor committed for this long is discarded with
    /// BUNDLE_FAILED/TIMEOUT (`bundles_expired`). Default 10 s, as Open vSwitch.
    pub idle_timeout: Duration,
}

impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits {
            per_connection: 64,
            messages_per_bundle: 1 << 18,
            messages_total: 1 << 20,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            probe_interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(8),
            packet_in_rate: 1000,
            packet_in_burst: 100,
            tls: None,
            limits: AgentLimits::default(),
        }
    }
}

/// The running agent: connections come and go inside it.
pub struct Agent {
    shared: Arc<conn::Shared>,
}

impl Agent {
    pub fn new(switch: Arc<dyn OfSwitch>, config: AgentConfig) -> Agent {
        Agent {
            shared: Arc::new(conn::Shared::new(switch, config)),
        }
    }

    /// Accepts tool and controller connections on a passive target
    /// (`ptcp:`, `punix:`). Binds before returning, so errors are immediate.
    pub async fn listen(&self, target: &Target) -> Result<(), TargetError> {
        conn::listen(Arc::clone(&self.shared), target).await
    }

    /// Keeps a connection to a controller (`tcp:`, `unix:`), reconnecting
    /// with back-off.
    pub fn connect(&self, target: Target) {
        tokio::spawn(conn::keep_connected(Arc::clone(&self.shared), target));
    }

    /// Sends an event to every connection whose role and async configuration
    /// ask for it. Never blocks: a connection that cannot take it drops it,
    /// and the drop is counted.
    pub fn publish(&self, event: &AsyncEvent) {
        self.shared.publish(event);
    }

    /// Connections that completed the handshake, controllers and tools.
    pub fn connections(&self) -> usize {
        self.shared.connections()
    }

    /// Active controller connections (from `connect`) that are up.
    pub fn controllers_connected(&self) -> usize {
        self.shared.controllers_connected()
    }

    pub fn counters(&self) -> &AgentCounters {
        &self.shared.counters
    }

    /// Like [`Agent::connect`], but the connection can be watched and ended:
    /// dropping the returned link closes it and stops reconnecting.
    pub fn connect_controller(&self, target: Target) -> ControllerLink {
        let state = Arc::new(conn::LinkState::default());
        let task = tokio::spawn(conn::keep_connected_with(
            Arc::clone(&self.shared),
            target.clone(),
            Some(Arc::clone(&state)),
        ));
        ControllerLink {
            target,
            state,
            task,
        }
    }
}

/// A controller connection the agent keeps up (reconnecting with back-off)
/// for as long as this value lives.
#[derive(Debug)]
pub struct ControllerLink {
    target: Target,
    state: Arc<conn::LinkState>,
    task: tokio::task::JoinHandle<()>,
}

impl ControllerLink {
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The OpenFlow handshake completed and the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.state.up.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ControllerLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
