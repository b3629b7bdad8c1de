//! The per-architecture syscall table: which syscall numbers the seccomp filter traps and
//! what each one is. Only the native 64-bit ABI is decoded; a 32-bit or x32 syscall is
//! never looked up here (the tracer marks it unknowable instead).

/// A traced syscall, independent of its number on a given architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sys {
    Open,
    Creat,
    OpenAt,
    OpenAt2,
    Stat,
    Lstat,
    NewFstatAt,
    Statx,
    Access,
    FaccessAt,
    FaccessAt2,
    ReadLink,
    ReadLinkAt,
    Execve,
    ExecveAt,
    Chdir,
    Fchdir,
    Getdents,
    Getdents64,
    Rename,
    RenameAt,
    RenameAt2,
    Unlink,
    UnlinkAt,
    Rmdir,
    Link,
    LinkAt,
    Symlink,
    SymlinkAt,
    Mkdir,
    MkdirAt,
    Mknod,
    MknodAt,
    Truncate,
    Utime,
    Utimes,
    FutimesAt,
    UtimensAt,
    Connect,
    Bind,
    Listen,
    SendTo,
    SendMsg,
    SendMmsg,
    IoUringSetup,
    OpenByHandleAt,
    NameToHandleAt,
}

impl Sys {
    pub fn name(self) -> &'static str {
        match self {
            Sys::Open => "open",
            Sys::Creat => "creat",
            Sys::OpenAt => "openat",
            Sys::OpenAt2 => "openat2",
            Sys::Stat => "stat",
            Sys::Lstat => "lstat",
            Sys::NewFstatAt => "newfstatat",
            Sys::Statx => "statx",
            Sys::Access => "access",
            Sys::FaccessAt => "faccessat",
            Sys::FaccessAt2 => "faccessat2",
            Sys::ReadLink => "readlink",
            Sys::ReadLinkAt => "readlinkat",
            Sys::Execve => "execve",
            Sys::ExecveAt => "execveat",
            Sys::Chdir => "chdir",
            Sys::Fchdir => "fchdir",
            Sys::Getdents => "getdents",
            Sys::Getdents64 => "getdents64",
            Sys::Rename => "rename",
            Sys::RenameAt => "renameat",
            Sys::RenameAt2 => "renameat2",
            Sys::Unlink => "unlink",
            Sys::UnlinkAt => "unlinkat",
            Sys::Rmdir => "rmdir",
            Sys::Link => "link",
            Sys::LinkAt => "linkat",
            Sys::Symlink => "symlink",
            Sys::SymlinkAt => "symlinkat",
            Sys::Mkdir => "mkdir",
            Sys::MkdirAt => "mkdirat",
            Sys::Mknod => "mknod",
            Sys::MknodAt => "mknodat",
            Sys::Truncate => "truncate",
            Sys::Utime => "utime",
            Sys::Utimes => "utimes",
            Sys::FutimesAt => "futimesat",
            Sys::UtimensAt => "utimensat",
            Sys::Connect => "connect",
            Sys::Bind => "bind",
            Sys::Listen => "listen",
            Sys::SendTo => "sendto",
            Sys::SendMsg => "sendmsg",
            Sys::SendMmsg => "sendmmsg",
            Sys::IoUringSetup => "io_uring_setup",
            Sys::OpenByHandleAt => "open_by_handle_at",
            Sys::NameToHandleAt => "name_to_handle_at",
        }
    }
}

/// `AUDIT_ARCH_*` of the native ABI, as seccomp's `seccomp_data.arch` reports it.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = 0xC000_003E; // EM_X86_64 | __AUDIT_ARCH_64BIT | LE
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = 0xC000_00B7; // EM_AARCH64 | __AUDIT_ARCH_64BIT | LE

/// x32 syscalls share x86_64's arch value and set this bit in the number.
#[cfg(target_arch = "x86_64")]
pub const X32_BIT: Option<u32> = Some(0x4000_0000);
#[cfg(target_arch = "aarch64")]
pub const X32_BIT: Option<u32> = None;

/// Every traced syscall of the native ABI and its number.
#[cfg(target_arch = "x86_64")]
pub const TABLE: &[(i64, Sys)] = &[
    (libc::SYS_open, Sys::Open),
    (libc::SYS_creat, Sys::Creat),
    (libc::SYS_openat, Sys::OpenAt),
    (libc::SYS_openat2, Sys::OpenAt2),
    (libc::SYS_stat, Sys::Stat),
    (libc::SYS_lstat, Sys::Lstat),
    (libc::SYS_newfstatat, Sys::NewFstatAt),
    (libc::SYS_statx, Sys::Statx),
    (libc::SYS_access, Sys::Access),
    (libc::SYS_faccessat, Sys::FaccessAt),
    (libc::SYS_faccessat2, Sys::FaccessAt2),
    (libc::SYS_readlink, Sys::ReadLink),
    (libc::SYS_readlinkat, Sys::ReadLinkAt),
    (libc::SYS_execve, Sys::Execve),
    (libc::SYS_execveat, Sys::ExecveAt),
    (libc::SYS_chdir, Sys::Chdir),
    (libc::SYS_fchdir, Sys::Fchdir),
    (libc::SYS_getdents, Sys::Getdents),
    (libc::SYS_getdents64, Sys::Getdents64),
    (libc::SYS_rename, Sys::Rename),
    (libc::SYS_renameat, Sys::RenameAt),
    (libc::SYS_renameat2, Sys::RenameAt2),
    (libc::SYS_unlink, Sys::Unlink),
    (libc::SYS_unlinkat, Sys::UnlinkAt),
    (libc::SYS_rmdir, Sys::Rmdir),
    (libc::SYS_link, Sys::Link),
    (libc::SYS_linkat, Sys::LinkAt),
    (libc::SYS_symlink, Sys::Symlink),
    (libc::SYS_symlinkat, Sys::SymlinkAt),
    (libc::SYS_mkdir, Sys::Mkdir),
    (libc::SYS_mkdirat, Sys::MkdirAt),
    (libc::SYS_mknod, Sys::Mknod),
    (libc::SYS_mknodat, Sys::MknodAt),
    (libc::SYS_truncate, Sys::Truncate),
    (libc::SYS_utime, Sys::Utime),
    (libc::SYS_utimes, Sys::Utimes),
    (libc::SYS_futimesat, Sys::FutimesAt),
    (libc::SYS_utimensat, Sys::UtimensAt),
    (libc::SYS_connect, Sys::Connect),
    (libc::SYS_bind, Sys::Bind),
    (libc::SYS_listen, Sys::Listen),
    (libc::SYS_sendto, Sys::SendTo),
    (libc::SYS_sendmsg, Sys::SendMsg),
    (libc::SYS_sendmmsg, Sys::SendMmsg),
    (libc::SYS_io_uring_setup, Sys::IoUringSetup),
    (libc::SYS_open_by_handle_at, Sys::OpenByHandleAt),
    (libc::SYS_name_to_handle_at, Sys::NameToHandleAt),
];

/// aarch64 has only the `*at` forms (its generic syscall table dropped the legacy ones).
#[cfg(target_arch = "aarch64")]
pub const TABLE: &[(i64, Sys)] = &[
    (libc::SYS_openat, Sys::OpenAt),
    (libc::SYS_openat2, Sys::OpenAt2),
    (libc::SYS_newfstatat, Sys::NewFstatAt),
    (libc::SYS_statx, Sys::Statx),
    (libc::SYS_faccessat, Sys::FaccessAt),
    (libc::SYS_faccessat2, Sys::FaccessAt2),
    (libc::SYS_readlinkat, Sys::ReadLinkAt),
    (libc::SYS_execve, Sys::Execve),
    (libc::SYS_execveat, Sys::ExecveAt),
    (libc::SYS_chdir, Sys::Chdir),
    (libc::SYS_fchdir, Sys::Fchdir),
    (libc::SYS_getdents64, Sys::Getdents64),
    (libc::SYS_renameat, Sys::RenameAt),
    (libc::SYS_renameat2, Sys::RenameAt2),
    (libc::SYS_unlinkat, Sys::UnlinkAt),
    (libc::SYS_linkat, Sys::LinkAt),
    (libc::SYS_symlinkat, Sys::SymlinkAt),
    (libc::SYS_mkdirat, Sys::MkdirAt),
    (libc::SYS_mknodat, Sys::MknodAt),
    (libc::SYS_truncate, Sys::Truncate),
    (libc::SYS_utimensat, Sys::UtimensAt),
    (libc::SYS_connect, Sys::Connect),
    (libc::SYS_bind, Sys::Bind),
    (libc::SYS_listen, Sys::Listen),
    (libc::SYS_sendto, Sys::SendTo),
    (libc::SYS_sendmsg, Sys::SendMsg),
    (libc::SYS_sendmmsg, Sys::SendMmsg),
    (libc::SYS_io_uring_setup, Sys::IoUringSetup),
    (libc::SYS_open_by_handle_at, Sys::OpenByHandleAt),
    (libc::SYS_name_to_handle_at, Sys::NameToHandleAt),
];

/// The traced syscall with this native number, if any.
pub fn lookup(nr: u64) -> Option<Sys> {
    TABLE
        .iter()
        .find(|(n, _)| *n as u64 == nr)
        .map(|&(_, sys)| sys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_distinct_and_fit_the_filter() {
        let mut seen = std::collections::HashSet::new();
        for (nr, sys) in TABLE {
            assert!(seen.insert(*nr), "{} listed twice", sys.name());
            assert!(*nr >= 0 && *nr < u32::MAX as i64);
            assert_eq!(lookup(*nr as u64), Some(*sys));
        }
        assert_eq!(lookup(libc::SYS_getpid as u64), None);
    }
}
