//! Real servers for the tests, each on a free loopback port in a temporary directory and
//! killed on drop: redis-server (one node, or a 3-node cluster), nginx with a given
//! `server {}` body (static files, WebDAV, https), and a throwaway CA for 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, require_binary, stdout, wait_until};

/// A child server process, killed (and reaped) on drop.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn server");
        Proc { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One RESP command over a raw socket (readiness probes only).
pub fn resp(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub struct Redis {
    pub procs: Vec<Proc>,
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a node on a free port and waits until *that process* answers. A free port
    /// can be taken between `free_port` and the bind (or, in a cluster, its bus port
    /// +10000 can be busy): the server then exits, and the node is retried on another
    /// port instead of waiting for a PING that will never come.
    fn spawn_node(dir: &Path, extra: impl Fn(u16) -> Vec<String>) -> (Proc, u16) {
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir)
                .args(extra(port));
            let mut p = Proc::spawn(&mut cmd, dir.join(format!("redis-{port}.log")));
            let pid = format!("process_id:{}\r\n", p.pid());
            let mut exited = false;
            wait_until(
                Duration::from_secs(20),
                "redis-server to answer on its port",
                || {
                    exited = p.child.try_wait().ok().flatten().is_some();
                    exited || resp(port, &["INFO", "server"]).is_some_and(|r| r.contains(&pid))
                },
            );
            if !exited {
                return (p, port);
            }
            eprintln!("redis-server on {port} exited, retrying: {}", p.log());
        }
        panic!("redis-server failed to start on five free ports");
    }

    /// A single redis-server; `None` (test skipped) when it is not installed.
    pub fn start() -> Option<Redis> {
        require_binary("redis-server")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let (p, port) = Self::spawn_node(dir.path(), |_| Vec::new());
        Some(Redis {
            procs: vec![p],
            ports: vec![port],
            _dir: dir,
        })
    }

    /// Three masters, slots spread by `redis-cli --cluster create`.
    pub fn start_cluster() -> Option<Redis> {
        require_binary("redis-server")?;
        require_binary("redis-cli")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut procs = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let (p, port) = Self::spawn_node(dir.path(), |port| {
                let conf = dir.path().join(format!("nodes-{port}.conf"));
                vec![
                    "--cluster-enabled".to_string(),
                    "yes".to_string(),
                    "--cluster-config-file".to_string(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".to_string(),
                    "5000".to_string(),
                ]
            });
            procs.push(p);
            ports.push(port);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            stdout(&out)
        );
        for &p in &ports {
            wait_until(Duration::from_secs(30), "cluster_state:ok", || {
                resp(p, &["CLUSTER", "INFO"]).is_some_and(|r| r.contains("cluster_state:ok"))
            });
        }
        Some(Redis {
            procs,
            ports,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.ports[0])
    }

    pub fn cluster_url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }

    pub fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.client())
            .expect("KEYS")
    }

    pub fn dbsize(&self) -> i64 {
        redis::cmd("DBSIZE")
            .query(&mut self.client())
            .expect("DBSIZE")
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.client())
            .expect("GET")
    }

    pub fn set(&self, key: &str, v: &[u8]) {
        redis::cmd("SET")
            .arg(key)
            .arg(v)
            .query::<()>(&mut self.client())
            .expect("SET")
    }

    /// The one record key on the server.
    pub fn record_key(&self) -> String {
        let keys = self.keys("idem:v1:rec:*");
        assert_eq!(keys.len(), 1, "expected one remote record, got {keys:?}");
        keys[0].clone()
    }
}

/// nginx serving `{dir}/www`, with `locations` (directives inside `server {}`) and, with
/// `tls` = (certificate chain, key), https.
pub struct Nginx {
    _proc: Proc,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub scheme: &'static str,
}

impl Nginx {
    pub fn start(locations: &str, tls: Option<(&Path, &Path)>) -> Option<Nginx> {
        let bin = require_binary("nginx")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("www")).expect("mkdir www");
        let port = free_port();
        let listen = match tls {
            Some((cert, key)) => format!(
                "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                cert.display(),
                key.display()
            ),
            None => format!("listen 127.0.0.1:{port};"),
        };
        // Root needs `user root;`: nginx would otherwise switch to nobody and lose the
        // temp dir.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let conf = format!(
            r#"{user}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    {listen}
    root {d}/www;
    client_max_body_size 0;
    {locations}
  }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"));
        let p = Proc::spawn(&mut cmd, dir.path().join("nginx.out"));
        wait_until(
            Duration::from_secs(20),
            "nginx to accept connections",
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Some(Nginx {
            _proc: p,
            port,
            dir,
            scheme: if tls.is_some() { "https" } else { "http" },
        })
    }

    /// `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// A file under the served root.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join("www").join(rel)
    }

    /// The entries of a served directory.
    pub fn files(&self, sub: &str) -> Vec<PathBuf> {
        std::fs::read_dir(self.file(sub))
            .map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// A throwaway CA in `dir` and a leaf certificate it signed for IP 127.0.0.1:
/// (ca.pem, leaf.pem, leaf.key). `None` (test skipped) without openssl.
pub fn make_ca(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let openssl = require_binary("openssl")?;
    let run = |args: &[&str]| {
        let o = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=idem test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    Some((
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    ))
}
