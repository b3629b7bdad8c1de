//! SIGINT/SIGTERM/SIGHUP held off while a restore runs: the handler only notes the
//! signal; the restore stops at its next step, removes its staging directory, and the
//! signal is then raised again with the caller's disposition. Never exits by itself.

use std::sync::atomic::{AtomicI32, Ordering};

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// Installed for the duration of a restore.
pub struct Guard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Guard {
    pub fn install() -> Guard {
        CAUGHT.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: plain sigaction calls with zeroed, then filled, structs.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, std::ptr::null(), &mut old);
                if old.sa_sigaction == libc::SIG_IGN {
                    // Ignored by our caller: stays ignored.
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = note as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
                previous.push((sig, old));
            }
        }
        Guard { previous }
    }

    /// The signal that arrived since `install`, if any.
    pub fn caught(&self) -> Option<i32> {
        match CAUGHT.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }

    /// Puts the caller's dispositions back and delivers a signal that arrived
    /// meanwhile (by default, that ends the process, as it would have without us).
    pub fn finish(self) {
        let caught = self.caught();
        for (sig, old) in &self.previous {
            // SAFETY: restoring a disposition read by sigaction above.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
        if let Some(sig) = caught {
            // SAFETY: raise is always safe to call.
            unsafe {
                libc::raise(sig);
            }
        }
    }
}
