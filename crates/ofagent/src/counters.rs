use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the agent saw and did, for metrics. Bad input is counted by kind.
#[derive(Debug, Default)]
pub struct AgentCounters {
    pub connections_accepted: AtomicU64,
    pub connections_closed: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    /// Messages that failed to decode (malformed, truncated, bad version...).
    pub malformed_messages: AtomicU64,
    /// Replies that could not be encoded even split (a multipart entry over 65535 bytes):
    /// the request got BAD_REQUEST/MULTIPART_BUFFER_OVERFLOW instead.
    pub replies_too_long: AtomicU64,
    /// ERROR replies sent, for any reason.
    pub errors_sent: AtomicU64,
    /// Experimenter messages, actions, instructions or fields refused.
    pub experimenter_refused: AtomicU64,
    /// Bundle messages refused (bad id, flags, state, inner message...).
    pub bundle_errors: AtomicU64,
    /// Bundle opens refused: the connection has as many open as allowed.
    pub bundles_out_of_bundles: AtomicU64,
    /// Bundle adds refused: the bundle, or all bundles together, hold as many as allowed.
    pub bundle_messages_too_many: AtomicU64,
    /// Bundles discarded after sitting idle for the idle timeout.
    pub bundles_expired: AtomicU64,
    /// Connections closed as accepted: their listener already served as many as allowed.
    pub connections_refused: AtomicU64,
    /// Connections dropped because the peer sent no message (or did not finish TLS)
    /// within the handshake timeout.
    pub handshake_timeouts: AtomicU64,
    /// Bundles committed.
    pub bundles_committed: AtomicU64,
    /// HELLOs with no common version.
    pub version_mismatches: AtomicU64,
    /// Connections closed by the inactivity probe.
    pub probe_timeouts: AtomicU64,
    pub packet_ins_sent: AtomicU64,
    /// PACKET_INs dropped by the rate limit or a full connection queue.
    pub packet_ins_dropped: AtomicU64,
    pub async_dropped: AtomicU64,
    /// TLS handshakes that failed (bad or unknown peer certificate...).
    pub tls_failures: AtomicU64,
}

impl AgentCounters {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}
