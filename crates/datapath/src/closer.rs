//! Closing ports off the caller's locks: stopping and detaching a port is a DPDK call that can
//! block (a vhost-user port's close waits for the vhost-events thread, which a stalled peer
//! can keep inside a read for ever), so the datapath hands detached ports back and one
//! background thread closes them, in order. The exit path waits for it with a deadline and
//! leaks what is still open rather than hang.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use dpdk::Port;
use tracing::{info, warn};

/// A port no worker polls or sends on any more (every worker acknowledged its removal), not
/// yet closed. Dropping it leaks the device; [`DetachedPort::close`] or a [`PortCloser`]
/// closes it.
#[derive(Debug)]
pub struct DetachedPort {
    pub(crate) name: String,
    pub(crate) port: Port,
}

impl DetachedPort {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the device, closes it and detaches it. May block for as long as the driver
    /// does: for a vhost-user port, as long as a stalled peer holds the vhost-events thread.
    pub fn close(self) -> Result<(), dpdk::Error> {
        if let Err(e) = self.port.stop() {
            warn!(port = %self.name, "{e}");
        }
        self.port.remove()?;
        info!(port = %self.name, "port closed");
        Ok(())
    }
}

/// Something the closer thread can close (a [`DetachedPort`]; tests use fakes).
pub trait Closable: Send + 'static {
    fn name(&self) -> &str;
    /// Closes it; may block.
    fn close(self) -> Result<(), String>;
}

impl Closable for DetachedPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn close(self) -> Result<(), String> {
        DetachedPort::close(self).map_err(|e| e.to_string())
    }
}

/// One background thread that closes detached ports in the order they are handed over.
/// Cloning gives another handle to the same thread. The thread lives as long as the process.
pub struct PortCloser<P: Closable = DetachedPort> {
    shared: Arc<Shared<P>>,
}

impl<P: Closable> Clone for PortCloser<P> {
    fn clone(&self) -> Self {
        PortCloser {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<P> {
    state: Mutex<State<P>>,
    /// Signalled when a port is handed over and when one is closed.
    changed: Condvar,
}

struct State<P> {
    waiting: VecDeque<P>,
    /// The name of the port being closed right now.
    closing: Option<String>,
}

impl<P: Closable> Shared<P> {
    /// The state even if a close panicked while the lock was held (it never is: closes run
    /// unlocked).
    fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<P: Closable> Default for PortCloser<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Closable> PortCloser<P> {
    /// Starts the closing thread.
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                closing: None,
            }),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("ff-port-closer".into())
            .spawn(move || closer_thread(&worker))
            .expect("spawn the port closer thread");
        PortCloser { shared }
    }

    /// Hands a port to the closing thread; never blocks on the close itself.
    pub fn close(&self, port: P) {
        self.shared.lock().waiting.push_back(port);
        self.shared.changed.notify_all();
    }

    /// Waits until every port handed over is closed, or `deadline` passes: gives the names of
    /// those still open then (the one being closed first), which the caller leaks.
    pub fn drain(&self, deadline: Instant) -> Vec<String> {
        let mut state = self.shared.lock();
        loop {
            if state.waiting.is_empty() && state.closing.is_none() {
                return Vec::new();
            }
            let now = Instant::now();
            if now >= deadline {
                return state
                    .closing
                    .iter()
                    .cloned()
                    .chain(state.waiting.iter().map(|p| p.name().to_owned()))
                    .collect();
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Names of the ports handed over and not closed yet.
    pub fn pending(&self) -> Vec<String> {
        let state = self.shared.lock();
        state
            .closing
            .iter()
            .cloned()
            .chain(state.waiting.iter().map(|p| p.name().to_owned()))
            .collect()
    }
}

fn closer_thread<P: Closable>(shared: &Shared<P>) {
    loop {
        let port = {
            let mut state = shared.lock();
            loop {
                if let Some(p) = state.waiting.pop_front() {
                    state.closing = Some(p.name().to_owned());
                    break p;
                }
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        let name = port.name().to_owned();
        if let Err(e) = port.close() {
            warn!(port = %name, "closing the port: {e}");
        }
        shared.lock().closing = None;
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A close that blocks until its gate opens (as a vhost close behind a stalled peer).
    struct FakePort {
        name: String,
        gate: Option<mpsc::Receiver<()>>,
        closed: Arc<AtomicUsize>,
    }

    impl Closable for FakePort {
        fn name(&self) -> &str {
            &self.name
        }

        fn close(self) -> Result<(), String> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            self.closed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn fake(name: &str, gate: Option<mpsc::Receiver<()>>, closed: &Arc<AtomicUsize>) -> FakePort {
        FakePort {
            name: name.into(),
            gate,
            closed: Arc::clone(closed),
        }
    }

    #[test]
    fn drain_returns_once_everything_is_closed() {
        let closed = Arc::new(AtomicUsize::new(0));
        let closer = PortCloser::new();
        for n in ["a", "b", "c"] {
            closer.close(fake(n, None, &closed));
        }
        assert!(closer
            .drain(Instant::now() + Duration::from_secs(10))
            .is_empty());
        assert_eq!(closed.load(Ordering::SeqCst), 3);
        assert!(closer.pending().is_empty());
    }

    #[test]
    fn a_blocking_close_does_not_hold_up_the_caller_and_drain_gives_up_on_time() {
        let closed = Arc::new(AtomicUsize::new(0));
        let closer = PortCloser::new();
        let (open_gate, gate) = mpsc::channel();
        let start = Instant::now();
        closer.close(fake("stalled-vhost", Some(gate), &closed));
        closer.close(fake("after", None, &closed));
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "close() blocked"
        );
        let deadline = Instant::now() + Duration::from_millis(200);
        let left = closer.drain(deadline);
        let late = Instant::now().saturating_duration_since(deadline);
        assert!(
            late < Duration::from_millis(500),
            "drain overran by {late:?}"
        );
        assert_eq!(left, vec!["stalled-vhost".to_owned(), "after".to_owned()]);
        assert_eq!(closed.load(Ordering::SeqCst), 0);
        // Once the peer lets go, the rest closes in order.
        open_gate.send(()).unwrap();
        assert!(closer
            .drain(Instant::now() + Duration::from_secs(10))
            .is_empty());
        assert_eq!(closed.load(Ordering::SeqCst), 2);
    }
}
