//! Traced runs whose outcome the tracer cannot know, so they run every time and are never
//! recorded: a UDP receiver or a TCP server (the network sends in after `bind` or
//! `listen`), a file opened by handle
//! (`open_by_handle_at`, no path). One warning each, with the reason under `-v`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Stdio;

use super::*;
use crate::common::{assert_miss, is_hit, record_count, Ws};

/// A receiver (the Python `script`) prints `ready PORT`, then what `send` delivers to
/// PORT: run twice, both run, nothing recorded (a replay would print the first message
/// forever); the reason is shown under `-v`.
fn receiver_runs_warned_and_unrecorded(script: &str, send: impl Fn(u16, &str)) {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    for round in 0..2 {
        let message = format!("message {round}");
        let mut child = ws
            .idem(&[
                "run",
                "--trace",
                "-v",
                "--",
                py.to_str().unwrap(),
                "-S",
                "-c",
                script,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn idem");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        out.read_line(&mut ready)
            .expect("read the receiver's ready line");
        let port: u16 = ready
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("round {round}: expected 'ready PORT', got {ready:?}"));
        send(port, &message);
        let mut rest = String::new();
        out.read_to_string(&mut rest)
            .expect("read the receiver's output");
        let o = child.wait_with_output().expect("wait for idem");
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        assert_eq!(rest, format!("{message}\n"), "round {round}: replayed?");
        assert!(
            !is_hit(&o),
            "round {round}: a network receiver was replayed"
        );
        assert_miss(&o);
        assert!(
            stderr(&o).contains("bound an inet socket (AF_INET)"),
            "round {round}: the reason is shown under -v: {}",
            stderr(&o)
        );
        assert_eq!(warnings(&o).len(), 1, "round {round}: {}", stderr(&o));
    }
    assert_eq!(record_count(&ws), 0, "nothing may be recorded");
}

/// A UDP receiver bound on loopback, fed one datagram by the test.
#[test]
fn a_udp_receiver_runs_warned_and_unrecorded() {
    let script = "import socket\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.bind(('127.0.0.1', 0))\n\
                  print('ready', s.getsockname()[1], flush=True)\n\
                  print(s.recvfrom(100)[0].decode(), flush=True)\n";
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP sender");
    receiver_runs_warned_and_unrecorded(script, |port, message| {
        sender
            .send_to(message.as_bytes(), ("127.0.0.1", port))
            .expect("send the datagram");
    });
}

/// A TCP server that listens without binding (the kernel picks the port), fed one
/// connection by the test.
#[test]
fn a_tcp_server_listening_unbound_runs_warned_and_unrecorded() {
    let script = "import socket\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n\
                  s.listen()\n\
                  print('ready', s.getsockname()[1], flush=True)\n\
                  c, _ = s.accept()\n\
                  print(c.makefile().read(), flush=True)\n";
    receiver_runs_warned_and_unrecorded(script, |port, message| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        c.write_all(message.as_bytes()).expect("send the message");
    });
}

const BY_HANDLE: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
    h->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, argv[1], h, &mount_id, 0) != 0) { perror("name_to_handle_at"); return 3; }
    int mount_fd = open(".", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mount_fd, h, O_RDONLY);
    if (fd < 0) { perror("open_by_handle_at"); return 4; }
    char buf[100];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, n, stdout);
    return 0;
}
"#;

/// A file read through open_by_handle_at (needs CAP_DAC_READ_SEARCH): an edit must never
/// be replayed over, so the run is never recorded.
#[test]
fn a_file_opened_by_handle_runs_warned_and_unrecorded() {
    let Some(gcc) = gcc() else { return };
    let bin = tempfile::tempdir().expect("tempdir");
    let exe = compile_c(&gcc, bin.path(), "by_handle", BY_HANDLE, &[]);
    let ws = Ws::new();
    // Can this machine open by handle at all (root, a file system with handles)?
    ws.write("in.txt", "W0\n");
    let probe = std::process::Command::new(&exe)
        .arg("in.txt")
        .current_dir(ws.root())
        .output()
        .expect("run by_handle");
    if !probe.status.success() {
        // A kernel or file-system limit (no CAP_DAC_READ_SEARCH in a container, overlayfs
        // without file handles), not a package .ci/run could install: skipped even in CI.
        eprintln!("skipping: open_by_handle_at fails here: {}", stderr(&probe));
        return;
    }
    let cmd = ["--", exe.to_str().unwrap(), "in.txt"];
    for content in ["W1\n", "W2\n"] {
        ws.write("in.txt", content);
        let (o, out) = traced_ok(&ws, &cmd);
        assert_eq!(out, content, "an edit was replayed over");
        assert_miss(&o);
        assert!(
            stderr(&o).contains("opened a file by handle"),
            "the reason is shown under -v: {}",
            stderr(&o)
        );
        assert_eq!(warnings(&o).len(), 1, "{}", stderr(&o));
    }
    assert_eq!(record_count(&ws), 0, "nothing may be recorded");
}
