//! The gRPC management API (`proto/ferroflow/v1`): ports, the bridge and its
//! controllers, flows, groups, meters, datapath status and an event stream.
//!
//! Every change goes through [`Api`], one at a time, and is written to the
//! config store before the call returns, so what a client was told is what a
//! restart brings back.

pub use ferroflow_api::client;
mod capture;
pub(crate) mod conntrack;
pub mod convert;
pub mod limits;
mod networks;
pub mod port_rules;
mod rebalance;
mod secgroups;
mod services;
mod trace;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferroflow_config::{Config, GrpcConfig, PortConfig};
use flow_syntax::{format_flow, FlowText};
use ofagent::{Agent, ControllerLink, Target};
use ofproto::OfTransaction;
use openflow::consts::{OFPG_ANY, OFPP_ANY, OFPTT_ALL};
use openflow::messages::{
    FlowMod, FlowModCommand, GroupMod, GroupModCommand, MeterMod, MeterModCommand,
};
use parking_lot::Mutex;
use pipeline::PipelineError;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::store::{Store, StoreError, StoreState};
use crate::switch::{PortChangeError, Switch};

/// The generated messages and services (in `ferroflow-api`, which
/// ferroflowctl uses without DPDK).
pub use ferroflow_api::pb;

/// Why a management call failed, mapped onto gRPC status codes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field the switch cannot use; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well formed but the switch's state refuses it (a
    /// missing group or meter, an overlapping flow).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// The request asks for something only the config file may do (a port
    /// outside `[grpc]`'s port rules).
    #[error("{0}")]
    PermissionDenied(String),
    /// The switch could not do it now (its state busy past its bound, a
    /// worker that does not take a new version); the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The change was applied but could not be written to the config store:
    /// the switch runs unsaved (status, `ferroflow_config_unsaved`) and retries.
    #[error(
        "applied, but not saved (the switch keeps retrying; ferroflowctl status shows it): {0}"
    )]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A pipeline refusal of change `field`.
    fn pipeline(field: &str, e: PipelineError) -> ApiError {
        use PipelineError::*;
        let msg = format!("{field}: {e}");
        match e {
            BadOutGroup(_)
            | UnknownMeterInInstruction(_)
            | UnknownGroup(_)
            | UnknownMeter(_)
            | Overlap
            | ChainedGroup(_)
            | GroupLoop(_) => ApiError::FailedPrecondition(msg),
            GroupExists(_) | MeterExists(_) => ApiError::AlreadyExists(msg),
            TableFull(_) => ApiError::ResourceExhausted(msg),
            _ => ApiError::invalid(field, e.to_string()),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let msg = e.to_string();
        match e {
            ApiError::InvalidArgument { .. } => tonic::Status::invalid_argument(msg),
            ApiError::NotFound(_) => tonic::Status::not_found(msg),
            ApiError::AlreadyExists(_) => tonic::Status::already_exists(msg),
            ApiError::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            ApiError::ResourceExhausted(_) => tonic::Status::resource_exhausted(msg),
            ApiError::PermissionDenied(_) => tonic::Status::permission_denied(msg),
            ApiError::Unavailable(_) => tonic::Status::unavailable(msg),
            ApiError::Store(_) | ApiError::Internal(_) => tonic::Status::internal(msg),
        }
    }
}

impl From<PortChangeError> for ApiError {
    fn from(e: PortChangeError) -> Self {
        let msg = e.to_string();
        match e {
            PortChangeError::Invalid(m) => {
                let (field, message) = m.split_once(": ").unwrap_or(("port", &m));
                // ports[3].tag -> tag: the request has one port.
                let field = field.rsplit('.').next().unwrap_or(field);
                ApiError::invalid(field, message)
            }
            PortChangeError::NameExists(_) | PortChangeError::OfportExists(_) => {
                ApiError::AlreadyExists(msg)
            }
            PortChangeError::NoSuchPort(_) => ApiError::NotFound(msg),
            PortChangeError::Stopped | PortChangeError::InUse(..) => {
                ApiError::FailedPrecondition(msg)
            }
            PortChangeError::Busy(b) => busy(b),
            PortChangeError::Datapath(datapath::DatapathError::PortExists(_)) => {
                ApiError::AlreadyExists(msg)
            }
            PortChangeError::Datapath(datapath::DatapathError::TooManyPorts) => {
                ApiError::ResourceExhausted(msg)
            }
            PortChangeError::Datapath(datapath::DatapathError::Port { .. }) => {
                ApiError::invalid("devargs", msg)
            }
            // An unknown user or group, or a socket the switch may not chown.
            PortChangeError::Datapath(datapath::DatapathError::SocketAccess { .. }) => {
                ApiError::FailedPrecondition(msg)
            }
            // A worker that did not take the change in time: nothing changed, try again.
            PortChangeError::Datapath(
                datapath::DatapathError::WorkerBusy { .. }
                | datapath::DatapathError::WorkerTimeout { .. }
                | datapath::DatapathError::Retiring(_),
            ) => ApiError::Unavailable(msg),
            PortChangeError::Datapath(_) => ApiError::Internal(msg),
        }
    }
}

/// Flow-mods by where they came from, for metrics.
#[derive(Debug, Default)]
pub struct FlowModCounters {
    pub grpc_applied: AtomicU64,
    pub grpc_refused: AtomicU64,
    pub openflow_applied: AtomicU64,
    pub openflow_refused: AtomicU64,
}

/// What the API added and so must persist: controllers re-install their own.
/// Part of the switch's state ([`crate::switch::State::api_owned`]).
#[derive(Debug, Default)]
pub struct Owned {
    /// (table, priority, match as printed): the identity of an entry.
    pub flows: HashSet<(u8, u16, String)>,
    pub groups: BTreeSet<u32>,
    pub meters: BTreeSet<u32>,
}

pub struct Api {
    pub sw: Arc<Switch>,
    agent: Mutex<Weak<Agent>>,
    controllers: Mutex<Vec<ControllerLink>>,
    events: broadcast::Sender<pb::Event>,
    store: Option<Store>,
    pub flow_mods: Arc<FlowModCounters>,
    /// One change, and its save, at a time. Taken before the switch's state
    /// (never while holding it), so the order is always change, then state.
    change: Mutex<()>,
    /// What the event stream last reported.
    seen: Mutex<Seen>,
    /// The gRPC server's refusals (its limits), for /metrics.
    pub grpc: Arc<limits::GrpcCounters>,
    /// Why the last save failed, while the running switch is ahead of its file.
    unsaved: Mutex<Option<String>>,
}

type PortStates = HashMap<String, (u32, bool, bool)>;

/// Ports (name -> OpenFlow number, link up, admin up) and tables (entries)
/// as last reported; tables only while someone listens.
#[derive(Default)]
struct Seen {
    ports: Option<PortStates>,
    tables: Option<HashMap<u8, u32>>,
}

/// The switch's state was busy past its bound.
pub(crate) fn busy(b: crate::switch::Busy) -> ApiError {
    ApiError::Unavailable(b.to_string())
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The flows of an `add_text` (an add-flows file), each with its line number from 1:
/// trimmed lines, without blank ones and `#` comments (as `ferroflowctl flows add -f`
/// always read its file).
pub(crate) fn add_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    flow_syntax::FlowLines::new(text)
}

/// The identity of a flow entry, as the store and dumps see it.
pub(crate) fn flow_key(table: u8, priority: u16, m: &openflow::Match) -> (u8, u16, String) {
    (table, priority, flow_syntax::format_match(m, priority))
}

impl Api {
    /// `store`: the configuration file to write changes into (None: changes
    /// are not persisted).
    pub fn new(sw: Arc<Switch>, store: Option<PathBuf>) -> Arc<Api> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Api {
            sw,
            agent: Mutex::new(Weak::new()),
            controllers: Mutex::new(Vec::new()),
            events,
            store: store.map(|p| Store::new(&p)),
            flow_mods: Arc::new(FlowModCounters::default()),
            change: Mutex::new(()),
            seen: Mutex::new(Seen::default()),
            grpc: Arc::default(),
            unsaved: Mutex::new(None),
        })
    }

    pub fn set_agent(&self, agent: &Arc<Agent>) {
        *self.agent.lock() = Arc::downgrade(agent);
    }

    pub fn agent(&self) -> Option<Arc<Agent>> {
        self.agent.lock().upgrade()
    }

    /// Starts keeping connections to these controllers (the configured ones
    /// at start).
    pub fn connect_controllers(&self, targets: Vec<Target>) {
        let Some(agent) = self.agent() else { return };
        let mut links = self.controllers.lock();
        for t in targets {
            links.push(agent.connect_controller(t));
        }
    }

    pub fn controllers(&self) -> Vec<pb::Controller> {
        self.controllers
            .lock()
            .iter()
            .map(|l| pb::Controller {
                target: l.target().to_string(),
                connected: l.is_connected(),
            })
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<pb::Event> {
        self.events.subscribe()
    }

    /// [`Api::emit`] of an event built only when someone subscribes.
    fn emit_with(&self, event: impl FnOnce() -> pb::event::Event) {
        if self.events.receiver_count() > 0 {
            self.emit(event());
        }
    }

    fn emit(&self, event: pb::event::Event) {
        // No subscriber is not an error.
        let _ = self.events.send(pb::Event {
            time: now_epoch(),
            event: Some(event),
        });
    }

    /// Applies the flows, groups and meters kept in the store, as the API's
    /// own. Errors name the entry and the line of the file.
    pub fn restore(&self, config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let at = |key: &str, i: usize, s: &str| {
            let line = crate::store::line_of(&text, s)
                .map(|l| format!("{}:{l}: ", path.display()))
                .unwrap_or_default();
            format!("{line}store.{key}[{i}]")
        };
        let st = &config.store;
        for (i, s) in st.meters.iter().enumerate() {
            let mm = flow_syntax::parse_meter_mod(s, MeterModCommand::Add)
                .map_err(|e| anyhow::anyhow!("{}: {e}", at("meters", i, s)))?;
            self.apply_meters(vec![mm], false)
                .map_err(|e| anyhow::anyhow!("{}: {e}", at("meters", i, s)))?;
        }
        // Groups may chain to groups later in the list: retry what failed
        // until nothing more succeeds.
        let mut pending: Vec<(usize, &String)> = st.groups.iter().enumerate().collect();
        loop {
            let mut failed = Vec::new();
            let mut last_err = None;
            for (i, s) in &pending {
                let gm = flow_syntax::parse_group_mod(s, GroupModCommand::Add)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("groups", *i, s)))?;
                if let Err(e) = self.apply_groups(vec![gm], false) {
                    last_err = Some(anyhow::anyhow!("{}: {e}", at("groups", *i, s)));
                    failed.push((*i, *s));
                }
            }
            if failed.is_empty() {
                break;
            }
            if failed.len() == pending.len() {
                return Err(last_err.unwrap_or_else(|| anyhow::anyhow!("store.groups")));
            }
            pending = failed;
        }
        if let Some(flows) = &st.flows {
            let mut mods = Vec::new();
            if config.bridge.controllers.is_empty() {
                // The store says which flows exist, the default one included.
                let mut del = FlowMod::add(0, 0, openflow::Match::any(), Vec::new());
                del.command = FlowModCommand::DeleteStrict;
                mods.push(("store".to_owned(), del));
            }
            for (i, s) in flows.iter().enumerate() {
                let fm = flow_syntax::parse_flow_mod(s, FlowModCommand::Add)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("flows", i, s)))?;
                mods.push((at("flows", i, s), fm));
            }
            self.apply_flow_mods(mods, false)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            info!(flows = flows.len(), "flows restored from the config store");
        }
        if let Some(s) = &self.store {
            s.keep_last_good()?;
        }
        Ok(())
    }

    /// Why the running switch is ahead of its config file (a save failed), if it is.
    pub fn unsaved(&self) -> Option<String> {
        self.unsaved.lock().clone()
    }

    /// Writes the API's state to the config store. A failure leaves the file
    /// as it was, and marks the switch unsaved until a later save succeeds
    /// (the watcher retries every 2 s).
    fn save(&self) -> Result<(), ApiError> {
        let r = self.save_state();
        let mut unsaved = self.unsaved.lock();
        match &r {
            Err(e) => {
                if unsaved.is_none() {
                    warn!("running unsaved: {e}");
                }
                *unsaved = Some(e.to_string());
            }
            Ok(()) => {
                if unsaved.take().is_some() {
                    info!("config saved: the file matches the running switch again");
                }
            }
        }
        r
    }

    /// Retries a failed save (under the change lock, as a change would).
    fn retry_save(&self) {
        if self.unsaved.lock().is_none() {
            return;
        }
        let _one = self.change.lock();
        let _ = self.save();
    }

    /// Changes are written to the store ([`Api::save_state`] does something).
    fn persists(&self) -> bool {
        self.store.is_some() && self.sw.config.store.persist
    }

    fn save_state(&self) -> Result<(), ApiError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if !self.sw.config.store.persist {
            return Ok(());
        }
        let now = self.sw.now();
        let (flows, groups, meters, ports, profile) = {
            let mut st = self.sw.lock().map_err(busy)?;
            let crate::switch::State {
                tables,
                api_owned: owned,
                ports,
                profile,
                ..
            } = &mut *st;
            let counts = tables
                .flow_counts(OFPTT_ALL, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut present = HashSet::new();
            let mut flows = Vec::new();
            let mut sorted: Vec<_> = counts.iter().map(|c| ofproto::flow_stats(c, now)).collect();
            sorted.sort_by(|a, b| {
                (a.table_id, std::cmp::Reverse(a.priority))
                    .cmp(&(b.table_id, std::cmp::Reverse(b.priority)))
            });
            for fs in &sorted {
                let key = flow_key(fs.table_id, fs.priority, &fs.match_);
                if owned.flows.contains(&key) {
                    flows.push(format_flow(&FlowText {
                        table_id: fs.table_id,
                        priority: fs.priority,
                        cookie: fs.cookie,
                        idle_timeout: fs.idle_timeout,
                        hard_timeout: fs.hard_timeout,
                        flags: fs.flags,
                        match_: &fs.match_,
                        instructions: &fs.instructions,
                        counters: None,
                    }));
                    present.insert(key);
                }
            }
            owned.flows.retain(|k| present.contains(k));
            let groups: Vec<String> = tables
                .groups()
                .filter(|g| owned.groups.contains(&g.id))
                .map(|g| flow_syntax::format_group(&ofproto::group_desc(g)))
                .collect();
            let existing: HashSet<u32> = tables.groups().map(|g| g.id).collect();
            owned.groups.retain(|g| existing.contains(g));
            let meters: Vec<String> = tables
                .meters()
                .filter(|m| owned.meters.contains(&m.id))
                .map(|m| {
                    flow_syntax::format_meter(
                        m.id,
                        ofproto::meter_flags_to_of(m.flags),
                        &services::meter_bands(&m.bands),
                    )
                })
                .collect();
            let existing: HashSet<u32> = tables.meters().map(|m| m.id).collect();
            owned.meters.retain(|m| existing.contains(m));
            (
                flows,
                groups,
                meters,
                ports.clone(),
                profile.description().clone(),
            )
        };
        let state = StoreState {
            ports,
            controllers: self
                .controllers
                .lock()
                .iter()
                .map(|l| l.target().to_string())
                .collect(),
            flows,
            groups,
            meters,
            profile,
        };
        store.save(&state)?;
        Ok(())
    }

    // ---- ports ----

    /// Adds a port a gRPC client asked for: only within `[grpc]`'s port rules
    /// ([`port_rules`]), checked before anything is made.
    pub fn add_port(&self, pc: PortConfig) -> Result<(), ApiError> {
        let rules = self.sw.config.grpc.clone().unwrap_or_default();
        // A tunnel port makes no device: the device rules do not apply to it.
        let checked = if pc.is_tunnel() {
            Ok(())
        } else {
            port_rules::check(&pc.devargs, &rules)
        };
        if let Err(e) = checked {
            self.grpc.ports_refused.fetch_add(1, Relaxed);
            warn!(port = %pc.name, "AddPort refused: {e}");
            return Err(ApiError::PermissionDenied(format!(
                "port {:?}: {e}",
                pc.name
            )));
        }
        let _one = self.change.lock();
        self.sw.add_port(pc)?;
        self.poll();
        self.save()
    }

    pub fn remove_port(&self, name: &str) -> Result<(), ApiError> {
        let _one = self.change.lock();
        self.sw.remove_port(name)?;
        self.poll();
        self.save()
    }

    pub fn set_port_admin(&self, name: &str, up: bool) -> Result<(), ApiError> {
        let _one = self.change.lock();
        self.sw.set_port_admin(name, up)?;
        self.sync()?;
        self.poll();
        Ok(())
    }

    /// Waits (boundedly) until the change just made is seen by every packet.
    fn sync(&self) -> Result<(), ApiError> {
        self.sw.sync().map_err(|e| match e {
            crate::switch::SyncError::Busy(b) => busy(b),
            e => ApiError::Unavailable(e.to_string()),
        })
    }

    // ---- controllers ----

    pub fn set_controllers(&self, targets: Vec<String>) -> Result<(), ApiError> {
        let mut parsed = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let target = Target::parse(t)
                .map_err(|e| ApiError::invalid(format!("targets[{i}]"), e.to_string()))?;
            if !matches!(target, Target::Tcp(_) | Target::Unix(_)) {
                return Err(ApiError::invalid(
                    format!("targets[{i}]"),
                    format!("{t:?}: a controller is tcp:IP:PORT or unix:PATH"),
                ));
            }
            parsed.push(target);
        }
        let _one = self.change.lock();
        let agent = self.agent().ok_or_else(|| {
            ApiError::FailedPrecondition("the OpenFlow agent is not running".into())
        })?;
        {
            let mut links = self.controllers.lock();
            // Keep connections to targets that stay; end the others.
            let mut keep: Vec<ControllerLink> = Vec::new();
            for l in links.drain(..) {
                if parsed.contains(l.target()) && !keep.iter().any(|k| k.target() == l.target()) {
                    keep.push(l);
                }
            }
            for t in parsed {
                if !keep.iter().any(|k| *k.target() == t) {
                    keep.push(agent.connect_controller(t));
                }
            }
            *links = keep;
        }
        self.save()
    }

    // ---- flows ----

    /// Applies flow-mods as one: all are checked, then applied under one
    /// lock; if one fails, the tables it touched are put back as they were,
    /// and nothing is published. Each mod comes with the name of its field
    /// in the request, for errors.
    pub fn apply_flow_mods(
        &self,
        mods: Vec<(String, FlowMod)>,
        save: bool,
    ) -> Result<u32, ApiError> {
        let (labels, mods): (Vec<String>, Vec<FlowMod>) = mods.into_iter().unzip();
        self.apply_flow_mod_batch(mods, &|i| labels[i].clone(), save)
    }

    /// [`Api::apply_flow_mods`] for a batch whose flow-mods are named by their index
    /// (`label(i)`, only printed for the one refused): a gRPC batch of 100k flows keeps
    /// no name per flow.
    pub fn apply_flow_mod_batch(
        &self,
        mods: Vec<FlowMod>,
        label: &dyn Fn(usize) -> String,
        save: bool,
    ) -> Result<u32, ApiError> {
        self.apply_flow_batch(mods, "", label, save)
    }

    /// [`Api::apply_flow_mod_batch`] of `mods`, then of the flows of `add_text` (an
    /// add-flows file, its flows numbered after `mods`), each parsed into one reused
    /// `FlowMod` and converted before the next is parsed: 100k flows make no vector of
    /// 100k `FlowMod`s (three allocations each, freed again after the batch).
    ///
    /// The errors are those of parsing every flow first and then applying them: a flow
    /// that does not parse (`add_text line N`, its number in the text) is reported before
    /// any refusal of an earlier flow, and nothing is counted as refused for it.
    pub fn apply_flow_batch(
        &self,
        mods: Vec<FlowMod>,
        add_text: &str,
        label: &dyn Fn(usize) -> String,
        save: bool,
    ) -> Result<u32, ApiError> {
        let _one = self.change.lock();
        let now = self.sw.now();
        let persists = self.persists();
        let mut st = self.sw.lock().map_err(busy)?;
        // Only a save reads what the API owns: without one, printing every match (as long
        // as converting it) is for nothing.
        let mut owned = Vec::new();
        let mut n = mods.len() as u64;
        /// Why a batch stopped: a text that does not parse, or a flow-mod the tables
        /// refused (counted as refused).
        enum Stop {
            Syntax(ApiError),
            Refused(ApiError),
        }
        let result = (|| {
            // All or nothing, counters and durations of existing flows included.
            let mut tx = st.tables.transaction(now);
            crate::ofswitch::reserve_for_adds(
                &mut tx,
                mods.iter()
                    .filter(|fm| fm.command == FlowModCommand::Add)
                    .map(|fm| fm.table_id),
            );
            let mut refused = None;
            for fm in &mods {
                if let Err(e) = tx.of_flow_mod(fm) {
                    refused = Some(e);
                    break;
                }
                if persists && fm.command == FlowModCommand::Add {
                    owned.push(flow_key(fm.table_id, fm.priority, &fm.match_));
                }
            }
            // A table's storage grows once: the first flow of the text for a table
            // reserves room there for all the text's flows not parsed yet (a hint: at
            // most one text's worth per table, memory not touched until used).
            let lines = if add_text.is_empty() {
                0
            } else {
                add_text.bytes().filter(|&c| c == b'\n').count() + 1
            };
            let mut reserved = [false; 256];
            let mut fm = FlowMod::add(0, 0, openflow::Match::any(), Vec::new());
            for (line, t) in add_lines(add_text) {
                flow_syntax::parse_flow_mod_into(t, FlowModCommand::Add, &mut fm).map_err(|e| {
                    Stop::Syntax(ApiError::invalid(
                        format!("add_text line {line}"),
                        e.to_string(),
                    ))
                })?;
                n += 1;
                if refused.is_some() {
                    // Only parsed: a later flow that does not parse is the error.
                    continue;
                }
                let t = usize::from(fm.table_id);
                if !reserved[t] {
                    reserved[t] = true;
                    tx.reserve(fm.table_id, lines.saturating_sub(line - 1));
                }
                if let Err(e) = tx.of_flow_mod(&fm) {
                    refused = Some(e);
                    continue;
                }
                if persists {
                    owned.push(flow_key(fm.table_id, fm.priority, &fm.match_));
                }
            }
            let stop =
                |(i, e): (usize, PipelineError)| Stop::Refused(ApiError::pipeline(&label(i), e));
            if let Some(e) = refused {
                return Err(stop(e));
            }
            Ok(tx.commit().map_err(stop)?.removed.len() as u32)
        })();
        let result = match result {
            Ok(r) => r,
            // A text that does not parse: refused before anything was applied.
            Err(Stop::Syntax(e)) => return Err(e),
            Err(Stop::Refused(e)) => {
                self.flow_mods.grpc_refused.fetch_add(n, Relaxed);
                return Err(e);
            }
        };
        self.flow_mods.grpc_applied.fetch_add(n, Relaxed);
        if persists {
            st.api_owned.flows.extend(owned);
        }
        st.mark_dirty();
        st.publish_pending();
        drop(st);
        self.sync()?;
        // Printing 100k flows back to text costs as much as parsing them: only for a
        // subscriber (the text's flows parsed again, as they parsed before).
        self.emit_with(|| {
            let text = add_lines(add_text)
                .filter_map(|(_, t)| flow_syntax::parse_flow_mod(t, FlowModCommand::Add).ok());
            pb::event::Event::Flow(pb::FlowEvent {
                kind: pb::flow_event::Kind::Changed as i32,
                changes: mods
                    .iter()
                    .map(describe)
                    .chain(text.map(|fm| describe(&fm)))
                    .collect(),
                table_id: 0,
                entries: 0,
            })
        });
        if save {
            self.save()?;
        }
        Ok(result)
    }

    pub fn apply_groups(&self, mods: Vec<GroupMod>, save: bool) -> Result<(), ApiError> {
        let _one = self.change.lock();
        let now = self.sw.now();
        {
            let mut st = self.sw.lock().map_err(busy)?;
            let mut tx = st.tables.transaction(now);
            let refused = |(i, e)| ApiError::pipeline(&format!("changes[{i}]"), e);
            for gm in &mods {
                tx.of_group_mod(gm).map_err(refused)?;
            }
            tx.commit().map_err(refused)?;
            let owned = &mut st.api_owned;
            for gm in &mods {
                match gm.command {
                    GroupModCommand::Add => {
                        owned.groups.insert(gm.group_id);
                    }
                    GroupModCommand::Delete => {
                        owned.groups.remove(&gm.group_id);
                    }
                    GroupModCommand::Modify => {}
                }
            }
            st.mark_dirty();
            st.publish_pending();
        }
        self.sync()?;
        if save {
            self.save()?;
        }
        Ok(())
    }

    pub fn apply_meters(&self, mods: Vec<MeterMod>, save: bool) -> Result<(), ApiError> {
        let _one = self.change.lock();
        let now = self.sw.now();
        {
            let mut st = self.sw.lock().map_err(busy)?;
            let mut tx = st.tables.transaction(now);
            let refused = |(i, e)| ApiError::pipeline(&format!("changes[{i}]"), e);
            for mm in &mods {
                tx.of_meter_mod(mm).map_err(refused)?;
            }
            tx.commit().map_err(refused)?;
            let owned = &mut st.api_owned;
            for mm in &mods {
                match mm.command {
                    MeterModCommand::Add => {
                        owned.meters.insert(mm.meter_id);
                    }
                    MeterModCommand::Delete => {
                        owned.meters.remove(&mm.meter_id);
                    }
                    MeterModCommand::Modify => {}
                }
            }
            st.mark_dirty();
            st.publish_pending();
        }
        self.sync()?;
        if save {
            self.save()?;
        }
        Ok(())
    }

    /// Streams what changed in ports and tables since the last look: the
    /// API's own port changes at once, everything else (links, controllers,
    /// timeouts) within 200 ms.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let api = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            // A failed save is retried every 10th tick (2 s).
            let mut ticks_to_retry = 10u32;
            loop {
                tick.tick().await;
                ticks_to_retry -= 1;
                let retry = ticks_to_retry == 0;
                if retry {
                    ticks_to_retry = 10;
                }
                let a = Arc::clone(&api);
                let _ = tokio::task::spawn_blocking(move || {
                    a.poll();
                    if retry {
                        a.retry_save();
                    }
                })
                .await;
            }
        });
    }

    /// Compares ports and tables with what was last reported and emits the
    /// differences. Table counts are read only while someone listens.
    fn poll(&self) {
        let listening = self.events.receiver_count() > 0;
        // A busy switch is looked at again on the next tick.
        let Some(mut st) = self.sw.lock_within(Duration::from_millis(50)) else {
            return;
        };
        let status = st.datapath.as_ref().map(|d| d.ports()).unwrap_or_default();
        let ports: PortStates = st
            .ports
            .iter()
            .map(|p| {
                let link = status.iter().any(|s| s.name == p.name && s.link_up);
                let admin = st.port_admin_up(p.ofport);
                (p.name.clone(), (p.ofport, link, admin))
            })
            .collect();
        let tables: Option<HashMap<u8, u32>> = listening.then(|| {
            st.tables
                .table_counts()
                .into_iter()
                .filter(|t| t.active > 0)
                .map(|t| (t.table_id, t.active))
                .collect()
        });
        drop(st);
        let mut seen = self.seen.lock();
        if let Some(old) = &seen.ports {
            self.diff_ports(old, &ports);
        }
        if let (Some(old), Some(new)) = (&seen.tables, &tables) {
            self.diff_tables(old, new);
        }
        seen.ports = Some(ports);
        seen.tables = tables;
    }

    fn diff_ports(&self, old: &PortStates, new: &PortStates) {
        use pb::port_event::Kind;
        let port = |kind: Kind, name: &str, ofport: u32| {
            self.emit(pb::event::Event::Port(pb::PortEvent {
                kind: kind as i32,
                name: name.to_owned(),
                ofport,
            }))
        };
        for (name, (ofport, link, admin)) in new {
            match old.get(name) {
                None => port(Kind::Added, name, *ofport),
                Some((_, l, a)) => {
                    if l != link {
                        port(
                            if *link { Kind::LinkUp } else { Kind::LinkDown },
                            name,
                            *ofport,
                        );
                    }
                    if a != admin {
                        port(
                            if *admin {
                                Kind::AdminUp
                            } else {
                                Kind::AdminDown
                            },
                            name,
                            *ofport,
                        );
                    }
                }
            }
        }
        for (name, (ofport, _, _)) in old {
            if !new.contains_key(name) {
                port(Kind::Removed, name, *ofport);
            }
        }
    }

    fn diff_tables(&self, old_t: &HashMap<u8, u32>, new_t: &HashMap<u8, u32>) {
        let ids: BTreeSet<u8> = old_t.keys().chain(new_t.keys()).copied().collect();
        for t in ids {
            let (a, b) = (
                old_t.get(&t).copied().unwrap_or(0),
                new_t.get(&t).copied().unwrap_or(0),
            );
            if a != b {
                self.emit(pb::event::Event::Flow(pb::FlowEvent {
                    kind: pb::flow_event::Kind::TableChanged as i32,
                    changes: Vec::new(),
                    table_id: u32::from(t),
                    entries: b,
                }));
            }
        }
    }
}

/// "add table=0,priority=100,... actions=..." for the event stream.
fn describe(fm: &FlowMod) -> String {
    let verb = match fm.command {
        FlowModCommand::Add => "add",
        FlowModCommand::Modify => "modify",
        FlowModCommand::ModifyStrict => "modify --strict",
        FlowModCommand::Delete => "delete",
        FlowModCommand::DeleteStrict => "delete --strict",
    };
    let text = format_flow(&FlowText {
        table_id: fm.table_id,
        priority: fm.priority,
        cookie: fm.cookie,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        flags: fm.flags,
        match_: &fm.match_,
        instructions: &fm.instructions,
        counters: None,
    });
    format!("{verb} {text}")
}

/// A running gRPC server; removes its unix socket when dropped.
pub struct GrpcServer {
    socket: Option<PathBuf>,
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Why the gRPC server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("grpc.listen {0:?}: another ferroflowd answers on this socket")]
    InUse(String),
    #[error("grpc.listen {listen:?}: {source}")]
    Bind {
        listen: String,
        source: std::io::Error,
    },
    #[error("grpc TLS: cannot read {path}: {source}")]
    TlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("grpc TLS: {0}")]
    Tls(String),
}

/// Binds where `[grpc] listen` says and serves the API in the background,
/// within the `[grpc]` limits ([`limits`]).
pub async fn serve(api: Arc<Api>, cfg: &GrpcConfig) -> Result<GrpcServer, ServeError> {
    use limits::Guarded;
    use tonic::transport::Server;
    let bind = |source| ServeError::Bind {
        listen: cfg.listen.clone(),
        source,
    };
    let lim = limits::Limits::from_config(cfg);
    let counters = Arc::clone(&api.grpc);
    let request = (lim.max_request_bytes, "max_request_bytes");
    let batch = (lim.max_flow_batch_bytes, "max_flow_batch_bytes");
    let calls = lim.max_streams_per_connection;
    // HTTP/2's own bound on streams sits above ours, so that a client over
    // ours is answered (RESOURCE_EXHAUSTED) rather than queued.
    let h2_streams = u32::try_from(calls.saturating_mul(2)).unwrap_or(u32::MAX);
    // Every service behind the same guard: its request size bound (named in the refusal), the
    // calls-per-connection cap and the counters.
    macro_rules! guarded {
        ($server:expr, $limit:expr) => {
            Guarded::new(
                $server.max_decoding_message_size($limit.0),
                $limit,
                calls,
                &counters,
            )
        };
    }
    let router = || {
        Server::builder()
            .max_concurrent_streams(h2_streams)
            .add_service(guarded!(
                pb::port_service_server::PortServiceServer::new(services::Ports(Arc::clone(&api))),
                request
            ))
            .add_service(guarded!(
                pb::bridge_service_server::BridgeServiceServer::new(services::Bridges(Arc::clone(
                    &api,
                ))),
                request
            ))
            .add_service(guarded!(
                pb::flow_service_server::FlowServiceServer::new(services::Flows(Arc::clone(&api))),
                batch
            ))
            .add_service(guarded!(
                pb::datapath_service_server::DatapathServiceServer::new(services::Datapath(
                    Arc::clone(&api),
                )),
                request
            ))
            .add_service(guarded!(
                pb::network_service_server::NetworkServiceServer::new(networks::Networks(
                    Arc::clone(&api),
                )),
                request
            ))
            .add_service(guarded!(
                pb::tunnel_service_server::TunnelServiceServer::new(crate::tunnels::Service(
                    Arc::clone(&api),
                )),
                request
            ))
            .add_service(guarded!(
                pb::trace_service_server::TraceServiceServer::new(trace::Traces(Arc::clone(&api))),
                request
            ))
            .add_service(guarded!(
                pb::rebalance_service_server::RebalanceServiceServer::new(rebalance::Rebalance(
                    Arc::clone(&api),
                )),
                request
            ))
            .add_service(guarded!(
                pb::conntrack_service_server::ConntrackServiceServer::new(conntrack::Conntrack(
                    Arc::clone(&api),
                )),
                request
            ))
            .add_service(guarded!(
                pb::security_group_service_server::SecurityGroupServiceServer::new(
                    secgroups::SecurityGroups(Arc::clone(&api)),
                ),
                request
            ))
    };
    if let Some(path) = cfg.listen.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(bind)?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(ServeError::InUse(cfg.listen.clone()));
            }
            let _ = std::fs::remove_file(&path);
        }
        let listener = Arc::new(bind_private_unix(&path).map_err(bind)?);
        // No handshake on a unix socket: a connection is served as accepted.
        let incoming = limits::incoming(
            move || {
                let l = Arc::clone(&listener);
                Box::pin(async move { l.accept().await.map(|(s, _)| s) })
            },
            |s| std::future::ready(Ok(s)),
            lim,
            Arc::clone(&counters),
        );
        let r = router();
        tokio::spawn(async move {
            if let Err(e) = r.serve_with_incoming(incoming).await {
                warn!("gRPC server stopped: {e}");
            }
        });
        info!(socket = %path.display(), "gRPC management API ready");
        return Ok(GrpcServer { socket: Some(path) });
    }
    let addr = cfg.listen.trim_start_matches("tcp:");
    let file = |p: &Option<PathBuf>| p.clone().unwrap_or_default();
    let acceptor = limits::tls_acceptor(
        &file(&cfg.tls_certificate),
        &file(&cfg.tls_private_key),
        &file(&cfg.tls_ca_certificate),
    )?;
    let listener = Arc::new(tokio::net::TcpListener::bind(addr).await.map_err(bind)?);
    let incoming = limits::incoming(
        move || {
            let l = Arc::clone(&listener);
            Box::pin(async move {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(s)
            })
        },
        move |s| acceptor.accept(s),
        lim,
        Arc::clone(&counters),
    );
    let r = router();
    tokio::spawn(async move {
        if let Err(e) = r.serve_with_incoming(incoming).await {
            warn!("gRPC server stopped: {e}");
        }
    });
    info!(%addr, "gRPC management API ready (TLS, client certificates required)");
    Ok(GrpcServer { socket: None })
}

/// Binds a unix socket that only its owner (root) can connect to, from the moment the path
/// exists: it is bound inside a fresh 0700 directory beside `path`, made 0600 there, and
/// renamed into place. No window in which another user could connect, and no process-wide
/// umask change (which would race with config saves on other threads).
fn bind_private_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.bind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let staged = staging.join("sock");
    let bound = tokio::net::UnixListener::bind(&staged).and_then(|l| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&staging);
    bound
}
