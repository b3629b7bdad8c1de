//! A held cross-host lease: a heartbeat thread renews it while the command runs, and
//! dropping it releases it if it is still ours. It must never wait on the remote past
//! the remote timeout, nor end the command because a renewal failed.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::deadline::{within, Deadline};
use super::{Remote, LEASE_TTL};

/// A held remote lease: a heartbeat thread renews it; dropping it stops the heartbeat
/// and releases the lease if it is still ours.
/// Renewals and the release are bounded by the remote timeout like every other call, so
/// dropping a lease never waits on a frozen server for longer than that, twice.
pub struct RemoteLease {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    backend: Arc<dyn Remote>,
    timeout: Duration,
    id: String,
    holder: String,
}

impl RemoteLease {
    pub(super) fn start(
        backend: Arc<dyn Remote>,
        timeout: Duration,
        id: String,
        holder: String,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let (b, i, h) = (backend.clone(), id.clone(), holder.clone());
        let thread = std::thread::spawn(move || loop {
            match rx.recv_timeout(LEASE_TTL / 3) {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // A lost lease, or renewals failing until it expires, leave the
                    // command running: the worst case is another host running it too,
                    // never a wrong result. A failed renewal is retried next beat.
                    let (b, i, h) = (Arc::clone(&b), i.clone(), h.clone());
                    let renewed = within(Deadline::after(timeout), move || {
                        b.renew_lease(&i, &h, LEASE_TTL)
                    });
                    if let Ok(false) = renewed {
                        return;
                    }
                }
                _ => return,
            }
        });
        Self {
            stop: Some(tx),
            thread: Some(thread),
            backend,
            timeout,
            id,
            holder,
        }
    }
}

impl Drop for RemoteLease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (b, i, h) = (
            Arc::clone(&self.backend),
            self.id.clone(),
            self.holder.clone(),
        );
        let _ = within(Deadline::after(self.timeout), move || {
            b.release_lease(&i, &h)
        });
    }
}
