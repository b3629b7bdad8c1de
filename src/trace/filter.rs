//! The seccomp-bpf program that makes the command stop only on the syscalls the tracer
//! cares about: every syscall of a foreign ABI (32-bit, x32) and the native table's
//! entries return SECCOMP_RET_TRACE; everything else runs untouched. Never denies a call.

use super::syscalls::{Sys, NATIVE_ARCH, TABLE, X32_BIT};

/// `struct sock_filter` (linux/filter.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
pub struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const OFFSET_NR: u32 = 0; // seccomp_data.nr
const OFFSET_ARCH: u32 = 4; // seccomp_data.arch

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Builds the program: foreign arch → trace; x32 → trace; a traced number (other than
/// those in `skip`) → trace; else allow.
pub fn program(skip: &[Sys]) -> Vec<SockFilter> {
    let mut p = vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(JEQ_K, NATIVE_ARCH, 1, 0),
        stmt(RET_K, RET_TRACE),
        stmt(LD_W_ABS, OFFSET_NR),
    ];
    if let Some(bit) = X32_BIT {
        p.push(jump(JSET_K, bit, 0, 1));
        p.push(stmt(RET_K, RET_TRACE));
    }
    let traced: Vec<i64> = TABLE
        .iter()
        .filter(|(_, sys)| !skip.contains(sys))
        .map(|&(nr, _)| nr)
        .collect();
    let n = traced.len();
    assert!(n < 250, "the syscall table fits 8-bit BPF jump offsets");
    for (j, nr) in traced.iter().enumerate() {
        // Jump over the rest of the list and the RET_ALLOW to the RET_TRACE.
        p.push(jump(JEQ_K, *nr as u32, (n - j) as u8, 0));
    }
    p.push(stmt(RET_K, RET_ALLOW));
    p.push(stmt(RET_K, RET_TRACE));
    p
}

/// Installs `prog` in the calling thread, with no_new_privs. Called in the forked child
/// before exec: only async-signal-safe calls, no allocation. Returns the errno on failure.
///
/// # Safety
/// `prog` must be a valid program; the caller must be a freshly forked child.
pub unsafe fn install(prog: &[SockFilter]) -> Result<(), i32> {
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        return Err(*libc::__errno_location());
    }
    let fprog = SockFprog {
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    let rc = libc::syscall(
        libc::SYS_seccomp,
        SECCOMP_SET_MODE_FILTER,
        0 as libc::c_long,
        &fprog as *const SockFprog,
    );
    if rc != 0 {
        return Err(*libc::__errno_location());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions `program` uses, to check its verdicts.
    fn run(prog: &[SockFilter], arch: u32, nr: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => acc = if i.k == OFFSET_ARCH { arch } else { nr },
                JEQ_K => {
                    pc += if acc == i.k { i.jt } else { i.jf } as usize;
                }
                JSET_K => {
                    pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize;
                }
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn verdicts() {
        let p = program(&[]);
        for (nr, _) in TABLE {
            assert_eq!(run(&p, NATIVE_ARCH, *nr as u32), RET_TRACE);
        }
        let no_readlink = program(&[Sys::ReadLinkAt]);
        for (nr, sys) in TABLE {
            let want = if *sys == Sys::ReadLinkAt {
                RET_ALLOW
            } else {
                RET_TRACE
            };
            assert_eq!(run(&no_readlink, NATIVE_ARCH, *nr as u32), want);
        }
        assert_eq!(run(&p, NATIVE_ARCH, libc::SYS_read as u32), RET_ALLOW);
        assert_eq!(run(&p, NATIVE_ARCH, libc::SYS_mmap as u32), RET_ALLOW);
        // i386 (AUDIT_ARCH_I386) and arm: every call is trapped.
        assert_eq!(run(&p, 0x4000_0003, 3), RET_TRACE);
        assert_eq!(run(&p, 0x4000_0028, 3), RET_TRACE);
        if let Some(bit) = X32_BIT {
            assert_eq!(run(&p, NATIVE_ARCH, bit | libc::SYS_read as u32), RET_TRACE);
        }
    }
}
