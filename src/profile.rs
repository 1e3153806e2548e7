//! The virtual-network profile on a running switch: the description
//! (networks, instances, metadata service) as the operator last set it, the
//! flows it compiled to, and the packets its flows send to the control plane.
//!
//! The profile owns exactly the flows whose cookie carries [`vnet::COOKIE_TAG`]:
//! a change installs the difference between the old and new flow sets as one
//! batch, published at once, and never touches another flow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ferroflow_config::{InstanceConfig, MetadataConfig, NetworkConfig};
use ofproto::OfTransaction;
use openflow::consts::OFPTT_ALL;
use openflow::messages::{FlowMod, FlowModCommand};
use std::time::Duration;
use vnet::{compile, Model, ProfileError, ProfileFlow, Role};

use crate::switch::State;

/// The operator's description, as the API and the config file spell it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    pub networks: Vec<NetworkConfig>,
    pub instances: Vec<InstanceConfig>,
    pub metadata: Option<MetadataConfig>,
    pub security_groups: Vec<ferroflow_config::SecurityGroupConfig>,
}

/// Counters of the control plane's part, exported as metrics.
#[derive(Debug, Default)]
pub struct ProfileCounters {
    /// Packets the profile's flows sent up and that it acted on.
    pub packet_ins: AtomicU64,
    /// ... and that it refused (a source outside a private network, ...).
    pub refused: AtomicU64,
    /// Flows installed on demand (metadata connections, verified sources).
    pub flows_on_demand: AtomicU64,
}

/// Why a profile change was not applied; the switch is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum ProfileChangeError {
    #[error(transparent)]
    Invalid(#[from] ProfileError),
    #[error("flow {flow}: {message}")]
    Flow { flow: String, message: String },
    /// A table the profile writes into is at its `flow_limit`: nothing changed.
    #[error("flow {flow}: {message} (raise [bridge] flow_limit or remove flows)")]
    TableFull { flow: String, message: String },
}

/// The profile's part of the switch's state ([`crate::switch::State`]).
#[derive(Default)]
pub struct ProfileState {
    desc: Description,
    model: Model,
    /// What is installed: (table, priority, match) -> flow.
    installed: BTreeMap<(u8, u16, String), ProfileFlow>,
    /// Each instance's anti-spoofing entries (table, priority, match), so that
    /// its drop counts are a few hash lookups, not a scan of every table.
    spoof_entries: BTreeMap<String, Vec<(u8, u16, pipeline::Match)>>,
    /// Each filtered instance's security-group entries, by [`FirewallCounters`] field:
    /// allowed new, no rule, invalid.
    sg_entries: BTreeMap<String, [Vec<EntryId>; 3]>,
}

/// A flow entry as the tables identify it: (table, priority, match).
type EntryId = (u8, u16, pipeline::Match);

/// What the security groups did with a filtered instance's packets (both directions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirewallCounters {
    /// Packets of new connections a rule allowed (committed).
    pub allowed_new: u64,
    /// Packets of new connections no rule allowed (dropped).
    pub dropped_no_rule: u64,
    /// Packets conntrack found invalid (dropped).
    pub dropped_invalid: u64,
}

impl ProfileState {
    pub fn description(&self) -> &Description {
        &self.desc
    }

    pub fn is_active(&self) -> bool {
        !self.model.is_empty()
    }

    /// The tunnel ports its vxlan and geneve networks use towards peer hosts.
    pub fn peers(&self) -> &[vnet::Peer] {
        &self.model.peers
    }
}

/// Replaces the description: checks it against the ports, compiles it, and
/// installs the difference as one transaction. On error nothing changes.
pub fn set(st: &mut State, now: Duration, desc: Description) -> Result<(), ProfileChangeError> {
    let model = Model::build(
        &desc.networks,
        &desc.instances,
        desc.metadata.as_ref(),
        &st.ports,
    )?
    .with_security_groups(&desc.security_groups)?;
    let mut new: BTreeMap<(u8, u16, String), ProfileFlow> = BTreeMap::new();
    for f in compile(&model) {
        new.insert((f.table, f.priority, f.match_.clone()), f);
    }
    let prof = &st.profile;
    let mut mods = Vec::new();
    for (k, f) in &prof.installed {
        if !new.contains_key(k) {
            let text = format!("table={},priority={},{}", f.table, f.priority, f.match_);
            mods.push((text.clone(), parse(&text, FlowModCommand::DeleteStrict)?));
        }
    }
    for (k, f) in &new {
        if prof.installed.get(k) != Some(f) {
            mods.push((f.text.clone(), parse(&f.text, FlowModCommand::Add)?));
        }
    }
    // On-demand flows of instances and networks that are gone.
    let gone_instances = prof
        .model
        .instances
        .iter()
        .filter(|i| {
            !model
                .instances
                .iter()
                .any(|j| j.name == i.name && j.port == i.port)
        })
        .map(|i| Role::MetadataConnection.cookie(i.subject));
    let gone_networks = prof
        .model
        .networks
        .iter()
        .filter(|n| !model.networks.iter().any(|m| m.id == n.id))
        .map(|n| Role::VerifiedSource.cookie(n.id));
    for cookie in gone_instances.chain(gone_networks).collect::<Vec<_>>() {
        let mut fm = FlowMod::add(OFPTT_ALL, 0, openflow::Match::any(), Vec::new());
        fm.command = FlowModCommand::Delete;
        fm.cookie = cookie;
        fm.cookie_mask = u64::MAX;
        mods.push((format!("cookie={cookie:#x}"), fm));
    }
    // The peer tunnel ports first (a remote the underlay cannot reach is refused before
    // any flow changes), then the flows; a refused flow puts the old ports back.
    crate::tunnel_ports::sync(st, &model.peers).map_err(|message| ProfileError {
        field: "host_ip".into(),
        message,
    })?;
    if let Err(e) = apply(st, now, &mods) {
        let old = st.profile.model.peers.clone();
        if let Err(back) = crate::tunnel_ports::sync(st, &old) {
            tracing::error!("virtual networks: restoring the tunnel ports: {back}");
        }
        return Err(e);
    }
    let entries_of = |cookie: u64| -> Vec<(u8, u16, pipeline::Match)> {
        new.values()
            .filter(|f| f.cookie == cookie)
            .filter_map(|f| {
                let fm = parse(&f.text, FlowModCommand::Add).ok()?;
                let m = ofproto::convert_match(&fm.match_).ok()?;
                Some((f.table, f.priority, m))
            })
            .collect()
    };
    let mut spoof_entries: BTreeMap<String, Vec<(u8, u16, pipeline::Match)>> = BTreeMap::new();
    for i in &model.instances {
        spoof_entries.insert(i.name.clone(), entries_of(Role::Spoof.cookie(i.subject)));
    }
    let sg_entries = model
        .filtered()
        .map(|(i, _)| {
            let s = i.subject;
            (
                i.name.clone(),
                [
                    entries_of(Role::SgAllowed.cookie(s)),
                    entries_of(Role::SgNoRule.cookie(s)),
                    entries_of(Role::SgInvalid.cookie(s)),
                ],
            )
        })
        .collect();
    st.profile = ProfileState {
        desc,
        model,
        installed: new,
        spoof_entries,
        sg_entries,
    };
    Ok(())
}

/// Who in the description uses port `name` (an instance, a network's uplink).
pub fn port_user(st: &State, name: &str, ofport: u32) -> Option<String> {
    let desc = &st.profile.desc;
    if let Some(i) = desc
        .instances
        .iter()
        .find(|i| i.port.as_deref() == Some(name))
    {
        return Some(format!("instance {:?}", i.name));
    }
    if let Some(n) = desc
        .networks
        .iter()
        .find(|n| n.uplink.as_deref() == Some(name))
    {
        return Some(format!("network {:?} (its uplink)", n.name));
    }
    if desc.metadata.is_some() && ofport == ferroflow_config::OFPP_LOCAL {
        return Some("the metadata service (LOCAL)".into());
    }
    None
}

/// Recompiles after the switch's ports changed (a port that an instance
/// or uplink names came or went). A description that no longer fits the
/// ports keeps its last flows, and says why in the log.
pub fn ports_changed(st: &mut State, now: Duration) {
    let desc = st.profile.desc.clone();
    if desc.networks.is_empty() {
        return;
    }
    if let Err(e) = set(st, now, desc) {
        tracing::warn!("virtual networks: after a port change: {e}");
    }
}

/// A packet a flow sent to the control plane; false if it is not one of
/// the profile's (it then goes to the controllers).
pub fn packet_in(
    st: &mut State,
    now: Duration,
    counters: &ProfileCounters,
    r: &pipeline::packet_in::PacketInRecord,
) -> bool {
    let Some(reaction) = vnet::react(&st.profile.model, r.cookie, r.in_port, &r.data) else {
        return false;
    };
    if let Some(why) = &reaction.refused {
        counters.refused.fetch_add(1, Relaxed);
        tracing::debug!(in_port = r.in_port, "virtual networks: {why}");
    } else {
        counters.packet_ins.fetch_add(1, Relaxed);
    }
    if !reaction.flows.is_empty() {
        let mods: Result<Vec<_>, _> = reaction
            .flows
            .iter()
            .map(|f| parse(&f.text, FlowModCommand::Add).map(|fm| (f.text.clone(), fm)))
            .collect();
        match mods.and_then(|m| apply(st, now, &m)) {
            Ok(()) => {
                counters
                    .flows_on_demand
                    .fetch_add(reaction.flows.len() as u64, Relaxed);
            }
            Err(e) => {
                tracing::warn!("virtual networks: on-demand flows: {e}");
                return true;
            }
        }
    }
    if reaction.reinject {
        st.inject(
            now,
            r.in_port,
            &r.data,
            &[pipeline::Action::output(openflow::consts::OFPP_TABLE)],
        );
    } else if let Some(answer) = &reaction.reply {
        st.inject(
            now,
            r.in_port,
            answer,
            &[pipeline::Action::output(openflow::consts::OFPP_IN_PORT)],
        );
    } else if let Some(port) = reaction.relay {
        st.inject(now, r.in_port, &r.data, &[pipeline::Action::output(port)]);
    }
    true
}

/// Packets and bytes the anti-spoofing drops of instance `name` counted.
pub fn spoofed(st: &mut State, name: &str) -> (u64, u64) {
    st.tables.fold_counters();
    spoofed_folded(st, name).0
}

/// [`spoofed`] without folding (the caller folded once for all instances), and
/// how many entries it looked at: the instance's own anti-spoofing entries,
/// never the tables' other flows.
pub fn spoofed_folded(st: &State, name: &str) -> ((u64, u64), usize) {
    let Some(entries) = st.profile.spoof_entries.get(name) else {
        return ((0, 0), 0);
    };
    let sum = entries.iter().fold((0, 0), |(p, b), (t, prio, m)| {
        let (ep, eb) = st
            .tables
            .strict_entry_counts(*t, *prio, m)
            .unwrap_or_default();
        (p + ep, b + eb)
    });
    (sum, entries.len())
}

/// The filtered instances (in at least one security group), by name.
pub fn filtered_instances(st: &State) -> Vec<String> {
    st.profile.sg_entries.keys().cloned().collect()
}

/// What the security groups did with instance `name`'s packets (None: it is not
/// filtered), from its own entries by hash lookup (the caller folded the tables'
/// counters), and how many entries that looked at.
pub fn firewall_counters_folded(st: &State, name: &str) -> Option<(FirewallCounters, usize)> {
    let sets = st.profile.sg_entries.get(name)?;
    let packets = |set: &Vec<EntryId>| -> u64 {
        set.iter()
            .map(|(t, prio, m)| {
                st.tables
                    .strict_entry_counts(*t, *prio, m)
                    .unwrap_or_default()
                    .0
            })
            .sum()
    };
    Some((
        FirewallCounters {
            allowed_new: packets(&sets[0]),
            dropped_no_rule: packets(&sets[1]),
            dropped_invalid: packets(&sets[2]),
        },
        sets.iter().map(Vec::len).sum(),
    ))
}

fn parse(text: &str, command: FlowModCommand) -> Result<FlowMod, ProfileChangeError> {
    flow_syntax::parse_flow_mod(text, command).map_err(|e| ProfileChangeError::Flow {
        flow: text.to_owned(),
        message: e.to_string(),
    })
}

/// Checks every flow-mod, then applies them all and publishes once.
fn apply(
    st: &mut State,
    now: Duration,
    mods: &[(String, FlowMod)],
) -> Result<(), ProfileChangeError> {
    if mods.is_empty() {
        return Ok(());
    }
    // All or nothing: a refused flow (a full table, say) leaves the tables as they were.
    let mut tx = st.tables.transaction(now);
    let refused = |(i, e): (usize, pipeline::PipelineError)| {
        let (flow, message) = (mods[i].0.clone(), e.to_string());
        match e {
            pipeline::PipelineError::TableFull(_) => {
                ProfileChangeError::TableFull { flow, message }
            }
            _ => ProfileChangeError::Flow { flow, message },
        }
    };
    for (_, fm) in mods {
        tx.of_flow_mod(fm).map_err(refused)?;
    }
    tx.commit().map_err(refused)?;
    st.mark_dirty();
    st.publish_pending();
    Ok(())
}
