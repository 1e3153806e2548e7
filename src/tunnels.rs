//! Tunnel ports on the control plane: handing the configured ones to the datapath, and
//! their counters and neighbours for the stats file, `/metrics` and the API.

use datapath::Datapath;
use ferroflow_api::pb;
use ferroflow_config::Config;

use crate::datapath_conv::{tunnel_specs, underlay_settings};

/// Gives the datapath the configured tunnel ports and the `[tunnels]` settings.
pub fn start(dp: &mut Datapath, config: &Config) -> anyhow::Result<()> {
    let specs = tunnel_specs(config).map_err(anyhow::Error::msg)?;
    // Set even without tunnel ports: those added later (API, profile) use the settings.
    let settings = underlay_settings(&config.tunnels).map_err(anyhow::Error::msg)?;
    dp.set_tunnels(&specs, settings)?;
    Ok(())
}

/// Tunnel ports the datapath has that are not configured ports: the virtual-network
/// profile's, one per peer host of a `vxlan`/`geneve` network. Port listings (gRPC,
/// `ferroflowctl ports`, OpenFlow port descriptions and stats) add them after the
/// configured ports so they are not only in `tunnel list`.
pub fn unconfigured(
    configured: &[ferroflow_config::PortConfig],
    dp: Option<&Datapath>,
) -> Vec<datapath::TunnelStatus> {
    dp.map(|d| d.tunnels())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !configured.iter().any(|p| p.ofport == t.ofport))
        .collect()
}

/// A tunnel port's packets that were not sent, whatever the reason (its `tx_dropped`).
pub fn tx_dropped(t: &datapath::TunnelStatus) -> u64 {
    t.no_neighbour_drops + t.mtu_drops + t.encap_failed + t.no_tun_dst_drops
}

/// What `/metrics` reads of the tunnels, copied out under the switch's state.
#[derive(Default)]
pub struct TunnelReading {
    pub tunnels: Vec<datapath::TunnelStatus>,
    pub neighbours: Vec<datapath::NeighbourStatus>,
    pub underlay: datapath::UnderlayStatus,
}

impl TunnelReading {
    pub fn read(dp: &Datapath) -> TunnelReading {
        TunnelReading {
            tunnels: dp.tunnels(),
            neighbours: dp.neighbours(),
            underlay: dp.underlay_status(),
        }
    }
}

/// The tunnel series: per tunnel port (labels `port`, `remote`: a port has one remote
/// endpoint), the underlay's drops by reason, and the neighbours' resolution state.
pub fn register_metrics(r: &prometheus::Registry, t: &TunnelReading) {
    use prometheus::{IntCounterVec, IntGaugeVec, Opts};
    let counter = |name: &str, help: &str, labels: &[&str]| {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
        r.register(Box::new(c.clone())).expect("unique metric");
        c
    };
    let l = ["port", "remote"];
    let per_port = [
        (
            "ferroflow_tunnel_tx_packets_total",
            "Packets encapsulated and sent on the uplink.",
            0,
        ),
        (
            "ferroflow_tunnel_tx_bytes_total",
            "Inner bytes encapsulated and sent.",
            1,
        ),
        (
            "ferroflow_tunnel_rx_packets_total",
            "Packets decapsulated.",
            2,
        ),
        (
            "ferroflow_tunnel_rx_bytes_total",
            "Inner bytes decapsulated.",
            3,
        ),
        (
            "ferroflow_tunnel_no_neighbour_drops_total",
            "Packets not sent: the next hop's MAC unresolved.",
            4,
        ),
        (
            "ferroflow_tunnel_mtu_drops_total",
            "Packets not sent: too big for the uplink MTU once encapsulated.",
            5,
        ),
        (
            "ferroflow_tunnel_encap_failed_total",
            "Packets not sent: no buffer or headroom for the outer headers.",
            6,
        ),
        (
            "ferroflow_tunnel_no_tun_dst_drops_total",
            "Packets not sent: output to a remote_ip=flow port without a (routable) tun_dst.",
            7,
        ),
        (
            "ferroflow_tunnel_frag_needed_total",
            "Of the MTU drops: IPv4 with DF, answered with ICMP fragmentation-needed.",
            8,
        ),
    ];
    for (name, help, i) in per_port {
        let c = counter(name, help, &l);
        for p in &t.tunnels {
            let v = [
                p.tx_packets,
                p.tx_bytes,
                p.rx_packets,
                p.rx_bytes,
                p.no_neighbour_drops,
                p.mtu_drops,
                p.encap_failed,
                p.no_tun_dst_drops,
                p.frag_needed,
            ][i];
            c.with_label_values(&[&p.name, &p.remote_ip]).inc_by(v);
        }
    }
    if t.tunnels.is_empty() {
        return;
    }
    let u = &t.underlay;
    let drops = counter(
        "ferroflow_tunnel_decap_errors_total",
        "Frames for a local tunnel IP dropped instead of decapsulated, by reason.",
        &["reason"],
    );
    for (reason, v) in [
        ("truncated", u.decap_truncated),
        ("bad_checksum", u.decap_bad_checksum),
        ("wrong_port", u.decap_wrong_port),
        ("wrong_vni", u.decap_wrong_vni),
        ("other", u.decap_other),
    ] {
        drops.with_label_values(&[reason]).inc_by(v);
    }
    for (name, help, v) in [
        (
            "ferroflow_tunnel_slow_path_total",
            "ARP and ICMP for a local tunnel IP handed to the control plane.",
            u.slow_path,
        ),
        (
            "ferroflow_tunnel_slow_path_dropped_total",
            "... dropped because the queue to the control plane was full.",
            u.slow_path_dropped,
        ),
        (
            "ferroflow_tunnel_arp_replies_total",
            "ARP replies sent for local tunnel IPs.",
            u.arp_replies_sent,
        ),
        (
            "ferroflow_tunnel_icmp_echo_replies_total",
            "ICMP echo replies sent from local tunnel IPs.",
            u.icmp_echo_replies_sent,
        ),
        (
            "ferroflow_tunnel_icmp_frag_needed_sent_total",
            "ICMP fragmentation-needed sent to senders of oversized IPv4 with DF.",
            u.icmp_frag_needed_sent,
        ),
        (
            "ferroflow_tunnel_neighbour_queued_total",
            "Encapsulated packets held while their next hop resolved.",
            u.neighbour_queued,
        ),
        (
            "ferroflow_tunnel_neighbour_queue_sent_total",
            "Held packets sent once their next hop resolved.",
            u.neighbour_queue_sent,
        ),
        (
            "ferroflow_tunnel_neighbour_queue_overflow_total",
            "Packets dropped: their unresolved next hop already held 16.",
            u.neighbour_queue_overflow,
        ),
        (
            "ferroflow_tunnel_neighbour_queue_timeouts_total",
            "Held packets dropped: their next hop never answered ARP.",
            u.neighbour_queue_timeouts,
        ),
    ] {
        counter(name, help, &[]).with_label_values(&[]).inc_by(v);
    }
    let g = IntGaugeVec::new(
        Opts::new(
            "ferroflow_tunnel_neighbour_resolved",
            "1 while the next hop's MAC is known.",
        ),
        &["ip", "uplink"],
    )
    .expect("metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    for n in &t.neighbours {
        g.with_label_values(&[&n.ip, &n.uplink.to_string()])
            .set(i64::from(!n.mac.is_empty()));
    }
}

/// TunnelService: the tunnel ports, their counters and the neighbour table.
pub struct Service(pub std::sync::Arc<crate::api::Api>);

impl Service {
    /// A copy of the tunnel state, taken under the switch's state on a blocking thread.
    async fn reading(&self) -> Result<TunnelReading, tonic::Status> {
        let api = std::sync::Arc::clone(&self.0);
        let read = tokio::task::spawn_blocking(move || {
            // Busy past its bound: UNAVAILABLE, as every other call.
            let st = api.sw.lock().map_err(|e| e.to_string())?;
            Ok::<_, String>(
                st.datapath
                    .as_ref()
                    .map(TunnelReading::read)
                    .unwrap_or_default(),
            )
        })
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
        read.map_err(tonic::Status::unavailable)
    }
}

#[tonic::async_trait]
impl pb::tunnel_service_server::TunnelService for Service {
    async fn list_tunnels(
        &self,
        _req: tonic::Request<pb::ListTunnelsRequest>,
    ) -> Result<tonic::Response<pb::ListTunnelsResponse>, tonic::Status> {
        let r = self.reading().await?;
        let u = &r.underlay;
        Ok(tonic::Response::new(pb::ListTunnelsResponse {
            tunnels: r
                .tunnels
                .into_iter()
                .map(|t| pb::Tunnel {
                    name: t.name,
                    ofport: t.ofport,
                    kind: t.kind.into(),
                    local_ip: t.local_ip,
                    remote_ip: t.remote_ip,
                    vni: t.vni,
                    dst_port: t.dst_port.into(),
                    next_hop: t.next_hop,
                    next_hop_mac: t.next_hop_mac,
                    tx_packets: t.tx_packets,
                    tx_bytes: t.tx_bytes,
                    rx_packets: t.rx_packets,
                    rx_bytes: t.rx_bytes,
                    no_neighbour_drops: t.no_neighbour_drops,
                    mtu_drops: t.mtu_drops,
                    encap_failed: t.encap_failed,
                    no_tun_dst_drops: t.no_tun_dst_drops,
                    icmp_frag_needed_sent: t.frag_needed,
                })
                .collect(),
            underlay: Some(pb::UnderlayCounters {
                decap_truncated: u.decap_truncated,
                decap_bad_checksum: u.decap_bad_checksum,
                decap_wrong_port: u.decap_wrong_port,
                decap_wrong_vni: u.decap_wrong_vni,
                decap_other: u.decap_other,
                slow_path: u.slow_path,
                slow_path_dropped: u.slow_path_dropped,
                arp_replies_sent: u.arp_replies_sent,
                icmp_echo_replies_sent: u.icmp_echo_replies_sent,
                icmp_frag_needed_sent: u.icmp_frag_needed_sent,
                neighbour_queued: u.neighbour_queued,
                neighbour_queue_sent: u.neighbour_queue_sent,
                neighbour_queue_overflow: u.neighbour_queue_overflow,
                neighbour_queue_timeouts: u.neighbour_queue_timeouts,
            }),
        }))
    }

    async fn list_neighbours(
        &self,
        _req: tonic::Request<pb::ListNeighboursRequest>,
    ) -> Result<tonic::Response<pb::ListNeighboursResponse>, tonic::Status> {
        let r = self.reading().await?;
        Ok(tonic::Response::new(pb::ListNeighboursResponse {
            neighbours: r
                .neighbours
                .into_iter()
                .map(|n| pb::Neighbour {
                    ip: n.ip,
                    mac: n.mac,
                    uplink: n.uplink,
                    age_s: n.age_s,
                    state: n.state.into(),
                    requests: n.requests,
                })
                .collect(),
        }))
    }
}

/// A tunnel port's own keys, for the store's `[[ports]]` entry (nothing for an ethdev).
pub fn port_table(p: &ferroflow_config::PortConfig, t: &mut toml_edit::Table) {
    use ferroflow_config::{PortKind, TunnelKey};
    use toml_edit::value;
    let kind = match p.kind {
        PortKind::Ethdev => return,
        PortKind::Vxlan => "vxlan",
        PortKind::Geneve => "geneve",
    };
    t.insert("kind", value(kind));
    for (k, v) in [
        ("uplink", &p.uplink),
        ("local_ip", &p.local_ip),
        ("remote_ip", &p.remote_ip),
    ] {
        if let Some(v) = v {
            t.insert(k, value(v.as_str()));
        }
    }
    match p.key {
        Some(TunnelKey::Fixed(v)) => {
            t.insert("key", value(i64::from(v)));
        }
        Some(TunnelKey::Flow) => {
            t.insert("key", value("flow"));
        }
        None => {}
    }
    if let Some(d) = p.dst_port {
        t.insert("dst_port", value(i64::from(d)));
    }
    if p.csum {
        t.insert("csum", value(true));
    }
}

#[cfg(test)]
mod tests {
    use ferroflow_config::{PortConfig, PortKind, TunnelKey};

    #[test]
    fn store_entry_of_a_tunnel_port_reads_back_the_same() {
        let p = PortConfig {
            name: "vx".into(),
            ofport: 10,
            kind: PortKind::Vxlan,
            uplink: Some("up".into()),
            local_ip: Some("192.0.2.1/24".into()),
            remote_ip: Some("192.0.2.2".into()),
            key: Some(TunnelKey::Flow),
            dst_port: Some(4790),
            csum: true,
            ..Default::default()
        };
        let mut t = toml_edit::Table::new();
        t.insert("name", toml_edit::value("vx"));
        t.insert("ofport", toml_edit::value(10));
        super::port_table(&p, &mut t);
        let back: PortConfig = toml::from_str(&t.to_string()).unwrap();
        assert_eq!(back, p);
    }
}
