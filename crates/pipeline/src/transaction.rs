//! One way to change the pipeline as a whole: a [`Transaction`] over [`FlowTables`].
//!
//! Bundles, gRPC batches and the virtual-network profile all apply their changes through
//! one: the changes are checked and applied one by one (each sees the ones before it, so a
//! flow may use a group added earlier in the same transaction), nothing reaches packets
//! until [`Transaction::commit`] publishes them as one version, and a transaction that is
//! dropped, aborted, or that had a change refused, puts back exactly what was there:
//! entries with their uids, cookies, flags, timeouts, install times and counters (an entry
//! deleted and restored keeps its place in the compiled tables, so it goes on counting
//! where it did), groups and meters with theirs, ports, miss policies, and the uid counter.
//!
//! Cost: undoing keeps a copy of each entry the transaction removes or changes, and the
//! group and meter definitions (not their compiled forms) when it first changes one.

use std::sync::Arc;
use std::time::Duration;

use crate::error::PipelineError;
use crate::group::{GroupModReq, GroupSnapshot};
use crate::meter::{MeterModReq, MeterSnapshot};
use crate::pipeline::{FlowModReq, FlowTables};
use crate::port::{PortInfo, PortSet};
use crate::table::{MissPolicy, RemovedFlow};

/// What a committed transaction did.
#[derive(Debug)]
pub struct Committed {
    /// Entries its deletes (and group and meter deletes) removed: FLOW_REMOVED for those
    /// with SEND_FLOW_REM.
    pub removed: Vec<RemovedFlow>,
    /// The version that made it visible (the previous one when it changed nothing).
    pub version: u64,
}

/// A change in progress; see the module docs. Every change method returns the index of a
/// refused change with its error, and after a refusal the transaction takes no further
/// change: it can only be dropped (or aborted), and [`Transaction::commit`] returns the
/// same refusal, having undone everything.
#[derive(Debug)]
pub struct Transaction<'a> {
    ft: &'a mut FlowTables,
    now: Duration,
    /// Index of the next change.
    next: usize,
    refused: Option<(usize, PipelineError)>,
    removed: Vec<RemovedFlow>,
    next_uid: u64,
    groups: Option<GroupSnapshot>,
    meters: Option<MeterSnapshot>,
    ports: (Arc<PortSet>, bool),
    /// Ports removed: their learned addresses are forgotten on commit (a rolled-back
    /// removal must not cost the port its MAC entries).
    flush_macs: Vec<u32>,
    done: bool,
}

impl<'a> Transaction<'a> {
    pub(crate) fn new(ft: &'a mut FlowTables, now: Duration) -> Transaction<'a> {
        for t in &mut ft.tables {
            t.begin();
        }
        Transaction {
            next: 0,
            refused: None,
            removed: Vec::new(),
            next_uid: ft.next_uid,
            groups: None,
            meters: None,
            ports: (ft.ports.clone(), ft.ports_dirty),
            flush_macs: Vec::new(),
            done: false,
            now,
            ft,
        }
    }

    /// The tables as the changes so far left them (to check or convert the next one).
    pub fn tables(&self) -> &FlowTables {
        self.ft
    }

    /// Changes applied so far (the index the next one gets).
    pub fn len(&self) -> usize {
        self.next
    }

    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// Room for `additional` more entries in table `table_id` (ignored for a table that
    /// does not exist): a batch that knows how many flows it adds where says so first, and
    /// the table grows its storage once instead of step by step. Changes nothing else.
    pub fn reserve(&mut self, table_id: u8, additional: usize) {
        if let Some(t) = self.ft.tables.get_mut(usize::from(table_id)) {
            t.reserve(additional);
        }
    }

    /// Runs one change: numbered, refused once anything was refused, remembered if refused.
    fn step<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, PipelineError>,
    ) -> Result<T, (usize, PipelineError)> {
        if let Some(r) = self.refused {
            return Err(r);
        }
        let i = self.next;
        self.next += 1;
        f(self).map_err(|e| {
            self.refused = Some((i, e));
            (i, e)
        })
    }

    pub fn flow_mod(&mut self, req: FlowModReq) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            let r = tx.ft.apply_flow_mod(req, tx.now)?;
            tx.removed.extend(r);
            Ok(())
        })
    }

    /// A flow-mod made from the tables as the changes so far left them (`ofproto`
    /// converts OpenFlow FLOW_MODs this way); a refused conversion is a refused change.
    pub fn flow_mod_with(
        &mut self,
        make: impl FnOnce(&FlowTables) -> Result<FlowModReq, PipelineError>,
    ) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            let req = make(tx.ft)?;
            let r = tx.ft.apply_flow_mod(req, tx.now)?;
            tx.removed.extend(r);
            Ok(())
        })
    }

    pub fn group_mod(&mut self, req: GroupModReq) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            tx.save_groups();
            let r = tx.ft.apply_group_mod(req, tx.now)?;
            tx.removed.extend(r);
            Ok(())
        })
    }

    /// A group-mod made from the tables as the changes so far left them (as
    /// [`Transaction::flow_mod_with`]).
    pub fn group_mod_with(
        &mut self,
        make: impl FnOnce(&FlowTables) -> Result<GroupModReq, PipelineError>,
    ) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            let req = make(tx.ft)?;
            tx.save_groups();
            let r = tx.ft.apply_group_mod(req, tx.now)?;
            tx.removed.extend(r);
            Ok(())
        })
    }

    pub fn meter_mod(&mut self, mm: &MeterModReq) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            if tx.meters.is_none() {
                tx.meters = Some(tx.ft.meters.snapshot());
            }
            let r = tx.ft.apply_meter_mod(mm, tx.now)?;
            tx.removed.extend(r);
            Ok(())
        })
    }

    pub fn set_port(&mut self, info: PortInfo) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            tx.ft.set_port_entry(info);
            Ok(())
        })
    }

    pub fn remove_port(&mut self, port: u32) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| {
            if tx.ft.remove_port_entry(port) {
                tx.flush_macs.push(port);
            }
            Ok(())
        })
    }

    pub fn set_miss_policy(
        &mut self,
        table_id: u8,
        miss: MissPolicy,
    ) -> Result<(), (usize, PipelineError)> {
        self.step(|tx| tx.ft.set_miss_policy(table_id, miss))
    }

    fn save_groups(&mut self) {
        if self.groups.is_none() {
            self.groups = Some(self.ft.groups.snapshot());
        }
    }

    /// Publishes everything as one version; or, if a change was refused, undoes
    /// everything and returns that refusal.
    pub fn commit(mut self) -> Result<Committed, (usize, PipelineError)> {
        if let Some(r) = self.refused {
            self.rollback();
            return Err(r);
        }
        self.done = true;
        for t in &mut self.ft.tables {
            t.commit();
        }
        for p in std::mem::take(&mut self.flush_macs) {
            self.ft.mac_table().flush_port(p);
        }
        let version = self.ft.publish();
        Ok(Committed {
            removed: std::mem::take(&mut self.removed),
            version,
        })
    }

    /// Undoes everything (as dropping does).
    pub fn abort(mut self) {
        self.rollback();
    }

    fn rollback(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        for t in &mut self.ft.tables {
            t.rollback();
        }
        if let Some(g) = self.groups.take() {
            self.ft.groups.restore(g);
        }
        if let Some(m) = self.meters.take() {
            self.ft.meters.restore(m);
        }
        (self.ft.ports, self.ft.ports_dirty) = (self.ports.0.clone(), self.ports.1);
        self.ft.next_uid = self.next_uid;
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.rollback();
    }
}
