//! The ferroflowd configuration file (TOML). Its shape is a user-facing
//! contract (`DESIGN.md` section 6): keys keep their names and meaning; new keys
//! may be added. Unknown keys are errors, so that a typo is caught at start
//! rather than silently ignored.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration cannot be used. Each names the file and, where it can,
/// the line or the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub eal: EalConfig,
    #[serde(default)]
    pub bridge: BridgeConfig,
    #[serde(default)]
    pub openflow: OpenflowConfig,
    #[serde(default)]
    pub grpc: Option<GrpcConfig>,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    #[serde(default)]
    pub datapath: DatapathConfig,
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    /// The virtual-network profile (DESIGN.md section 3): networks, the
    /// instances attached to them, and the metadata service. Empty: the
    /// profile installs nothing.
    #[serde(default)]
    pub networks: Vec<NetworkConfig>,
    #[serde(default)]
    pub instances: Vec<InstanceConfig>,
    #[serde(default)]
    pub metadata: Option<MetadataConfig>,
    /// The underlay of the tunnel ports.
    #[serde(default)]
    pub tunnels: TunnelsConfig,
    /// The connection tracker behind `ct()` (docs/conntrack.md).
    #[serde(default)]
    pub conntrack: ConntrackConfig,
    /// Security groups of the virtual-network profile (`[[security_groups]]`), which
    /// instances join by name (`instances.security_groups`); docs/virtual-networks.md.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupConfig>,
}

/// `[conntrack]`: sizes and timeouts of the connection tracker. Each worker has its own
/// table of `max_connections` (allocated at start); a full table refuses new connections
/// (counted) while established ones continue. Timeouts are Linux's defaults.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConntrackConfig {
    #[serde(default = "default_ct_max")]
    pub max_connections: usize,
    #[serde(default = "default_ct_tcp_established")]
    pub tcp_established_timeout_s: u64,
    #[serde(default = "default_ct_udp")]
    pub udp_timeout_s: u64,
    #[serde(default = "default_ct_udp_stream")]
    pub udp_stream_timeout_s: u64,
    #[serde(default = "default_ct_udp")]
    pub icmp_timeout_s: u64,
    #[serde(default = "default_ct_other")]
    pub other_timeout_s: u64,
}

fn default_ct_max() -> usize {
    65_536
}
fn default_ct_tcp_established() -> u64 {
    432_000
}
fn default_ct_udp() -> u64 {
    30
}
fn default_ct_udp_stream() -> u64 {
    120
}
fn default_ct_other() -> u64 {
    600
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            max_connections: default_ct_max(),
            tcp_established_timeout_s: default_ct_tcp_established(),
            udp_timeout_s: default_ct_udp(),
            udp_stream_timeout_s: default_ct_udp_stream(),
            icmp_timeout_s: default_ct_udp(),
            other_timeout_s: default_ct_other(),
        }
    }
}

/// What a network does with its traffic (the seed's switch_* stages).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// L2 by destination MAC; unknown and broadcast frames flood within the network.
    Normal,
    /// L3 publicly routable private addresses; sources from the uplink are verified on demand.
    Private,
    /// The network is a VLAN on the uplink: tag stripped on ingress, pushed on egress.
    Vlan,
    /// An L2 virtual network across hosts over PBB (MAC-in-MAC), I-SID = network id.
    Vnet,
    /// An L2 virtual network across hosts over VXLAN, VNI = network id: one tunnel port
    /// per peer host (docs/virtual-networks.md).
    Vxlan,
    /// The same over Geneve.
    Geneve,
}

impl NetworkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::Normal => "normal",
            NetworkKind::Private => "private",
            NetworkKind::Vlan => "vlan",
            NetworkKind::Vnet => "vnet",
            NetworkKind::Vxlan => "vxlan",
            NetworkKind::Geneve => "geneve",
        }
    }

    /// Whether instances on other hosts are reached through tunnels (vxlan, geneve).
    pub fn is_overlay(self) -> bool {
        matches!(self, NetworkKind::Vxlan | NetworkKind::Geneve)
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// 1..=0xffffff: the metadata value of its packets, and the I-SID of a vnet.
    pub id: u32,
    pub name: String,
    pub kind: NetworkKind,
    /// The port (name) towards the physical network; required for vlan and vnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<String>,
    /// The VLAN of a vlan network on the uplink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// A virtual router address that instances use as their gateway; ARP for
    /// it is answered with `gateway_mac` (or one derived from the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<std::net::Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<String>,
    /// Private networks: the prefixes (`10.1.0.0/16`) whose addresses may
    /// come from and go to the uplink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Vnet networks: this host's backbone MAC (the outer source of its PBB frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_mac: Option<String>,
    /// Vxlan and geneve networks: this host's tunnel endpoint on the uplink, with the
    /// on-link prefix (`192.0.2.1/24`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    /// Vxlan and geneve networks: tunnel endpoints of other hosts that take part in the
    /// network whether or not an instance there is known yet; broadcast and unknown
    /// unicast are replicated to them as to the hosts of remote instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    pub name: String,
    /// The network this interface belongs to (its id).
    pub network: u32,
    pub mac: String,
    /// IPv4 addresses the instance may use as its source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<std::net::Ipv4Addr>,
    /// IPv6 addresses the instance may use as its source, besides its
    /// link-local address (derived from `mac` by EUI-64), which is always its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<std::net::Ipv6Addr>,
    /// The port (name) it is attached to on this host. Absent: the instance
    /// lives on another host (vnet), reached through `host_mac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Remote vnet instances: the backbone MAC of the host it lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mac: Option<String>,
    /// Remote vxlan and geneve instances: the tunnel endpoint IP of the host it lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<std::net::Ipv4Addr>,
    /// The security groups (names) whose rules filter its traffic statefully.
    /// None: the instance is not filtered beyond anti-spoofing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

/// A named set of stateful rules (OpenStack's security group): a new connection
/// to or from a member instance passes only if one rule of one of its groups allows it;
/// replies and related ICMP always pass; invalid packets are dropped.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SecurityRuleConfig>,
}

/// Which way a rule lets connections be opened, seen from the member instance.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Connections opened towards the instance.
    #[default]
    Ingress,
    /// Connections the instance opens.
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// One rule. Absent fields match anything: `protocol` tcp, udp, icmp or any;
/// `ports` a TCP/UDP destination port or range (`"8000-8010"`), `source_ports` the
/// same for the source; `icmp_type` and `icmp_code` for icmp; the remote end either
/// `remote_prefix` (`"10.0.0.0/8"`, `"fd00::/64"`) or `remote_group` (the addresses of
/// that group's member instances), not both.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq, Hash, Default)]
#[serde(deny_unknown_fields)]
pub struct SecurityRuleConfig {
    pub direction: Direction,
    /// `ipv4` (the default) or `ipv6`.
    #[serde(default = "default_ethertype")]
    pub ethertype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_group: Option<String>,
    /// `tcp`/`udp`: the source port or range of the connection's first packet
    /// (`"1024-65535"`), as `ports` is the destination's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<String>,
    /// `icmp` (ICMP for ipv4, ICMPv6 for ipv6): the type of the message that opens the
    /// connection (8: echo request; 128 for ICMPv6); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// With `icmp_type`: its code; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
}

fn default_ethertype() -> String {
    "ipv4".into()
}

/// How instances reach the metadata service at 169.254.169.254:80 (the seed's three
/// ways, and conntrack's NAT).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataMode {
    /// Flows per TCP connection, installed on its first packet (idle timeout 300 s).
    PerConnection,
    /// Flows per instance, installed with the instance.
    PerInstance,
    /// Instances address the service on the dedicated 169.254.169.252/30
    /// subnet (as 169.254.169.253): no gateway needed.
    Subnet,
    /// Datapath NAT: per-instance flows commit each connection to conntrack with
    /// `nat(dst=host_ip:host_port)` and replies are translated back by conntrack;
    /// no packet goes to the control plane, and only replies of tracked
    /// connections return to instances.
    Nat,
}

impl MetadataMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataMode::PerConnection => "per-connection",
            MetadataMode::PerInstance => "per-instance",
            MetadataMode::Subnet => "subnet",
            MetadataMode::Nat => "nat",
        }
    }
}

/// The host's metadata server, reached through the bridge's LOCAL port.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    pub mode: MetadataMode,
    /// Where the server listens on the host side of the LOCAL port.
    pub host_ip: std::net::Ipv4Addr,
    pub host_mac: String,
    #[serde(default = "default_metadata_port")]
    pub host_port: u16,
}

fn default_metadata_port() -> u16 {
    8775
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// EAL's `-l`: the first lcore runs the control plane, each other one a worker.
    /// `LCORE@CPU` entries (`0@0,1@1,2@1`) place lcores on CPUs (EAL's `--lcores`).
    pub lcores: String,
    /// DPDK memory cap in MB, passed as `--socket-limit` (EAL's `-m` caps nothing).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Unique per DPDK process on one host.
    #[serde(default = "default_file_prefix")]
    pub file_prefix: String,
    /// Passed to EAL as they are (after Ferroflow's own arguments).
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// `--in-memory`: no hugepage files are left behind, even after a crash.
    #[serde(default = "yes")]
    pub in_memory: bool,
    /// False runs on ordinary memory (`--no-huge`), at roughly half speed.
    #[serde(default = "yes")]
    pub hugepages: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Without a controller, only the installed flows forward.
    #[default]
    Secure,
    /// Without a controller for a while, NORMAL takes the table-miss.
    Standalone,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    #[serde(default = "default_bridge_name")]
    pub name: String,
    /// 16 hex digits.
    #[serde(default = "default_dpid")]
    pub datapath_id: String,
    #[serde(default)]
    pub fail_mode: FailMode,
    #[serde(default)]
    pub controllers: Vec<ControllerConfig>,
    /// Seconds a learned MAC stays without being seen again (OVS: 300).
    #[serde(default = "default_mac_aging")]
    pub mac_aging_s: u32,
    /// Learned MAC entries the bridge can hold (rounded up to a power of two).
    #[serde(default = "default_mac_capacity")]
    pub mac_table_size: u32,
    /// Entries one flow table may hold (OVS's Flow_Table flow_limit): an ADD
    /// beyond it is refused with TABLE_FULL, and a batch or profile change that
    /// needs more changes nothing.
    #[serde(default = "default_flow_limit")]
    pub flow_limit: u32,
}

fn default_flow_limit() -> u32 {
    1 << 20
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            name: default_bridge_name(),
            datapath_id: default_dpid(),
            fail_mode: FailMode::default(),
            controllers: Vec::new(),
            mac_aging_s: default_mac_aging(),
            mac_table_size: default_mac_capacity(),
            flow_limit: default_flow_limit(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    pub target: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenflowConfig {
    #[serde(default)]
    pub listen: Vec<String>,
    /// Seconds of silence before a connection is probed with ECHO_REQUEST; as
    /// long again without an answer closes it. In standalone fail mode, NORMAL
    /// takes over table-miss after three intervals without a controller.
    #[serde(default = "default_probe_interval")]
    pub probe_interval_s: u32,
    /// PEM files for `ssl:` controllers and `pssl:` listeners: this switch's
    /// certificate and key, and the CA certificate peers must be signed by.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_private_key: Option<PathBuf>,
    #[serde(default)]
    pub tls_ca_certificate: Option<PathBuf>,
    /// What one peer may make the agent hold; unset keys keep the agent's
    /// documented defaults (see `ofagent::AgentLimits`).
    #[serde(default)]
    pub limits: OpenflowLimits,
}

/// `[openflow.limits]`: each exceeded limit is answered with the OpenFlow
/// error the spec names and counted in the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenflowLimits {
    /// Open bundles per connection (default 64; OUT_OF_BUNDLES beyond).
    pub bundles_per_connection: Option<usize>,
    /// Messages in one bundle (default 262144; MSG_TOO_MANY beyond).
    pub bundle_messages: Option<usize>,
    /// Messages in all connections' open bundles (default 1048576).
    pub bundle_messages_total: Option<usize>,
    /// Seconds an open bundle may stay idle before it is discarded (default 10).
    pub bundle_idle_timeout_s: Option<u64>,
    /// Connections per listener; more are closed at accept (default 256).
    pub connections_per_listener: Option<usize>,
    /// Seconds a new connection has to complete TLS and send a first message (default 10).
    pub handshake_timeout_s: Option<u64>,
}

impl Default for OpenflowConfig {
    fn default() -> Self {
        OpenflowConfig {
            listen: Vec::new(),
            probe_interval_s: default_probe_interval(),
            tls_certificate: None,
            tls_private_key: None,
            tls_ca_certificate: None,
            limits: OpenflowLimits::default(),
        }
    }
}

fn default_probe_interval() -> u32 {
    5
}

/// Where the management API listens. A unix socket (mode 0600) by default;
/// TCP only with TLS and client certificates, because the API can change
/// everything the switch does.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// `unix:PATH` or `tcp:IP:PORT`.
    #[serde(default = "default_grpc_listen")]
    pub listen: String,
    /// PEM files for `tcp:`: the server's certificate and key, and the CA
    /// that client certificates must be signed by.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_private_key: Option<PathBuf>,
    #[serde(default)]
    pub tls_ca_certificate: Option<PathBuf>,
    /// Largest request of any call but FlowService's, in bytes (default 4 MiB);
    /// a larger one is answered RESOURCE_EXHAUSTED.
    #[serde(default)]
    pub max_request_bytes: Option<usize>,
    /// Largest FlowService request (flow batches), in bytes (default 64 MiB:
    /// about 900k flows of ovs-ofctl text).
    #[serde(default)]
    pub max_flow_batch_bytes: Option<usize>,
    /// Seconds a `tcp:` peer has to complete its TLS handshake (default 10).
    #[serde(default)]
    pub handshake_timeout_s: Option<u64>,
    /// Connections open at once, handshaking or not (default 128); more are
    /// closed as they are accepted.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Calls in progress on one connection (default 32); more are answered
    /// RESOURCE_EXHAUSTED.
    #[serde(default)]
    pub max_streams_per_connection: Option<usize>,
    /// Drivers `AddPort` may create (default [`DEFAULT_PORT_DRIVERS`]); the
    /// config file's `[[ports]]` may use any.
    #[serde(default)]
    pub port_drivers: Option<Vec<String>>,
    /// Directories under which a file a port's devargs name (`iface=` of
    /// net_vhost, `rx_pcap=`, `path=`...) must lie, after `..` and symlinks are
    /// resolved (default [`DEFAULT_PORT_PATHS`]).
    #[serde(default)]
    pub port_paths: Option<Vec<PathBuf>>,
    /// Whether `AddPort` may name a PCI device (default false).
    #[serde(default)]
    pub port_pci: bool,
}

/// Drivers `AddPort` may create unless `[grpc] port_drivers` says otherwise:
/// the virtual devices a hypervisor switch adds at run time. Others (net_memif,
/// net_virtio_user, crypto or bonding devices) go in the config file.
pub const DEFAULT_PORT_DRIVERS: &[&str] = &[
    "net_vhost",
    "net_tap",
    "net_null",
    "net_ring",
    "net_pcap",
    "net_af_packet",
];

/// Where `AddPort` may name files unless `[grpc] port_paths` says otherwise:
/// the vhost-user socket directory.
pub const DEFAULT_PORT_PATHS: &[&str] = &["/run/ferroflow"];

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: default_grpc_listen(),
            tls_certificate: None,
            tls_private_key: None,
            tls_ca_certificate: None,
            max_request_bytes: None,
            max_flow_batch_bytes: None,
            handshake_timeout_s: None,
            max_connections: None,
            max_streams_per_connection: None,
            port_drivers: None,
            port_paths: None,
            port_pci: false,
        }
    }
}

impl GrpcConfig {
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes.unwrap_or(4 << 20)
    }

    pub fn max_flow_batch_bytes(&self) -> usize {
        self.max_flow_batch_bytes.unwrap_or(64 << 20)
    }

    pub fn handshake_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.handshake_timeout_s.unwrap_or(10))
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections.unwrap_or(128)
    }

    pub fn max_streams_per_connection(&self) -> usize {
        self.max_streams_per_connection.unwrap_or(32)
    }

    pub fn port_drivers(&self) -> Vec<String> {
        self.port_drivers.clone().unwrap_or_else(|| {
            DEFAULT_PORT_DRIVERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        })
    }

    pub fn port_paths(&self) -> Vec<PathBuf> {
        self.port_paths
            .clone()
            .unwrap_or_else(|| DEFAULT_PORT_PATHS.iter().map(PathBuf::from).collect())
    }
}

/// The management socket ferroflowctl looks for first.
pub const DEFAULT_GRPC_SOCKET: &str = "/run/ferroflow/ferroflow.sock";

fn default_grpc_listen() -> String {
    format!("unix:{DEFAULT_GRPC_SOCKET}")
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:PORT` of the Prometheus `/metrics` endpoint.
    pub listen: String,
}

/// What ferroflowd keeps in this file for itself: the flows, groups and
/// meters added through the management API (in ovs-ofctl syntax), so that a
/// restart brings them back. Ports and controllers added through the API are
/// written to `[[ports]]` and `[[bridge.controllers]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// False: changes made through the API are not written back to this file.
    #[serde(default = "yes")]
    pub persist: bool,
    /// Flows, groups and meters the API owns, each in ovs-ofctl syntax.
    /// `None` (never written) leaves the bridge's default flow alone.
    #[serde(default)]
    pub flows: Option<Vec<String>>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub meters: Vec<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            persist: true,
            flows: None,
            groups: Vec::new(),
            meters: Vec::new(),
        }
    }
}

/// Datapath tuning; the defaults suit virtual ports.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    #[serde(default = "default_descriptors")]
    pub rx_descriptors: u16,
    #[serde(default = "default_descriptors")]
    pub tx_descriptors: u16,
    /// Mbufs in the shared pool (0: sized from the ports and queues).
    #[serde(default)]
    pub mbufs: u32,
    /// When a worker's ports have been idle for a while it sleeps this many
    /// microseconds between polls (0: always busy-poll, the fastest). Saves a
    /// core on hosts that are mostly idle; costs latency on the first packet.
    #[serde(default)]
    pub idle_sleep_us: u32,
    /// Moves rx queues between workers by itself when their loads are uneven (as OVS's
    /// pmd-auto-lb): off by default, because a move pauses the queue for a moment.
    #[serde(default)]
    pub auto_rebalance: bool,
    /// Seconds between the automatic rebalance's checks; each check measures the queues'
    /// loads over the interval since the previous one.
    #[serde(default = "default_rebalance_interval")]
    pub rebalance_interval_s: u32,
    /// The automatic rebalance acts only when the busiest worker spent at least this
    /// share of the interval (percent) on its queues.
    #[serde(default = "default_rebalance_load_threshold")]
    pub rebalance_load_threshold_percent: u32,
    /// ... and only when the moves would reduce the variance of the workers' loads by at
    /// least this much (percent).
    #[serde(default = "default_rebalance_improvement")]
    pub rebalance_improvement_percent: u32,
}

fn default_rebalance_interval() -> u32 {
    60
}

fn default_rebalance_load_threshold() -> u32 {
    95
}

fn default_rebalance_improvement() -> u32 {
    25
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            rx_descriptors: default_descriptors(),
            tx_descriptors: default_descriptors(),
            mbufs: 0,
            idle_sleep_us: 0,
            auto_rebalance: false,
            rebalance_interval_s: default_rebalance_interval(),
            rebalance_load_threshold_percent: default_rebalance_load_threshold(),
            rebalance_improvement_percent: default_rebalance_improvement(),
        }
    }
}

/// How a port treats VLANs, as OVS's `tag` and `trunks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// Carries every VLAN; untagged frames are VLAN 0.
    Trunk,
    /// Carries the listed VLANs only (0 meaning untagged frames).
    Trunks(Vec<u16>),
    /// Untagged frames belong to this VLAN; tagged frames are dropped.
    Access(u16),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// The port's name for people: logs, metrics, CLI.
    pub name: String,
    /// DPDK devargs: `net_tap0,iface=tap0`, `net_vhost0,iface=/run/vm1.sock,client=1`, a PCI address.
    /// Empty for tunnel ports.
    #[serde(default)]
    pub devargs: String,
    /// OpenFlow port number (1..=0xffffff00), stable across restarts.
    pub ofport: u32,
    /// Access VLAN (OVS `tag`).
    #[serde(default)]
    pub tag: Option<u16>,
    /// Trunked VLANs (OVS `trunks`); all when absent.
    #[serde(default)]
    pub trunks: Option<Vec<u16>>,
    /// vhost-user server mode only (the switch creates the socket): permission bits given
    /// to the socket once it exists, e.g. `0o660`. QEMU often runs as another user
    /// (libvirt's `libvirt-qemu`), and DPDK creates the socket with the daemon's umask.
    #[serde(default)]
    pub socket_mode: Option<u32>,
    /// vhost-user server mode only: the socket's owner, a user name or a numeric uid.
    #[serde(default)]
    pub socket_owner: Option<String>,
    /// vhost-user server mode only: the socket's group, a group name or a numeric gid.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// `ethdev` (default: a DPDK device from `devargs`), `vxlan` or `geneve` (a tunnel port
    /// over `uplink`; docs/tunnels.md).
    #[serde(default)]
    pub kind: PortKind,
    /// Tunnel ports: the far endpoint's IPv4 address, or `"flow"` to take it from each
    /// packet's `tun_dst` (set by `set_field:A->tun_dst`).
    #[serde(default)]
    pub remote_ip: Option<String>,
    /// Tunnel ports: the switch's own address on the uplink, `A.B.C.D/LEN` (LEN: the
    /// uplink's on-link prefix, 32 if left out).
    #[serde(default)]
    pub local_ip: Option<String>,
    /// Tunnel ports: the VNI (0..=16777215), or `"flow"` to take it from `tunnel_id`.
    #[serde(default)]
    pub key: Option<TunnelKey>,
    /// Tunnel ports: UDP destination port (4789 for VXLAN, 6081 for Geneve by default).
    #[serde(default)]
    pub dst_port: Option<u16>,
    /// Tunnel ports: fill the outer UDP checksum.
    #[serde(default)]
    pub csum: bool,
    /// Tunnel ports: the name of the (ethdev) port the encapsulated packets use.
    #[serde(default)]
    pub uplink: Option<String>,
}

/// What a port is.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    /// A DPDK ethdev made from `devargs`.
    #[default]
    Ethdev,
    /// A VXLAN tunnel port (RFC 7348).
    Vxlan,
    /// A Geneve tunnel port (RFC 8926).
    Geneve,
}

/// A tunnel port's VNI: fixed, or from the flow (`key = "flow"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKey {
    Fixed(u32),
    Flow,
}

impl<'de> Deserialize<'de> for TunnelKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(TunnelKey::Fixed(n)),
            Raw::S(s) if s == "flow" => Ok(TunnelKey::Flow),
            Raw::S(s) => s
                .parse()
                .map(TunnelKey::Fixed)
                .map_err(|_| serde::de::Error::custom(format!("{s:?}: a VNI number or \"flow\""))),
        }
    }
}

/// `[tunnels]`: the underlay the tunnel ports use. Nothing comes from the host's kernel.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TunnelsConfig {
    /// Routes to remote endpoints off the uplink's prefix: `"PREFIX/LEN via NEXT_HOP"`.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Next hop for remote endpoints no route covers.
    #[serde(default)]
    pub gateway: Option<String>,
    /// A resolved next hop is asked again by ARP after this many seconds.
    #[serde(default = "default_neighbour_timeout")]
    pub neighbour_timeout_s: u32,
    /// The uplink's MTU: the largest outer IPv4 packet. Inner frames that no longer fit
    /// once encapsulated are dropped and counted.
    #[serde(default = "default_uplink_mtu")]
    pub uplink_mtu: u16,
    /// Static next hops, `"IP MAC"`: never asked by ARP, never expire, not changed by ARP
    /// they send; for a next hop that does not answer ARP (a benchmark's sink, a
    /// hardware VTEP configured so) or to take ARP off the first packets.
    #[serde(default)]
    pub neighbours: Vec<String>,
}

fn default_neighbour_timeout() -> u32 {
    60
}

fn default_uplink_mtu() -> u16 {
    1500
}

impl Default for TunnelsConfig {
    fn default() -> Self {
        TunnelsConfig {
            routes: Vec::new(),
            gateway: None,
            neighbour_timeout_s: default_neighbour_timeout(),
            uplink_mtu: default_uplink_mtu(),
            neighbours: Vec::new(),
        }
    }
}

/// Parses `A.B.C.D/LEN` (LEN 32 when left out).
pub fn parse_ipv4_prefix(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (
            ip,
            len.parse::<u8>()
                .map_err(|_| format!("{s:?}: bad prefix length"))?,
        ),
        None => (s, 32),
    };
    if len > 32 {
        return Err(format!("{s:?}: prefix length above 32"));
    }
    let ip = ip
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: not an IPv4 address"))?;
    Ok((ip, len))
}

/// Parses a route `PREFIX/LEN via NEXT_HOP`.
/// Parses a static neighbour, `"IP MAC"` (MAC as `aa:bb:cc:dd:ee:ff`).
pub fn parse_neighbour(s: &str) -> Result<(std::net::Ipv4Addr, [u8; 6]), String> {
    let mut it = s.split_whitespace();
    let (Some(ip), Some(mac), None) = (it.next(), it.next(), it.next()) else {
        return Err(format!("{s:?}: expected \"IP MAC\""));
    };
    let ip = ip
        .parse()
        .map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
    let mut m = [0u8; 6];
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?}: {mac:?} is not a MAC address"));
    }
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .ok()
            .filter(|_| p.len() == 2)
            .ok_or_else(|| format!("{s:?}: {mac:?} is not a MAC address"))?;
    }
    if m[0] & 1 == 1 || m == [0; 6] {
        return Err(format!("{s:?}: {mac:?} is not a unicast MAC address"));
    }
    Ok((ip, m))
}

pub fn parse_route(s: &str) -> Result<(std::net::Ipv4Addr, u8, std::net::Ipv4Addr), String> {
    let (p, via) = s
        .split_once(" via ")
        .ok_or_else(|| format!("{s:?}: expected \"PREFIX/LEN via NEXT_HOP\""))?;
    let (ip, len) = parse_ipv4_prefix(p.trim())?;
    let hop = via
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: next hop is not an IPv4 address"))?;
    Ok((ip, len, hop))
}

impl PortConfig {
    /// The first tunnel-only key set on a port that is not a tunnel.
    pub fn tunnel_field(&self) -> Option<&'static str> {
        if self.remote_ip.is_some() {
            Some("remote_ip")
        } else if self.local_ip.is_some() {
            Some("local_ip")
        } else if self.key.is_some() {
            Some("key")
        } else if self.dst_port.is_some() {
            Some("dst_port")
        } else if self.csum {
            Some("csum")
        } else if self.uplink.is_some() {
            Some("uplink")
        } else {
            None
        }
    }

    /// A VXLAN or Geneve port: no device of its own.
    pub fn is_tunnel(&self) -> bool {
        self.kind != PortKind::Ethdev
    }
}

impl PortConfig {
    pub fn vlan_mode(&self) -> VlanMode {
        match (&self.tag, &self.trunks) {
            (Some(tag), _) => VlanMode::Access(*tag),
            (None, Some(trunks)) => VlanMode::Trunks(trunks.clone()),
            (None, None) => VlanMode::Trunk,
        }
    }

    /// The ethdev name DPDK gives this port: the devargs' first field.
    pub fn device_name(&self) -> &str {
        self.devargs.split(',').next().unwrap_or_default().trim()
    }

    /// The value of one `key=value` devargs field.
    pub fn devarg(&self, key: &str) -> Option<&str> {
        self.devargs
            .split(',')
            .skip(1)
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The socket of a vhost-user port the switch creates (server mode): `None` for
    /// every other port, vhost-user client ports included (QEMU owns their socket).
    pub fn vhost_server_socket(&self) -> Option<&str> {
        let vhost = self.device_name().starts_with("net_vhost");
        let client = self.devarg("client").is_some_and(|v| v != "0");
        (vhost && !client).then(|| self.devarg("iface")).flatten()
    }

    /// True when the port asks for the socket's mode, owner or group to be set.
    pub fn sets_socket_access(&self) -> bool {
        self.socket_mode.is_some() || self.socket_owner.is_some() || self.socket_group.is_some()
    }
}

fn yes() -> bool {
    true
}
fn default_memory_mb() -> u32 {
    512
}
fn default_file_prefix() -> String {
    "ferroflow".into()
}
fn default_bridge_name() -> String {
    "br0".into()
}
fn default_dpid() -> String {
    "0000000000000001".into()
}
fn default_mac_aging() -> u32 {
    300
}
fn default_mac_capacity() -> u32 {
    8192
}
fn default_descriptors() -> u16 {
    1024
}

/// Largest OpenFlow physical port number (OFPP_MAX).
pub const OFPP_MAX: u32 = 0xffff_ff00;
/// OpenFlow's LOCAL port: a port configured with this number is the bridge's
/// own interface on the host (OVS's bridge-internal port), e.g. a tap.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;

/// EAL options Ferroflow sets itself from `[eal]`; `extra_args` may not repeat them.
const OWN_EAL_OPTIONS: &[&str] = &[
    "-l",
    "--lcores",
    "-c",
    "--file-prefix",
    "--socket-limit",
    "--socket-mem",
    "-m",
    "--in-memory",
    "--no-huge",
    "--main-lcore",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_owned(),
                key,
                message,
            })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        let lcores = parse_lcores(&self.eal.lcores).map_err(|m| ("eal.lcores".to_owned(), m))?;
        if lcores.len() < 2 {
            return bad(
                "eal.lcores",
                format!(
                    "{:?} names {} lcore(s); give at least two: the first runs the control plane, the others run workers",
                    self.eal.lcores,
                    lcores.len()
                ),
            );
        }
        if self.eal.memory_mb < 64 {
            return bad(
                "eal.memory_mb",
                format!(
                    "{} MB is too little; DPDK needs at least 64",
                    self.eal.memory_mb
                ),
            );
        }
        if self.eal.file_prefix.is_empty()
            || !self
                .eal
                .file_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(
                "eal.file_prefix",
                format!(
                    "{:?}: use letters, digits, '-' and '_'",
                    self.eal.file_prefix
                ),
            );
        }
        for arg in &self.eal.extra_args {
            let opt = arg.split('=').next().unwrap_or_default();
            if OWN_EAL_OPTIONS.contains(&opt) {
                return bad(
                    "eal.extra_args",
                    format!("{arg:?} is set by ferroflowd from [eal] (lcores, memory_mb, file_prefix, in_memory, hugepages)"),
                );
            }
        }
        if self.datapath_id().is_none() {
            return bad(
                "bridge.datapath_id",
                format!("{:?} is not 16 hexadecimal digits", self.bridge.datapath_id),
            );
        }
        if self.bridge.mac_table_size == 0 || self.bridge.mac_table_size > 1 << 24 {
            return bad(
                "bridge.mac_table_size",
                "must be between 1 and 16777216".into(),
            );
        }
        for (i, c) in self.bridge.controllers.iter().enumerate() {
            check_target(&c.target, &["tcp", "ssl", "unix"])
                .map_err(|m| (format!("bridge.controllers[{i}].target"), m))?;
        }
        for (i, l) in self.openflow.listen.iter().enumerate() {
            check_target(l, &["ptcp", "pssl", "punix"])
                .map_err(|m| (format!("openflow.listen[{i}]"), m))?;
        }
        let tls = [
            &self.openflow.tls_certificate,
            &self.openflow.tls_private_key,
            &self.openflow.tls_ca_certificate,
        ];
        let tls_set = tls.iter().filter(|t| t.is_some()).count();
        if tls_set != 0 && tls_set != 3 {
            return bad(
                "openflow.tls_certificate",
                "give all three of tls_certificate, tls_private_key and tls_ca_certificate, or none".into(),
            );
        }
        let uses_tls = self
            .bridge
            .controllers
            .iter()
            .any(|c| c.target.starts_with("ssl:"))
            || self.openflow.listen.iter().any(|l| l.starts_with("pssl:"));
        if uses_tls && tls_set == 0 {
            return bad(
                "openflow.tls_certificate",
                "ssl: and pssl: targets need tls_certificate, tls_private_key and tls_ca_certificate".into(),
            );
        }
        if let Some(g) = &self.grpc {
            g.validate().map_err(|(k, m)| (format!("grpc.{k}"), m))?;
        }
        if let Some(m) = &self.metrics {
            if m.listen.parse::<std::net::SocketAddr>().is_err() {
                return bad(
                    "metrics.listen",
                    format!("{:?}: expected IP:PORT (127.0.0.1:9464)", m.listen),
                );
            }
        }
        if self.openflow.probe_interval_s == 0 {
            return bad("openflow.probe_interval_s", "must be at least 1".into());
        }
        if self.datapath.rx_descriptors == 0 || self.datapath.tx_descriptors == 0 {
            return bad(
                "datapath",
                "rx_descriptors and tx_descriptors must be positive".into(),
            );
        }
        if self.datapath.rebalance_interval_s == 0 {
            return bad("datapath.rebalance_interval_s", "must be at least 1".into());
        }
        if self.datapath.rebalance_load_threshold_percent > 100
            || self.datapath.rebalance_improvement_percent > 100
        {
            return bad(
                "datapath",
                "rebalance_load_threshold_percent and rebalance_improvement_percent are percentages (0-100)".into(),
            );
        }
        self.validate_ports()
    }

    /// The checks on `[[ports]]` alone (also used for ports added at runtime).
    /// A tunnel port's own keys; the field name and the message on error.
    fn validate_tunnel_port(&self, p: &PortConfig) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_owned(), m));
        if !p.devargs.is_empty() {
            return err("devargs", "a tunnel port has no devargs".into());
        }
        if p.socket_mode.is_some() || p.socket_owner.is_some() || p.socket_group.is_some() {
            return err("socket_mode", "a tunnel port has no socket".into());
        }
        match p.remote_ip.as_deref() {
            None => return err("remote_ip", "a tunnel port needs remote_ip".into()),
            Some("flow") => {}
            Some(r) => match r.parse::<std::net::Ipv4Addr>() {
                Ok(a) if a.is_unspecified() => {
                    return err(
                        "remote_ip",
                        "0.0.0.0 is no endpoint (\"flow\": from each packet's tun_dst)".into(),
                    )
                }
                Ok(_) => {}
                Err(_) => {
                    return err(
                        "remote_ip",
                        format!("{r:?} is not an IPv4 address or \"flow\""),
                    )
                }
            },
        }
        match p.local_ip.as_deref() {
            None => {
                return err(
                    "local_ip",
                    "a tunnel port needs local_ip (A.B.C.D/LEN)".into(),
                )
            }
            Some(l) => {
                parse_ipv4_prefix(l).map_err(|m| ("local_ip".to_owned(), m))?;
            }
        }
        if let Some(TunnelKey::Fixed(v)) = p.key {
            if v > 0x00ff_ffff {
                return err("key", format!("{v} is outside 0..=16777215 (24 bits)"));
            }
        }
        if p.dst_port == Some(0) {
            return err("dst_port", "0 is not a port".into());
        }
        let Some(up) = p.uplink.as_deref() else {
            return err("uplink", "a tunnel port needs an uplink port".into());
        };
        match self.ports.iter().find(|q| q.name == up) {
            Some(q) if !q.is_tunnel() => {}
            Some(_) => return err("uplink", format!("{up:?} is a tunnel port")),
            None => return err("uplink", format!("no port named {up:?}")),
        }
        for r in &self.tunnels.routes {
            parse_route(r).map_err(|m| ("tunnels.routes".to_owned(), m))?;
        }
        for n in &self.tunnels.neighbours {
            parse_neighbour(n).map_err(|m| ("tunnels.neighbours".to_owned(), m))?;
        }
        if let Some(g) = &self.tunnels.gateway {
            if g.parse::<std::net::Ipv4Addr>().is_err() {
                return err("tunnels.gateway", format!("{g:?} is not an IPv4 address"));
            }
        }
        Ok(())
    }

    pub fn validate_ports(&self) -> Result<(), (String, String)> {
        let mut names = HashSet::new();
        let mut ofports = HashSet::new();
        let mut devices = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let key = |field: &str| format!("ports[{i}].{field}");
            if p.name.is_empty()
                || p.name.len() > 15
                || p.name.chars().any(|c| c.is_whitespace() || c == ',')
            {
                return Err((
                    key("name"),
                    format!("{:?}: 1 to 15 characters, no spaces or commas", p.name),
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err((key("name"), format!("{:?} is used by two ports", p.name)));
            }
            if p.ofport == 0 || (p.ofport > OFPP_MAX && p.ofport != OFPP_LOCAL) {
                return Err((
                    key("ofport"),
                    format!(
                        "{} is outside 1..={OFPP_MAX} (or {OFPP_LOCAL}, the bridge's LOCAL port)",
                        p.ofport
                    ),
                ));
            }
            if !ofports.insert(p.ofport) {
                return Err((key("ofport"), format!("{} is used by two ports", p.ofport)));
            }
            if p.is_tunnel() {
                // [tunnels] keys are named as they are, the port's own under the port.
                self.validate_tunnel_port(p).map_err(|(f, m)| {
                    if f.starts_with("tunnels.") {
                        (f, m)
                    } else {
                        (key(&f), m)
                    }
                })?;
                continue;
            }
            if let Some(f) = p.tunnel_field() {
                return Err((
                    key(f),
                    "applies to tunnel ports only (kind = \"vxlan\" or \"geneve\")".into(),
                ));
            }
            if p.device_name().is_empty() {
                return Err((key("devargs"), format!("{:?} names no device", p.devargs)));
            }
            if !devices.insert(p.device_name()) {
                return Err((
                    key("devargs"),
                    format!("device {:?} is used by two ports", p.device_name()),
                ));
            }
            if let Some(tag) = p.tag {
                if !(1..=4094).contains(&tag) {
                    return Err((key("tag"), format!("{tag} is outside 1..=4094")));
                }
                if p.trunks.is_some() {
                    return Err((
                        key("trunks"),
                        "an access port (tag) cannot also have trunks".into(),
                    ));
                }
            }
            if let Some(t) = &p.trunks {
                if let Some(v) = t.iter().find(|v| **v > 4094) {
                    return Err((key("trunks"), format!("VLAN {v} is outside 0..=4094")));
                }
            }
            if p.sets_socket_access() && p.vhost_server_socket().is_none() {
                let field = if p.socket_mode.is_some() {
                    "socket_mode"
                } else if p.socket_owner.is_some() {
                    "socket_owner"
                } else {
                    "socket_group"
                };
                return Err((
                    key(field),
                    "applies to vhost-user server ports only (net_vhost without client=1, \
                     with iface=PATH); in client mode QEMU creates the socket"
                        .into(),
                ));
            }
            if let Some(m) = p.socket_mode {
                if m > 0o777 {
                    return Err((
                        key("socket_mode"),
                        format!(
                            "{m:#o} is not a permission mode (0o000..=0o777; write it as 0o660)"
                        ),
                    ));
                }
            }
            for (field, v) in [
                ("socket_owner", &p.socket_owner),
                ("socket_group", &p.socket_group),
            ] {
                if v.as_deref()
                    .is_some_and(|v| v.is_empty() || v.contains(':'))
                {
                    return Err((key(field), format!("{v:?}: a name or a number, not empty")));
                }
            }
        }
        Ok(())
    }

    pub fn datapath_id(&self) -> Option<u64> {
        let s = self.bridge.datapath_id.trim_start_matches("0x");
        (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    }

    pub fn lcores(&self) -> Vec<u32> {
        parse_lcores(&self.eal.lcores).unwrap_or_default()
    }

    /// The EAL argument list (program name first) this configuration asks for.
    pub fn eal_args(&self, program: &str) -> Vec<String> {
        let e = &self.eal;
        // `lcore@cpu` entries need EAL's --lcores; plain lists keep -l.
        let lcore_option = if e.lcores.contains('@') {
            "--lcores"
        } else {
            "-l"
        };
        let mut args = vec![
            program.to_owned(),
            lcore_option.into(),
            e.lcores.clone(),
            "--file-prefix".into(),
            e.file_prefix.clone(),
        ];
        if e.hugepages {
            args.push("--socket-limit".into());
            args.push(e.memory_mb.to_string());
        } else {
            args.push("--no-huge".into());
            args.push("-m".into());
            args.push(e.memory_mb.to_string());
        }
        if e.in_memory {
            args.push("--in-memory".into());
        }
        args.extend(e.extra_args.iter().cloned());
        args
    }
}

impl GrpcConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        for (key, v) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_flow_batch_bytes", self.max_flow_batch_bytes),
            ("max_connections", self.max_connections),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection,
            ),
            (
                "handshake_timeout_s",
                self.handshake_timeout_s.map(|s| s as usize),
            ),
        ] {
            if v == Some(0) {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        for (i, p) in self.port_paths.iter().flatten().enumerate() {
            if !p.is_absolute() {
                return Err((
                    format!("port_paths[{i}]"),
                    format!("{}: must be an absolute path", p.display()),
                ));
            }
        }
        let tls = [
            &self.tls_certificate,
            &self.tls_private_key,
            &self.tls_ca_certificate,
        ];
        let tls_set = tls.iter().filter(|t| t.is_some()).count();
        if let Some(path) = self.listen.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(("listen".into(), "unix: needs a path".into()));
            }
            if tls_set != 0 {
                return Err((
                    "tls_certificate".into(),
                    "TLS is for tcp: listeners; a unix socket is protected by its mode (0600)"
                        .into(),
                ));
            }
            return Ok(());
        }
        let Some(addr) = self.listen.strip_prefix("tcp:") else {
            return Err((
                "listen".into(),
                format!("{:?}: expected unix:PATH or tcp:IP:PORT", self.listen),
            ));
        };
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "listen".into(),
                format!("{:?}: expected tcp:IP:PORT", self.listen),
            ));
        }
        if tls_set != 3 {
            return Err((
                "listen".into(),
                "tcp: needs tls_certificate, tls_private_key and tls_ca_certificate (clients must present certificates): the API is never served on unauthenticated TCP".into(),
            ));
        }
        Ok(())
    }
}

fn check_target(target: &str, schemes: &[&str]) -> Result<(), String> {
    let (scheme, rest) = target.split_once(':').unwrap_or(("", ""));
    if !schemes.contains(&scheme) || rest.is_empty() {
        return Err(format!(
            "{target:?}: expected {}",
            schemes
                .iter()
                .map(|s| format!("{s}:..."))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Parses EAL's lcore list syntax: `0-1`, `0,2,4-5`, or lcores placed on CPUs as EAL's
/// `--lcores` writes it, `0@0,1@1,2@1` (more workers than CPUs: two workers sharing CPU 1,
/// for tests on small machines, with `[datapath] idle_sleep_us`). Returns the lcores.
pub fn parse_lcores(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if let Some((lcore, cpu)) = part.split_once('@') {
            let num = |x: &str| {
                x.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{s:?}: {part:?} is not LCORE@CPU"))
            };
            let (lcore, _cpu) = (num(lcore)?, num(cpu)?);
            if lcore >= 128 {
                return Err(format!("{s:?}: bad lcore {part:?}"));
            }
            out.push(lcore);
            continue;
        }
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {x:?} is not an lcore number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b >= 128 {
                    return Err(format!("{s:?}: bad range {part:?}"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    let mut seen = HashSet::new();
    if let Some(d) = out.iter().find(|c| !seen.insert(**c)) {
        return Err(format!("{s:?}: lcore {d} appears twice"));
    }
    Ok(out)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

impl fmt::Display for VlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VlanMode::Trunk => write!(f, "trunk"),
            VlanMode::Trunks(v) => write!(f, "trunks={v:?}"),
            VlanMode::Access(t) => write!(f, "access tag={t}"),
        }
    }
}

#[cfg(test)]
mod tests;
