//! Which resolved paths the tracer drops as noise: those under an ignored prefix (/proc,
//! /sys, /dev, the cache directory) unless a longer traced prefix (/dev/shm, the
//! workspace root) carves them out. Never hides a path no ignored prefix names.

use std::path::{Path, PathBuf};

/// The ignored and traced prefixes of one run.
#[derive(Debug, Clone, Default)]
pub struct Noise {
    pub ignore: Vec<PathBuf>,
    pub traced: Vec<PathBuf>,
}

impl Noise {
    /// Noise: the longest prefix of `p` among the ignored and the traced prefixes is an
    /// ignored one (/dev/null is noise, /dev/shm/x is not, nor is a workspace under /dev;
    /// the cache directory inside the workspace is).
    pub fn ignored(&self, p: &Path) -> bool {
        let longest = |list: &[PathBuf]| {
            list.iter()
                .filter(|prefix| p.starts_with(prefix))
                .map(|prefix| prefix.components().count())
                .max()
        };
        match longest(&self.ignore) {
            None => false,
            Some(ignored) => longest(&self.traced).is_none_or(|traced| traced < ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(ignore: &[&str], traced: &[&str]) -> Noise {
        Noise {
            ignore: ignore.iter().map(PathBuf::from).collect(),
            traced: traced.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn the_longest_prefix_decides() {
        let n = noise(
            &["/proc", "/dev", "/ws/.git/idem-cache"],
            &["/dev/shm", "/ws"],
        );
        for p in ["/proc/1/status", "/dev/null", "/ws/.git/idem-cache/db"] {
            assert!(n.ignored(Path::new(p)), "{p} is noise");
        }
        for p in [
            "/dev/shm/cfg",
            "/ws/a.c",
            "/ws/.git/HEAD",
            "/usr/lib/x",
            "/devx",
        ] {
            assert!(!n.ignored(Path::new(p)), "{p} is traced");
        }
    }

    #[test]
    fn a_workspace_inside_an_ignored_prefix_is_traced() {
        // The cache directory holds the workspace; a cache under /dev/shm stays ignored.
        let n = noise(&["/dev", "/c", "/dev/shm/c"], &["/dev/shm", "/c/ws"]);
        assert!(!n.ignored(Path::new("/c/ws/in.txt")));
        assert!(n.ignored(Path::new("/c/other")));
        assert!(n.ignored(Path::new("/dev/shm/c/db")));
        assert!(!n.ignored(Path::new("/dev/shm/x")));
    }
}
