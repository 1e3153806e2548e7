//! Worker health by epochs: what each worker has acknowledged (the pipeline version it
//! forwards with, the port commands it applied) and when its loop last turned, readable by
//! the control plane without any lock.
//!
//! Each worker writes only its own cache line, once per loop iteration, at a point where it
//! holds no pipeline version. A barrier waits for [`WorkerHealth::wait_for_version`]; status
//! and metrics read [`WorkerHealth::stuck`]. Every wait here has a deadline.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One worker's acknowledgements, on a cache line of its own so that workers never write a
/// line another worker writes.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    lcore: u32,
    /// The pipeline version this worker uses from now on (it never goes back to an older one).
    acked_version: AtomicU64,
    /// TSC at the worker's latest loop iteration.
    heartbeat: AtomicU64,
    /// Port commands the worker has applied (the control plane counts those it sent).
    commands_applied: AtomicU64,
    /// Set by the worker as its loop returns: it uses no port, queue or version any more.
    exited: AtomicBool,
    /// Set while the worker sleeps between loop iterations (`idle_sleep_us`): it holds no
    /// version, and its next burst loads the published one, so a barrier need not wait out
    /// its sleep (100k `ovs-ofctl add-flows`, a barrier each, took 29 s with a 200 µs sleep).
    asleep: AtomicBool,
}

/// The health of every worker of a datapath, shared as `Arc<WorkerHealth>`.
#[derive(Debug)]
pub struct WorkerHealth {
    slots: Box<[Slot]>,
    /// The versions the workers load: a worker asleep between loop iterations runs the
    /// published one (or a newer one) when it wakes. `None`: a sleeping worker is waited
    /// for like any other.
    published: Option<pipeline::PipelineHandle>,
    /// TSC ticks per second, to turn heartbeat ages into durations.
    tsc_hz: u64,
}

/// A worker whose heartbeat has not moved for a while, or that has not acknowledged what was
/// waited for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckWorker {
    pub lcore: u32,
    /// The pipeline version it last acknowledged.
    pub acked_version: u64,
    /// How long its loop has not turned.
    pub since_heartbeat: Duration,
}

/// Workers that did not acknowledge a pipeline version before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workers did not move to pipeline version {version}: {}", describe(.workers))]
pub struct Stuck {
    pub version: u64,
    pub workers: Vec<StuckWorker>,
}

fn describe(workers: &[StuckWorker]) -> String {
    workers
        .iter()
        .map(|w| {
            format!(
                "lcore {} (on version {}, loop still for {:.3} s)",
                w.lcore,
                w.acked_version,
                w.since_heartbeat.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A worker that had not applied the port commands sent to it before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lagging {
    pub worker: usize,
    pub lcore: u32,
}

/// Polls of a wait that only yield the CPU before the wait starts to sleep: a running worker
/// acknowledges within one loop iteration (microseconds).
const YIELDS_BEFORE_SLEEP: u32 = 64;
/// The longest sleep between two polls of a wait (the shortest is 20 µs, doubling).
const MAX_POLL_SLEEP: Duration = Duration::from_millis(1);

impl WorkerHealth {
    /// Health slots for workers on `lcores`, in worker order, none acknowledged yet.
    pub fn new(lcores: &[u32], tsc_hz: u64) -> WorkerHealth {
        let now = dpdk::rdtsc();
        WorkerHealth {
            slots: lcores
                .iter()
                .map(|&lcore| Slot {
                    lcore,
                    acked_version: AtomicU64::new(0),
                    heartbeat: AtomicU64::new(now),
                    commands_applied: AtomicU64::new(0),
                    exited: AtomicBool::new(false),
                    asleep: AtomicBool::new(false),
                })
                .collect(),
            published: None,
            tsc_hz: tsc_hz.max(1),
        }
    }

    /// The same, knowing the versions the workers load (`handle`), so that a barrier does
    /// not wait for a worker asleep between loop iterations when the version it waits for
    /// is published ([`wait_for_version`](Self::wait_for_version)).
    pub fn following(mut self, handle: pipeline::PipelineHandle) -> WorkerHealth {
        self.published = Some(handle);
        self
    }

    /// Workers tracked.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The worker's lcore.
    pub fn lcore(&self, worker: usize) -> u32 {
        self.slots[worker].lcore
    }

    /// Worker `worker` holds no pipeline version and will use `version` or a newer one from
    /// now on. Called once per loop iteration; it is also the heartbeat.
    #[inline]
    pub(crate) fn ack(&self, worker: usize, version: u64) {
        let s = &self.slots[worker];
        s.heartbeat.store(dpdk::rdtsc(), Ordering::Relaxed);
        if s.acked_version.load(Ordering::Relaxed) != version {
            s.acked_version.store(version, Ordering::Release);
        }
    }

    /// Worker `worker` goes to sleep between two loop iterations (holding no version) or
    /// wakes up. Waking is ordered before the worker's next load of the version by a SeqCst
    /// fence, paired with the one in [`wait_for_version`](Self::wait_for_version) after the
    /// publish: either the waiter sees the worker awake (and waits for its ack), or the
    /// worker's next load sees the published version.
    #[inline]
    pub(crate) fn set_asleep(&self, worker: usize, asleep: bool) {
        self.slots[worker].asleep.store(asleep, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Worker `worker` applied one more port command.
    pub(crate) fn command_applied(&self, worker: usize) {
        self.slots[worker]
            .commands_applied
            .fetch_add(1, Ordering::Release);
    }

    /// Worker `worker` left its loop for good.
    pub(crate) fn set_exited(&self, worker: usize) {
        self.slots[worker].exited.store(true, Ordering::Release);
    }

    /// Whether worker `worker` left its loop.
    pub fn exited(&self, worker: usize) -> bool {
        self.slots[worker].exited.load(Ordering::Acquire)
    }

    /// Port commands worker `worker` has applied.
    pub(crate) fn commands_applied(&self, worker: usize) -> u64 {
        self.slots[worker].commands_applied.load(Ordering::Acquire)
    }

    /// The pipeline version worker `worker` last acknowledged.
    pub fn acked_version(&self, worker: usize) -> u64 {
        self.slots[worker].acked_version.load(Ordering::Acquire)
    }

    /// How long worker `worker`'s loop has not turned.
    pub fn since_heartbeat(&self, worker: usize) -> Duration {
        let beat = self.slots[worker].heartbeat.load(Ordering::Relaxed);
        let ticks = dpdk::rdtsc().saturating_sub(beat);
        Duration::from_nanos((u128::from(ticks) * 1_000_000_000 / u128::from(self.tsc_hz)) as u64)
    }

    fn report(&self, worker: usize) -> StuckWorker {
        StuckWorker {
            lcore: self.slots[worker].lcore,
            acked_version: self.acked_version(worker),
            since_heartbeat: self.since_heartbeat(worker),
        }
    }

    /// Waits until every running worker uses pipeline version `version` or a newer one (a
    /// worker that exited holds none, nor does one asleep between loop iterations once
    /// `version` is published: it loads the published version when it wakes), or the
    /// deadline passes: then names the workers that did not get there. Yields first, then
    /// sleeps briefly between polls; takes no lock.
    pub fn wait_for_version(&self, version: u64, deadline: Instant) -> Result<(), Stuck> {
        // Pairs with the fence in `set_asleep` (see there).
        fence(Ordering::SeqCst);
        let published = || {
            self.published
                .as_ref()
                .is_some_and(|h| h.published_version() >= version)
        };
        let behind = |w: usize| {
            !self.exited(w)
                && self.acked_version(w) < version
                && !(self.slots[w].asleep.load(Ordering::SeqCst) && published())
        };
        match poll_until(deadline, || (0..self.slots.len()).all(|w| !behind(w))) {
            true => Ok(()),
            false => Err(Stuck {
                version,
                workers: (0..self.slots.len())
                    .filter(|&w| behind(w))
                    .map(|w| self.report(w))
                    .collect(),
            }),
        }
    }

    /// Running workers whose loop has not turned for `threshold` or longer.
    pub fn stuck(&self, threshold: Duration) -> Vec<StuckWorker> {
        (0..self.slots.len())
            .filter(|&w| !self.exited(w) && self.since_heartbeat(w) >= threshold)
            .map(|w| self.report(w))
            .collect()
    }

    /// Waits until each running worker `w` applied `targets[w]` port commands, or the
    /// deadline passes: then gives the first worker that did not.
    pub(crate) fn wait_applied(&self, targets: &[u64], deadline: Instant) -> Result<(), Lagging> {
        let lagging = || {
            targets
                .iter()
                .enumerate()
                .find(|&(w, &t)| !self.exited(w) && self.commands_applied(w) < t)
                .map(|(w, _)| Lagging {
                    worker: w,
                    lcore: self.slots[w].lcore,
                })
        };
        if poll_until(deadline, || lagging().is_none()) {
            return Ok(());
        }
        lagging().map_or(Ok(()), Err)
    }

    /// Whether each running worker `w` applied `targets[w]` port commands (no wait).
    pub(crate) fn applied_all(&self, targets: &[u64]) -> bool {
        targets
            .iter()
            .enumerate()
            .all(|(w, &t)| self.exited(w) || self.commands_applied(w) >= t)
    }

    /// Waits until every worker has left its loop or the deadline passes; gives the lcores of
    /// those still running.
    pub(crate) fn wait_exited(&self, deadline: Instant) -> Vec<u32> {
        let running = || {
            (0..self.slots.len())
                .filter(|&w| !self.exited(w))
                .map(|w| self.slots[w].lcore)
                .collect::<Vec<_>>()
        };
        poll_until(deadline, || running().is_empty());
        running()
    }
}

/// Polls `done` until it holds (true) or `deadline` passes (false, after one last poll).
/// Yields the CPU for the first polls, then sleeps 20 µs, doubling up to 1 ms.
pub(crate) fn poll_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut polls = 0u32;
    let mut sleep = Duration::from_micros(20);
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return done();
        }
        if polls < YIELDS_BEFORE_SLEEP {
            polls += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(sleep.min(deadline - now));
            sleep = (sleep * 2).min(MAX_POLL_SLEEP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// TSC ticks per second measured over 50 ms (EAL is not initialised in unit tests).
    fn measured_tsc_hz() -> u64 {
        let (t0, c0) = (Instant::now(), dpdk::rdtsc());
        std::thread::sleep(Duration::from_millis(50));
        let ticks = dpdk::rdtsc() - c0;
        (u128::from(ticks) * 1_000_000_000 / t0.elapsed().as_nanos()) as u64
    }

    #[test]
    fn version_wait_returns_once_every_worker_acked() {
        let h = Arc::new(WorkerHealth::new(&[1, 2], measured_tsc_hz()));
        h.ack(0, 5);
        h.ack(1, 4);
        let waiter = {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                h.wait_for_version(5, Instant::now() + Duration::from_secs(5))
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        h.ack(1, 5);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn version_wait_names_the_worker_that_did_not_ack_and_its_still_loop() {
        let h = WorkerHealth::new(&[1, 3], measured_tsc_hz());
        h.ack(0, 7);
        h.ack(1, 6);
        std::thread::sleep(Duration::from_millis(200));
        h.ack(0, 7);
        let start = Instant::now();
        let err = h
            .wait_for_version(7, Instant::now() + Duration::from_millis(100))
            .unwrap_err();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert_eq!(err.version, 7);
        assert_eq!(err.workers.len(), 1, "{err}");
        assert_eq!(err.workers[0].lcore, 3);
        assert_eq!(err.workers[0].acked_version, 6);
        assert!(
            err.workers[0].since_heartbeat >= Duration::from_millis(250),
            "{err}"
        );
        assert!(err.to_string().contains("lcore 3"), "{err}");
    }

    #[test]
    fn a_sleeping_worker_holds_no_version_and_is_waited_for_once_awake() {
        let mut tables = pipeline::FlowTables::new(pipeline::PipelineConfig::default());
        let v = tables.publish();
        let h = WorkerHealth::new(&[1, 2], measured_tsc_hz()).following(tables.handle());
        h.ack(0, v);
        h.ack(1, v - 1);
        h.set_asleep(1, true);
        // Asleep, it loads the published version when it wakes: nothing to wait for.
        assert_eq!(h.wait_for_version(v, Instant::now()), Ok(()));
        // A version not published yet: the sleeper is behind like anyone.
        let err = h.wait_for_version(v + 1, Instant::now()).unwrap_err();
        assert_eq!(err.workers.len(), 2, "{err}");
        // Awake, it is waited for until it acknowledges.
        h.set_asleep(1, false);
        let err = h.wait_for_version(v, Instant::now()).unwrap_err();
        assert_eq!(err.workers.len(), 1, "{err}");
        assert_eq!(err.workers[0].lcore, 2);
        h.ack(1, v);
        assert_eq!(h.wait_for_version(v, Instant::now()), Ok(()));
        // Without the handle a sleeper is waited for.
        let plain = WorkerHealth::new(&[3], measured_tsc_hz());
        plain.set_asleep(0, true);
        assert!(plain.wait_for_version(1, Instant::now()).is_err());
    }

    #[test]
    fn an_exited_worker_holds_no_version_and_is_not_stuck() {
        let h = WorkerHealth::new(&[1, 2], measured_tsc_hz());
        h.ack(0, 9);
        h.set_exited(1);
        assert_eq!(h.wait_for_version(9, Instant::now()), Ok(()));
        std::thread::sleep(Duration::from_millis(30));
        assert!(h
            .stuck(Duration::from_millis(10))
            .iter()
            .all(|w| w.lcore != 2));
        assert_eq!(h.wait_exited(Instant::now()), vec![1]);
        assert!(h.applied_all(&[0, 5]));
        assert!(!h.applied_all(&[1, 0]));
    }

    #[test]
    fn stuck_lists_workers_whose_heartbeat_stopped() {
        let h = WorkerHealth::new(&[4, 5], measured_tsc_hz());
        h.ack(0, 1);
        h.ack(1, 1);
        std::thread::sleep(Duration::from_millis(120));
        h.ack(0, 1);
        let stuck = h.stuck(Duration::from_millis(100));
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(stuck[0].lcore, 5);
        assert!(h.stuck(Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn applied_wait_gives_the_lagging_worker_on_time() {
        let h = Arc::new(WorkerHealth::new(&[1, 2], measured_tsc_hz()));
        h.command_applied(0);
        let start = Instant::now();
        let lag = h
            .wait_applied(&[1, 1], Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(
            lag,
            Lagging {
                worker: 1,
                lcore: 2
            }
        );
        h.command_applied(1);
        assert_eq!(h.wait_applied(&[1, 1], Instant::now()), Ok(()));
    }
}
