//! The ptrace stop loop: one waitpid(-1, __WALL) at a time, every stop classified
//! (seccomp, syscall-exit, fork/clone/exec events, group-stop, signal delivery) and the
//! tracee resumed exactly as it would have run untraced: signals are injected unchanged,
//! group-stops are kept with PTRACE_LISTEN. Must run on the thread that spawned the root.

use std::collections::HashMap;

use super::decode::{Ctx, Pending};
use super::model::{Exit, Reason};
use super::syscalls::{self, NATIVE_ARCH, X32_BIT};
use super::TraceError;

/// `struct ptrace_syscall_info` (linux/ptrace.h), the union kept as raw words:
/// seccomp/entry: [nr, args[6], ret_data]; exit: [rval, is_error].
#[repr(C)]
#[derive(Default)]
struct SyscallInfo {
    op: u8,
    _pad: [u8; 3],
    arch: u32,
    _ip: u64,
    _sp: u64,
    data: [u64; 8],
}

const OP_EXIT: u8 = 2;
const OP_SECCOMP: u8 = 3;
const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const PTRACE_EVENT_STOP: i32 = 128;

#[derive(Default)]
struct Thread {
    /// The first stop of an auto-attached thread has been seen and resumed.
    started: bool,
    /// A call waiting for its syscall-exit stop (the thread runs under PTRACE_SYSCALL).
    pending: Option<Pending>,
}

pub struct Loop {
    pub root: i32,
    pub ctx: Ctx,
    threads: HashMap<i32, Thread>,
    root_exit: Option<Exit>,
    /// No syscall stop has been decoded yet (the first one tells whether the kernel
    /// supports PTRACE_GET_SYSCALL_INFO, before the command has run anything).
    first_stop: bool,
    /// Called once when the root exits while processes it started are still traced.
    pub on_orphans: Option<Box<dyn FnOnce() + Send>>,
}

fn syscall_info(tid: i32) -> Option<SyscallInfo> {
    let mut info = SyscallInfo::default();
    // SAFETY: the kernel writes at most size_of::<SyscallInfo>() bytes into `info`.
    let rc = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            tid,
            std::mem::size_of::<SyscallInfo>(),
            &mut info as *mut SyscallInfo,
        )
    };
    (rc > 0).then_some(info)
}

fn event_msg(tid: i32) -> Option<i32> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long into `msg`.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut msg as *mut libc::c_ulong,
        )
    };
    (rc == 0).then_some(msg as i32)
}

/// Resumes a stopped tracee. ESRCH (it was killed meanwhile) is not an error: its exit
/// status is still to come from waitpid.
fn resume(request: libc::c_uint, tid: i32, signal: i32) {
    // SAFETY: plain ptrace request; the data argument is a signal number.
    unsafe {
        libc::ptrace(
            request,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            signal as usize as *mut libc::c_void,
        );
    }
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

impl Loop {
    pub fn new(root: i32, ctx: Ctx) -> Self {
        let mut threads = HashMap::new();
        // A seized process does not stop when attached: it is running already.
        threads.insert(
            root,
            Thread {
                started: true,
                pending: None,
            },
        );
        Loop {
            root,
            ctx,
            threads,
            root_exit: None,
            first_stop: true,
            on_orphans: None,
        }
    }

    /// The request that keeps the thread's mode: PTRACE_SYSCALL while a call awaits its
    /// exit stop, else PTRACE_CONT (stop only at the next seccomp trap).
    fn mode(&self, tid: i32) -> libc::c_uint {
        match self.threads.get(&tid) {
            Some(t) if t.pending.is_some() => libc::PTRACE_SYSCALL,
            _ => libc::PTRACE_CONT,
        }
    }

    /// Runs until no tracee is left. Returns the root's exit.
    pub fn run(&mut self) -> Result<Exit, TraceError> {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes the status into our local.
            let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
            if tid < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => break,
                    _ => return Err(TraceError::Failed(format!("waitpid: {e}"))),
                }
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.threads.remove(&tid);
                self.ctx.cwds.forget(tid);
                if tid == self.root {
                    self.root_exit = Some(if libc::WIFEXITED(status) {
                        Exit::Code(libc::WEXITSTATUS(status))
                    } else {
                        Exit::Signal {
                            signal: libc::WTERMSIG(status),
                            core_dumped: libc::WCOREDUMP(status),
                        }
                    });
                    if !self.threads.is_empty() {
                        if let Some(f) = self.on_orphans.take() {
                            f();
                        }
                    }
                }
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            self.on_stop(tid, libc::WSTOPSIG(status), (status >> 16) & 0xff)?;
        }
        // The root is reaped before the loop can end (ECHILD comes only after it).
        self.root_exit
            .ok_or_else(|| TraceError::Failed("the command's exit status was lost".into()))
    }

    fn on_stop(&mut self, tid: i32, sig: i32, event: i32) -> Result<(), TraceError> {
        let thread = self.threads.entry(tid).or_default();
        if !thread.started {
            // The first stop of an auto-attached child or thread (PTRACE_EVENT_STOP).
            thread.started = true;
            if event == PTRACE_EVENT_STOP {
                resume(libc::PTRACE_CONT, tid, 0);
                return Ok(());
            }
        }
        match event {
            libc::PTRACE_EVENT_SECCOMP => self.on_seccomp(tid),
            0 if sig == libc::SIGTRAP | 0x80 => {
                self.on_syscall_exit(tid);
                Ok(())
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Some(child) = event_msg(tid) {
                    self.threads.entry(child).or_default();
                }
                resume(self.mode(tid), tid, 0);
                Ok(())
            }
            libc::PTRACE_EVENT_EXEC => {
                self.on_exec(tid);
                Ok(())
            }
            PTRACE_EVENT_STOP => {
                if is_stop_signal(sig) {
                    // Group-stop: stay stopped until SIGCONT, as without a tracer, while
                    // the tracer goes on serving the other tracees.
                    resume(libc::PTRACE_LISTEN, tid, 0);
                } else {
                    resume(self.mode(tid), tid, 0);
                }
                Ok(())
            }
            0 => {
                // Signal-delivery-stop: deliver the signal unchanged.
                resume(self.mode(tid), tid, sig);
                Ok(())
            }
            _ => {
                resume(self.mode(tid), tid, 0);
                Ok(())
            }
        }
    }

    fn on_seccomp(&mut self, tid: i32) -> Result<(), TraceError> {
        self.ctx.log.stops += 1;
        super::STOPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(info) = syscall_info(tid) else {
            if self.first_stop {
                // Nothing of the command has run yet (this is its first execve).
                // SAFETY: killing and reaping our own tracee.
                unsafe {
                    libc::kill(tid, libc::SIGKILL);
                    libc::waitpid(tid, std::ptr::null_mut(), libc::__WALL);
                }
                return Err(TraceError::Refused(
                    "PTRACE_GET_SYSCALL_INFO is not supported (Linux 5.3 or later is needed)"
                        .into(),
                ));
            }
            resume(libc::PTRACE_CONT, tid, 0);
            return Ok(());
        };
        self.first_stop = false;
        let nr = info.data[0];
        let mut args = [0u64; 6];
        args.copy_from_slice(&info.data[1..7]);
        let pending = if info.op != OP_SECCOMP {
            None
        } else if info.arch != NATIVE_ARCH {
            self.ctx
                .log
                .unknowable(tid, Reason::ForeignAbi { arch: info.arch });
            None
        } else if X32_BIT.is_some_and(|bit| nr & bit as u64 != 0) {
            self.ctx.log.unknowable(tid, Reason::X32Abi);
            None
        } else {
            syscalls::lookup(nr).and_then(|sys| self.ctx.entry(tid, sys, &args))
        };
        let request = if pending.is_some() {
            libc::PTRACE_SYSCALL
        } else {
            libc::PTRACE_CONT
        };
        self.threads.entry(tid).or_default().pending = pending;
        resume(request, tid, 0);
        Ok(())
    }

    fn on_syscall_exit(&mut self, tid: i32) {
        let pending = self.threads.get_mut(&tid).and_then(|t| t.pending.take());
        if let Some(pending) = pending {
            self.ctx.log.stops += 1;
            super::STOPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match syscall_info(tid) {
                Some(info) if info.op == OP_EXIT => {
                    self.ctx.exit(tid, pending, info.data[0] as i64);
                }
                // Not the exit stop we waited for: drop the call rather than guess.
                _ => {}
            }
        }
        resume(libc::PTRACE_CONT, tid, 0);
    }

    fn on_exec(&mut self, tid: i32) {
        // A non-leader thread that execs takes the leader's tid; neither old tid reports
        // an exit, so the execing thread's state moves here.
        if let Some(former) = event_msg(tid) {
            if former != tid {
                let moved = self.threads.remove(&former).unwrap_or_default();
                self.threads.insert(tid, moved);
                self.ctx.cwds.forget(former);
            }
        }
        let thread = self.threads.entry(tid).or_default();
        thread.started = true;
        let pending = thread.pending.take();
        let waits_for_exit = pending.is_some();
        if waits_for_exit {
            thread.pending = Some(Pending::ExecDone);
        }
        self.ctx.exec_event(tid, pending);
        resume(self.mode(tid), tid, 0);
    }
}
