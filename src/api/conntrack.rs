//! ConntrackService: dump, flush and stats of the workers' connection trackers
//! (`ferroflowctl conntrack`). Each call is answered by every worker between bursts and
//! waited for without the switch's state lock, bounded by the datapath's `ack_timeout`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use datapath::{ConntrackOp, ConntrackReply};
use tonic::{Request, Response, Status};

use super::{pb, Api, ApiError};
use crate::switch::ConntrackOpsError;

pub struct Conntrack(pub Arc<Api>);

impl From<ConntrackOpsError> for ApiError {
    fn from(e: ConntrackOpsError) -> Self {
        let msg = e.to_string();
        match e {
            ConntrackOpsError::Busy(_) => ApiError::Unavailable(msg),
            ConntrackOpsError::NoDatapath => ApiError::FailedPrecondition(msg),
            // A stalled or busy worker: the client may retry.
            ConntrackOpsError::Datapath(_) => ApiError::Unavailable(msg),
        }
    }
}

/// The zone asked for; a number beyond 16 bits is refused (INVALID_ARGUMENT).
fn zone_arg(zone: Option<u32>) -> Result<Option<u16>, ApiError> {
    match zone.map(u16::try_from) {
        None => Ok(None),
        Some(Ok(z)) => Ok(Some(z)),
        Some(Err(_)) => Err(ApiError::InvalidArgument {
            field: "zone".into(),
            message: format!(
                "zone {} is out of range (0-65535)",
                zone.unwrap_or_default()
            ),
        }),
    }
}

/// An address as people write it.
pub fn addr_string(a: conntrack::Addr, v6: bool) -> String {
    if v6 {
        Ipv6Addr::from(a).to_string()
    } else {
        Ipv4Addr::from(a as u32).to_string()
    }
}

/// The protocol as `ovs-appctl dpctl/dump-conntrack` names it.
pub fn proto_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        p => p.to_string(),
    }
}

fn tuple(t: &conntrack::Tuple) -> pb::ConntrackTuple {
    pb::ConntrackTuple {
        src: addr_string(t.src, t.v6),
        dst: addr_string(t.dst, t.v6),
        sport: t.sport.into(),
        dport: t.dport.into(),
    }
}

fn entry(c: &conntrack::ConnInfo, lcore: u32) -> pb::ConntrackEntry {
    pb::ConntrackEntry {
        protocol: proto_name(c.orig.proto),
        ip_proto: c.orig.proto.into(),
        orig: Some(tuple(&c.orig)),
        reply: Some(tuple(&c.reply)),
        zone: c.orig.zone.into(),
        mark: c.mark,
        label: format!("{:#x}", c.label),
        state: c.tcp_state.map(|s| s.name().to_owned()).unwrap_or_default(),
        expires_in_ms: c.expires_in_ms,
        seen_reply: c.seen_reply,
        assured: c.assured,
        snat: c.snat,
        dnat: c.dnat,
        lcore,
    }
}

fn add(c: &mut pb::ConntrackCounters, entries: u64, committed: u64, invalid: u64, full: u64) {
    c.entries += entries;
    c.committed += committed;
    c.invalid += invalid;
    c.table_full += full;
}

/// Sums the workers' stats; with `zone`, the totals are that zone's.
pub fn stats_reply(
    replies: &[ConntrackReply],
    zone: Option<u16>,
    capacity_per_worker: u64,
) -> pb::ConntrackStatsReply {
    let mut r = pb::ConntrackStatsReply {
        enabled: replies.iter().any(|w| w.enabled),
        totals: Some(pb::ConntrackCounters::default()),
        ..Default::default()
    };
    let mut zones: std::collections::BTreeMap<Option<u16>, pb::ConntrackCounters> =
        Default::default();
    for w in replies.iter().filter(|w| w.enabled) {
        r.capacity += capacity_per_worker;
        let s = &w.stats;
        r.packets += s.packets;
        r.malformed += s.malformed;
        r.nat_exhausted += s.nat_exhausted;
        r.collisions += s.collisions;
        r.expired += s.expired;
        r.related += s.related;
        r.foreign += s.foreign;
        r.nat_source_remapped += s.nat_source_remapped;
        r.handed_off += w.handed_off;
        r.handoff_dropped += w.handoff_dropped;
        if zone.is_none() {
            let t = r.totals.get_or_insert_with(Default::default);
            add(t, s.entries, s.committed, s.invalid, s.table_full);
        }
        for z in &w.zones {
            if zone.is_some_and(|q| z.zone != Some(q)) {
                continue;
            }
            let c = zones.entry(z.zone).or_default();
            add(c, z.entries, z.committed, z.invalid, z.table_full);
            if zone.is_some() {
                let t = r.totals.get_or_insert_with(Default::default);
                add(t, z.entries, z.committed, z.invalid, z.table_full);
            }
        }
    }
    r.zones = zones
        .into_iter()
        .map(|(zone, counters)| pb::ConntrackZoneStats {
            zone: zone.map(u32::from),
            counters: Some(counters),
        })
        .collect();
    r
}

impl Conntrack {
    async fn ask(&self, op: ConntrackOp) -> Result<Vec<ConntrackReply>, Status> {
        let api = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || api.sw.conntrack(op).map_err(ApiError::from))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl pb::conntrack_service_server::ConntrackService for Conntrack {
    async fn dump(
        &self,
        req: Request<pb::ConntrackDumpRequest>,
    ) -> Result<Response<pb::ConntrackDumpReply>, Status> {
        let req = req.into_inner();
        let zone = zone_arg(req.zone).map_err(Status::from)?;
        let limit = match req.limit as usize {
            0 => datapath::MAX_DUMP_ENTRIES,
            n => n.min(datapath::MAX_DUMP_ENTRIES),
        };
        let replies = self.ask(ConntrackOp::Dump { zone, limit }).await?;
        let mut out = pb::ConntrackDumpReply {
            enabled: replies.iter().any(|w| w.enabled),
            ..Default::default()
        };
        for w in &replies {
            out.total += w.matching as u64;
            out.entries
                .extend(w.connections.iter().map(|c| entry(c, w.lcore)));
        }
        out.truncated = (out.entries.len() as u64) < out.total;
        Ok(Response::new(out))
    }

    async fn flush(
        &self,
        req: Request<pb::ConntrackFlushRequest>,
    ) -> Result<Response<pb::ConntrackFlushReply>, Status> {
        let zone = zone_arg(req.into_inner().zone).map_err(Status::from)?;
        let replies = self.ask(ConntrackOp::Flush { zone }).await?;
        let flushed = replies.iter().map(|w| w.flushed as u64).sum();
        tracing::info!(?zone, flushed, "conntrack flushed");
        Ok(Response::new(pb::ConntrackFlushReply { flushed }))
    }

    async fn stats(
        &self,
        req: Request<pb::ConntrackStatsRequest>,
    ) -> Result<Response<pb::ConntrackStatsReply>, Status> {
        let zone = zone_arg(req.into_inner().zone).map_err(Status::from)?;
        let replies = self.ask(ConntrackOp::Stats).await?;
        let capacity = self.0.sw.config.conntrack.max_connections as u64;
        Ok(Response::new(stats_reply(&replies, zone, capacity)))
    }
}
