//! Traced runs that must run but never record: a network client (its outcome depends on
//! a remote state idem cannot see) and a machine where ptrace is refused (nothing was
//! traced, so nothing is known). One warning each, the command's outcome untouched.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;

use super::*;
use crate::common::{assert_miss, is_hit, record_count, Ws};

/// A client connecting to a listener on loopback: run (the listener sees it), warned,
/// not recorded, so the next identical call runs again.
#[test]
fn a_network_client_runs_warned_and_unrecorded() {
    let Some(py) = python() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let ws = Ws::new();
    ws.write("request.txt", "hello\n");
    let script = format!(
        "import socket\n\
         s = socket.create_connection(('127.0.0.1', {port}))\n\
         s.sendall(open('request.txt', 'rb').read())\n\
         s.close()\n\
         print('sent')\n"
    );
    let cmd = ["--", py.to_str().unwrap(), "-S", "-c", &script];
    for round in 0..2 {
        let (o, out) = traced_ok(&ws, &cmd);
        assert_eq!(out, "sent\n");
        assert!(!is_hit(&o), "round {round}: a network client was replayed");
        assert_miss(&o);
        assert_eq!(
            warnings(&o).len(),
            1,
            "round {round}: exactly one warning expected; stderr:\n{}",
            stderr(&o)
        );
        // The command really ran: its connection is waiting in the listener's backlog.
        let (mut conn, _) = listener
            .accept()
            .unwrap_or_else(|e| panic!("round {round}: no connection arrived: {e}"));
        conn.set_nonblocking(false).unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut conn, &mut got).unwrap();
        assert_eq!(got, "hello\n");
    }
    assert_eq!(record_count(&ws), 0, "nothing may be recorded");
}

/// idem itself under a seccomp policy that fails ptrace with EPERM (what a container's
/// default profile does): the command runs untraced, one warning, no record.
#[test]
fn ptrace_refused_runs_warned_and_unrecorded() {
    let ws = Ws::new();
    ws.write("data.txt", "v1\n");
    for round in 0..2 {
        let mut c = ws.idem(&["run", "--trace", "-v", "--", "sh", "-c", "cat data.txt"]);
        // SAFETY: prctl and seccomp are async-signal-safe syscalls on a prepared program.
        unsafe {
            c.pre_exec(crate::trace_support::deny_ptrace);
        }
        let o = c.output().expect("spawn idem");
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        assert_eq!(stdout(&o), "v1\n", "round {round}: the command must run");
        assert!(!is_hit(&o), "round {round}: replayed without a trace");
        let w = warnings(&o);
        assert_eq!(w.len(), 1, "round {round}: one warning: {}", stderr(&o));
        assert!(
            w[0].contains("trac"),
            "the warning says tracing failed: {}",
            w[0]
        );
    }
    assert_eq!(record_count(&ws), 0, "an untraced run must not be recorded");
}
