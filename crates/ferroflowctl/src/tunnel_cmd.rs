//! `ferroflowctl tunnel list|neighbours`: tunnel ports, their counters and the underlay's
//! next hops (docs/tunnels.md).

use clap::Subcommand;
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::{print_json, table, Result};

#[derive(Subcommand, Debug)]
pub enum TunnelCmd {
    /// Tunnel ports with their counters (per port and remote endpoint), and the frames for
    /// a local tunnel IP dropped instead of decapsulated.
    #[command(alias = "show")]
    List,
    /// The underlay's next hops, resolved by ARP.
    #[command(alias = "neighbors")]
    Neighbours,
}

pub async fn tunnel(ch: &Channel, cmd: &TunnelCmd, json: bool) -> Result<()> {
    let mut c = pb::tunnel_service_client::TunnelServiceClient::new(ch.clone());
    match cmd {
        TunnelCmd::List => {
            let r = c
                .list_tunnels(pb::ListTunnelsRequest {})
                .await?
                .into_inner();
            if json {
                print_json(&r);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = r
                .tunnels
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.ofport.to_string(),
                        t.kind.clone(),
                        format!("{}->{}:{}", t.local_ip, t.remote_ip, t.dst_port),
                        t.vni.clone(),
                        t.tx_packets.to_string(),
                        t.rx_packets.to_string(),
                        t.no_neighbour_drops.to_string(),
                        t.mtu_drops.to_string(),
                        t.no_tun_dst_drops.to_string(),
                    ]
                })
                .collect();
            table(
                &[
                    "TUNNEL",
                    ">OFPORT",
                    "KIND",
                    "ENDPOINTS",
                    "VNI",
                    ">TX_PKTS",
                    ">RX_PKTS",
                    ">NO_NEIGH",
                    ">MTU_DROP",
                    ">NO_TUN_DST",
                ],
                &rows,
            );
            if let Some(u) = r.underlay {
                println!(
                    "decap errors: truncated {} bad_checksum {} wrong_port {} wrong_vni {} other {}; \
                     arp replies {} echo replies {} slow path {} (dropped {})",
                    u.decap_truncated,
                    u.decap_bad_checksum,
                    u.decap_wrong_port,
                    u.decap_wrong_vni,
                    u.decap_other,
                    u.arp_replies_sent,
                    u.icmp_echo_replies_sent,
                    u.slow_path,
                    u.slow_path_dropped
                );
            }
        }
        TunnelCmd::Neighbours => {
            let n = c
                .list_neighbours(pb::ListNeighboursRequest {})
                .await?
                .into_inner()
                .neighbours;
            if json {
                print_json(&n);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = n
                .iter()
                .map(|n| {
                    vec![
                        n.ip.clone(),
                        n.mac.clone(),
                        n.uplink.to_string(),
                        n.state.clone(),
                        n.age_s.to_string(),
                        n.requests.to_string(),
                    ]
                })
                .collect();
            table(
                &["IP", "MAC", ">UPLINK", "STATE", ">AGE_S", ">REQUESTS"],
                &rows,
            );
        }
    }
    Ok(())
}

/// `port add NAME --vxlan|--geneve --uplink P --local-ip A/LEN --remote-ip B --key N|flow`:
/// a tunnel port instead of a device (docs/tunnels.md).
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct TunnelPortArgs {
    /// A VXLAN tunnel port (with --uplink, --local-ip, --remote-ip).
    #[arg(long)]
    vxlan: bool,
    /// A Geneve tunnel port (with --uplink, --local-ip, --remote-ip).
    #[arg(long)]
    geneve: bool,
    /// Tunnel: the port the encapsulated packets use.
    #[arg(long)]
    uplink: Option<String>,
    /// Tunnel: the switch's address on the uplink with its on-link prefix, A.B.C.D/LEN.
    #[arg(long)]
    local_ip: Option<String>,
    /// Tunnel: the far endpoint's IPv4 address.
    #[arg(long)]
    remote_ip: Option<String>,
    /// Tunnel: the VNI, or "flow" (taken from tunnel_id on output).
    #[arg(long)]
    key: Option<String>,
    /// Tunnel: UDP destination port (default 4789 vxlan, 6081 geneve).
    #[arg(long)]
    dst_port: Option<u16>,
    /// Tunnel: fill the outer UDP checksum.
    #[arg(long)]
    csum: bool,
}

impl TunnelPortArgs {
    /// The request's tunnel part; `None` for a device port.
    pub fn request(&self) -> Option<pb::TunnelPortRequest> {
        let kind = match (self.vxlan, self.geneve) {
            (true, _) => "vxlan",
            (_, true) => "geneve",
            _ => return None,
        };
        Some(pb::TunnelPortRequest {
            kind: kind.into(),
            uplink: self.uplink.clone().unwrap_or_default(),
            local_ip: self.local_ip.clone().unwrap_or_default(),
            remote_ip: self.remote_ip.clone().unwrap_or_default(),
            key: self.key.clone().unwrap_or_default(),
            dst_port: self.dst_port.map_or(0, u32::from),
            csum: self.csum,
        })
    }
}
