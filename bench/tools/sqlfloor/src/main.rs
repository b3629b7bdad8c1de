// The least a SQLite-backed hit can do: open the cache database, one indexed lookup of
// the record by (task_key, state_key), close. No argument parsing, no stat, no write.
use rusqlite::{Connection, OpenFlags, OptionalExtension};
fn main() {
    let dir = std::env::args().nth(1).expect("cache dir");
    let conn = Connection::open_with_flags(format!("{dir}/idem.db"), OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX).unwrap();
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT id, data FROM records WHERE task_key=?1 AND state_key=?2", [&[0u8; 32][..], &[0u8; 32][..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .unwrap();
    std::process::exit(if row.is_some() { 1 } else { 0 });
}
