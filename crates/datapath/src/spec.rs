//! What the datapath is told to build, as the control plane decided it: the configuration
//! file's types stay on the control plane, which converts them.

use std::time::Duration;

/// One port to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// For people: logs, counters, the API.
    pub name: String,
    /// OpenFlow port number.
    pub ofport: u32,
    /// DPDK devargs (`net_tap0,iface=x`, `net_vhost0,iface=/run/vm1.sock,client=1`, ...).
    pub devargs: String,
    /// The port's VLAN membership as people read it (status only: the pipeline applies it).
    pub vlan: String,
    /// For a vhost-user server port: the socket the switch creates (the `iface` devarg).
    /// `None` for every other port, vhost-user client ports included (the peer owns it).
    pub vhost_server_socket: Option<String>,
    /// Mode and ownership given to that socket once it exists.
    pub socket_access: SocketAccess,
}

impl PortSpec {
    /// A plain (not vhost-user server) port carrying every VLAN: what tests and examples
    /// on vdevs create.
    pub fn trunk(name: &str, devargs: &str, ofport: u32) -> PortSpec {
        PortSpec {
            name: name.into(),
            ofport,
            devargs: devargs.into(),
            vlan: "trunk".into(),
            vhost_server_socket: None,
            socket_access: SocketAccess::default(),
        }
    }
}

/// Mode and ownership of a vhost-user server socket, resolved to numbers by the control
/// plane (user and group names looked up there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketAccess {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl SocketAccess {
    pub fn is_set(&self) -> bool {
        self.mode.is_some() || self.uid.is_some() || self.gid.is_some()
    }
}

/// Datapath tuning, as the control plane decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathSettings {
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Packet buffers in the shared pool (0: sized from the ports and queues).
    pub mbufs: u32,
    /// `Some(d)`: a worker idle for a while sleeps `d` between polls.
    pub idle_sleep: Option<Duration>,
    /// How long a port change waits for every worker to acknowledge it before it is
    /// withdrawn and fails with [`crate::DatapathError::WorkerTimeout`].
    pub ack_timeout: Duration,
    /// Each worker's connection-tracker shard (`shard`/`shards` are set per worker).
    pub conntrack: conntrack::Config,
}

impl Default for DatapathSettings {
    fn default() -> Self {
        DatapathSettings {
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mbufs: 0,
            idle_sleep: None,
            ack_timeout: Duration::from_secs(1),
            conntrack: conntrack::Config::default(),
        }
    }
}

impl SocketAccess {
    /// Resolves user and group names (or numeric ids) to ids on this host.
    pub fn resolve(
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Result<SocketAccess, String> {
        Ok(SocketAccess {
            mode,
            uid: owner.map(user_id).transpose()?,
            gid: group.map(group_id).transpose()?,
        })
    }
}

fn user_id(name: &str) -> Result<u32, String> {
    match name.parse() {
        Ok(uid) => Ok(uid),
        Err(_) => uzers::get_user_by_name(name)
            .map(|u| u.uid())
            .ok_or_else(|| format!("socket_owner: no user {name:?} on this host")),
    }
}

fn group_id(name: &str) -> Result<u32, String> {
    match name.parse() {
        Ok(gid) => Ok(gid),
        Err(_) => uzers::get_group_by_name(name)
            .map(|g| g.gid())
            .ok_or_else(|| format!("socket_group: no group {name:?} on this host")),
    }
}
