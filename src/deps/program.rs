//! The program dependency: argv[0] resolved the way execvp would (through PATH unless
//! it contains a `/`), so the file idem hashes is exactly the file it executes.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::Workspace;

#[derive(Debug)]
pub enum Resolve {
    Found(PathBuf),
    /// Exit 127, like a shell.
    NotFound,
    /// Exit 126, like a shell: exists but is a directory or not executable.
    NotExecutable(PathBuf),
}

pub fn resolve(argv0: &OsStr, ws: &Workspace, path_var: Option<&OsStr>) -> Resolve {
    if argv0.is_empty() {
        return Resolve::NotFound;
    }
    if argv0.as_bytes().contains(&b'/') {
        let p = ws.absolute(Path::new(argv0));
        return check(p);
    }
    let path_var: OsString = path_var
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut not_exec = None;
    for dir in std::env::split_paths(&path_var) {
        let dir = if dir.as_os_str().is_empty() {
            ws.cwd.clone()
        } else {
            dir
        };
        let candidate = dir.join(argv0);
        match check(candidate) {
            Resolve::Found(p) => return Resolve::Found(p),
            Resolve::NotExecutable(p) => {
                not_exec.get_or_insert(p);
            }
            Resolve::NotFound => {}
        }
    }
    match not_exec {
        Some(p) => Resolve::NotExecutable(p),
        None => Resolve::NotFound,
    }
}

fn check(p: PathBuf) -> Resolve {
    match std::fs::metadata(&p) {
        Ok(md) if md.is_file() && md.permissions().mode() & 0o111 != 0 => Resolve::Found(p),
        Ok(_) => Resolve::NotExecutable(p),
        Err(_) => Resolve::NotFound,
    }
}
