//! `idem clear`: deletes every record, execution key, stat cache and blob (counters are
//! kept; `idem stats --zero` resets them). Asks first unless `--yes`; with no terminal
//! to ask on it refuses (exit 2) and never deletes without that answer.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use crate::cli::ClearArgs;
use crate::store::gc;
use crate::store::{self, Cache};
use crate::ui::progress::Mode as Progress;

/// Entry point of `idem clear`.
pub fn run(args: &ClearArgs) -> Result<i32> {
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let ask = !args.yes;
    // Nobody to ask (a script, a pipe, `echo n |`): deleting anyway would make the
    // question a formality; `--yes` says it on purpose. Before opening anything.
    if ask && !std::io::stdin().is_terminal() {
        return Err(crate::exit::usage(
            "clear: refusing to delete the cache without --yes (no terminal to ask)",
        ));
    }
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    if ask {
        let size = cache.db.cache_size()?;
        eprint!(
            "idem: delete all {} record(s) and {} of blobs in {}? [y/N] ",
            size.records,
            crate::ui::units::size(size.blob_bytes),
            dir.display()
        );
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            crate::ui::note("nothing deleted");
            return Ok(1);
        }
    }
    let records = cache.db.clear_all().context("cannot delete the records")?;
    let files = gc::blob_files(&cache)?;
    let (blobs, bytes) = gc::sweep(&mut cache, files, Progress::Never)?;
    println!(
        "deleted {records} record(s) and {blobs} blob(s) ({})",
        crate::ui::units::size(bytes)
    );
    Ok(0)
}
