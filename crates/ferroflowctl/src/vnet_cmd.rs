//! `ferroflowctl network|instance|metadata`: the virtual-network profile.

use clap::{Args, Subcommand};
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::output::{print_deleted, print_done, print_list};
use super::Result;

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// ferroflowctl network create 1 default --kind normal --uplink eth0 --gateway 10.0.0.254
    Create(Box<NetworkCreate>),
    /// Delete a network (its instances must be removed first).
    #[command(alias = "del", alias = "remove")]
    Delete {
        id: u32,
    },
    List,
}

#[derive(Args, Debug)]
pub struct NetworkCreate {
    /// 1..16777215 (a vnet's I-SID).
    id: u32,
    name: String,
    /// normal, private, vlan, vnet, vxlan or geneve.
    #[arg(long, default_value = "normal")]
    kind: String,
    /// The port towards the physical network.
    #[arg(long)]
    uplink: Option<String>,
    /// vlan: the VLAN id on the uplink.
    #[arg(long)]
    vlan: Option<u32>,
    /// A virtual gateway address that ARP answers for.
    #[arg(long)]
    gateway: Option<String>,
    #[arg(long)]
    gateway_mac: Option<String>,
    /// private: a prefix that may come from and go to the uplink (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<String>,
    /// vnet: this host's backbone MAC.
    #[arg(long)]
    backbone_mac: Option<String>,
    /// vxlan, geneve: this host's tunnel endpoint on the uplink, A.B.C.D/LEN.
    #[arg(long)]
    local_ip: Option<String>,
    /// vxlan, geneve: another host's tunnel endpoint in this network (repeatable);
    /// broadcast and unknown unicast reach it before any of its instances is known.
    #[arg(long = "peer")]
    peers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum InstanceCmd {
    /// ferroflowctl instance add vm1 --network 1 --port vm1 --mac 52:54:00:00:00:01 --ip 10.0.0.1 --ipv6 fd00::1
    Add(InstanceAdd),
    #[command(alias = "del", alias = "rm")]
    Remove { name: String },
    /// Instances with their anti-spoofing drop counters.
    List,
}

#[derive(Args, Debug)]
pub struct InstanceAdd {
    name: String,
    #[arg(long)]
    network: u32,
    #[arg(long)]
    mac: String,
    /// An address it may use (repeatable).
    #[arg(long = "ip")]
    addresses: Vec<String>,
    /// An IPv6 address it may use besides its link-local one (repeatable).
    #[arg(long = "ipv6")]
    ipv6: Vec<String>,
    /// The port it is attached to here.
    #[arg(long)]
    port: Option<String>,
    /// A vnet instance on another host: that host's backbone MAC.
    #[arg(long)]
    host_mac: Option<String>,
    /// A vxlan or geneve instance on another host: that host's tunnel endpoint IP.
    #[arg(long)]
    host_ip: Option<String>,
    /// A security group whose rules filter its traffic (repeatable; none: not filtered).
    #[arg(long = "secgroup")]
    security_groups: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum MetadataCmd {
    /// ferroflowctl metadata set per-instance --host-ip 10.255.0.1 --host-mac 02:00:00:00:ff:01
    Set {
        /// per-connection, per-instance, subnet or nat.
        mode: String,
        #[arg(long)]
        host_ip: String,
        #[arg(long)]
        host_mac: String,
        #[arg(long, default_value_t = 8775)]
        host_port: u32,
    },
    /// Remove the metadata service's flows.
    Disable,
    Show,
}

fn client(ch: &Channel) -> pb::network_service_client::NetworkServiceClient<Channel> {
    pb::network_service_client::NetworkServiceClient::new(ch.clone())
}

pub async fn network(ch: &Channel, cmd: &NetworkCmd, json: bool) -> Result<()> {
    let mut c = client(ch);
    match cmd {
        NetworkCmd::Create(a) => {
            let n = c
                .create_network(pb::Network {
                    id: a.id,
                    name: a.name.clone(),
                    kind: a.kind.clone(),
                    uplink: a.uplink.clone().unwrap_or_default(),
                    vlan: a.vlan.unwrap_or(0),
                    gateway: a.gateway.clone().unwrap_or_default(),
                    gateway_mac: a.gateway_mac.clone().unwrap_or_default(),
                    prefixes: a.prefixes.clone(),
                    backbone_mac: a.backbone_mac.clone().unwrap_or_default(),
                    local_ip: a.local_ip.clone().unwrap_or_default(),
                    peers: a.peers.clone(),
                })
                .await?
                .into_inner();
            print_done(json, &n, |n| {
                format!("created {} network {} ({})", n.kind, n.id, n.name)
            });
        }
        NetworkCmd::Delete { id } => {
            c.delete_network(pb::DeleteNetworkRequest { id: *id })
                .await?;
            print_deleted(json, || format!("deleted network {id}"));
        }
        NetworkCmd::List => {
            let list = c
                .list_networks(pb::ListNetworksRequest {})
                .await?
                .into_inner()
                .networks;
            print_list(
                json,
                &list,
                &[">ID", "NAME", "KIND", "UPLINK", "GATEWAY", "DETAIL"],
                |n| {
                    let detail = match n.kind.as_str() {
                        "vlan" => format!("vlan {}", n.vlan),
                        "vnet" => format!("backbone {}", n.backbone_mac),
                        "vxlan" | "geneve" if n.peers.is_empty() => {
                            format!("endpoint {}", n.local_ip)
                        }
                        "vxlan" | "geneve" => {
                            format!("endpoint {} peers {}", n.local_ip, n.peers.join(" "))
                        }
                        "private" => n.prefixes.join(" "),
                        _ => String::new(),
                    };
                    vec![
                        n.id.to_string(),
                        n.name.clone(),
                        n.kind.clone(),
                        n.uplink.clone(),
                        n.gateway.clone(),
                        detail,
                    ]
                },
            );
        }
    }
    Ok(())
}

pub async fn instance(ch: &Channel, cmd: &InstanceCmd, json: bool) -> Result<()> {
    let mut c = client(ch);
    match cmd {
        InstanceCmd::Add(a) => {
            let i = c
                .add_instance(pb::Instance {
                    name: a.name.clone(),
                    network: a.network,
                    mac: a.mac.clone(),
                    addresses: a.addresses.clone(),
                    ipv6: a.ipv6.clone(),
                    port: a.port.clone().unwrap_or_default(),
                    host_mac: a.host_mac.clone().unwrap_or_default(),
                    host_ip: a.host_ip.clone().unwrap_or_default(),
                    security_groups: a.security_groups.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            print_done(json, &i, |i| {
                format!("added instance {} to network {}", i.name, i.network)
            });
        }
        InstanceCmd::Remove { name } => {
            c.remove_instance(pb::RemoveInstanceRequest { name: name.clone() })
                .await?;
            print_deleted(json, || format!("removed instance {name}"));
        }
        InstanceCmd::List => {
            let list = c
                .list_instances(pb::ListInstancesRequest {})
                .await?
                .into_inner()
                .instances;
            print_list(
                json,
                &list,
                &["NAME", ">NETWORK", "PORT", "MAC", "ADDRESSES", ">SPOOFED"],
                |i| {
                    let at = if !i.host_ip.is_empty() {
                        format!("remote {}", i.host_ip)
                    } else if i.port.is_empty() {
                        format!("remote {}", i.host_mac)
                    } else {
                        i.port.clone()
                    };
                    vec![
                        i.name.clone(),
                        i.network.to_string(),
                        at,
                        i.mac.clone(),
                        i.addresses
                            .iter()
                            .chain(&i.ipv6)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" "),
                        i.spoofed_packets.to_string(),
                    ]
                },
            );
        }
    }
    Ok(())
}

pub async fn metadata(ch: &Channel, cmd: &MetadataCmd, json: bool) -> Result<()> {
    let mut c = client(ch);
    let md = match cmd {
        MetadataCmd::Set {
            mode,
            host_ip,
            host_mac,
            host_port,
        } => c
            .set_metadata_service(pb::MetadataService {
                enabled: true,
                mode: mode.clone(),
                host_ip: host_ip.clone(),
                host_mac: host_mac.clone(),
                host_port: *host_port,
            })
            .await?
            .into_inner(),
        MetadataCmd::Disable => c
            .set_metadata_service(pb::MetadataService::default())
            .await?
            .into_inner(),
        MetadataCmd::Show => c
            .get_metadata_service(pb::GetMetadataServiceRequest {})
            .await?
            .into_inner(),
    };
    print_done(json, &md, |md| {
        if md.enabled {
            format!(
                "metadata service: {} -> {}:{} ({}) through LOCAL",
                md.mode, md.host_ip, md.host_port, md.host_mac
            )
        } else {
            "metadata service: disabled".to_owned()
        }
    });
    Ok(())
}
