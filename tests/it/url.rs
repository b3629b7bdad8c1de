//! URL dependencies against real HTTP servers on loopback: a small in-process server
//! (scriptable validators, statuses, delays, redirects, header checks) and nginx serving
//! a static directory. Never reaches outside 127.0.0.1 (except one `.invalid` lookup).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::servers::{make_ca, Nginx};
use crate::common::{free_port, is_hit, record_count, require_binary, stderr, wait_until, Ws};

// ---------------------------------------------------------------------------------
// A small HTTP/1.1 test server: one thread per connection, `Connection: close`.

#[derive(Clone, Default)]
struct Route {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Latency before the response head (simulates a slow server).
    delay: Duration,
    /// Status for HEAD requests only (e.g. 405).
    head_status: Option<u16>,
    /// Headers the request must carry (name, value), else 401.
    require: Vec<(String, String)>,
    /// For GET: send the response head one byte at a time, this far apart (a server
    /// that answers, but never finishes answering).
    trickle: Option<Duration>,
    /// Send the body in this many pieces, this far apart (a slow download).
    slow_body: Option<(usize, Duration)>,
}

impl Route {
    fn ok(body: &str) -> Self {
        Route {
            status: 200,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    fn redirect(status: u16, location: &str) -> Self {
        Route::ok("").status(status).header("Location", location)
    }
}

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    seen: Vec<Seen>,
}

struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        Server { addr, state, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn route(&self, path: &str, r: Route) {
        self.state.lock().unwrap().routes.insert(path.into(), r);
    }

    fn seen(&self, method: &str, path: &str) -> Vec<Seen> {
        let st = self.state.lock().unwrap();
        st.seen
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let route = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
        });
        st.routes.get(&path).cloned()
    };
    let route = route.unwrap_or_else(|| Route::ok("not found").status(404));
    std::thread::sleep(route.delay); // simulated server latency, not synchronization
    let authorized = route.require.iter().all(|(n, v)| {
        headers
            .iter()
            .any(|(hn, hv)| hn.eq_ignore_ascii_case(n) && hv == v)
    });
    let mut status = if authorized { route.status } else { 401 };
    if method == "HEAD" {
        status = route.head_status.unwrap_or(status);
    }
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (n, v) in &route.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", route.body.len()));
    match route.trickle {
        Some(gap) if method == "GET" => {
            for b in head.as_bytes() {
                out.write_all(std::slice::from_ref(b))?;
                out.flush()?;
                std::thread::sleep(gap); // simulated slowness, not synchronization
            }
        }
        _ => out.write_all(head.as_bytes())?,
    }
    if method != "HEAD" {
        match route.slow_body {
            Some((pieces, gap)) => {
                for piece in route.body.chunks(route.body.len().div_ceil(pieces).max(1)) {
                    out.write_all(piece)?;
                    out.flush()?;
                    std::thread::sleep(gap); // simulated slowness, not synchronization
                }
            }
            None => out.write_all(&route.body)?,
        }
    }
    out.flush()
}

// ---------------------------------------------------------------------------------
// nginx serving a static directory, as a non-daemon child with its own prefix.

/// nginx serving static files, with a redirect chain `/old` → `/moved` → `/data.txt`.
fn static_nginx(tls: Option<(&Path, &Path)>) -> Option<Nginx> {
    Nginx::start(
        "location = /old { return 301 /moved; }\n    location = /moved { return 302 /data.txt; }",
        tls,
    )
}

// ---------------------------------------------------------------------------------
// Helpers.

/// `idem run -v <extra> -- sh -c 'echo x >> count'`.
fn counted(ws: &Ws, extra: &[&str]) -> Output {
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", "echo x >> count"]);
    ws.run(&args)
}

/// Records in the workspace's cache.
fn records(ws: &Ws) -> i64 {
    if !ws.cache.join("idem.db").exists() {
        return 0;
    }
    record_count(ws)
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The run was not a hit, warned once about `url` with `reason`, ran and recorded nothing.
fn assert_unknown(ws: &Ws, o: &Output, url: &str, reason: &str, runs_before: usize) {
    let err = stderr(o);
    assert!(o.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains(url), "{err}");
    assert!(
        warnings[0].contains(reason),
        "expected '{reason}' in: {err}"
    );
    assert_eq!(
        ws.count("count"),
        runs_before + 1,
        "the command must run: {err}"
    );
    assert_eq!(records(ws), 0, "nothing may be recorded: {err}");
}

// ---------------------------------------------------------------------------------
// Validators.

#[test]
fn etag_unchanged_hits_and_changed_misses() {
    let srv = Server::start();
    srv.route("/a", Route::ok("v1").header("ETag", "\"abc\""));
    let ws = Ws::new();
    let url = srv.url("/a");
    let o = counted(&ws, &["-u", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
    let o = counted(&ws, &["-u", &url]);
    assert!(is_hit(&o), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
    // HEAD only: the body was never downloaded.
    assert!(srv.seen("GET", "/a").is_empty());
    let head = &srv.seen("HEAD", "/a")[0];
    assert!(
        head.headers
            .contains(&("accept-encoding".into(), "identity".into())),
        "{head:?}"
    );
    assert_eq!(srv.seen("HEAD", "/a").len(), 2);

    srv.route("/a", Route::ok("v2").header("ETag", "\"def\""));
    let o = counted(&ws, &["-u", &url]);
    assert_eq!(ws.count("count"), 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("url {url} changed: etag \"abc\" → \"def\"")),
        "{err}"
    );
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn last_modified_with_length_is_a_validator() {
    let srv = Server::start();
    let lm = "Tue, 15 Nov 1994 12:45:26 GMT";
    srv.route("/lm", Route::ok("abc").header("Last-Modified", lm));
    let ws = Ws::new();
    let url = srv.url("/lm");
    counted(&ws, &["-u", &url]);
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert!(
        srv.seen("GET", "/lm").is_empty(),
        "Last-Modified + length needs no body"
    );
    // Same date, other length: changed.
    srv.route("/lm", Route::ok("abcd").header("Last-Modified", lm));
    let o = counted(&ws, &["-u", &url]);
    assert!(stderr(&o).contains("length 3 → 4"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn weak_etag_counts_only_with_last_modified() {
    let srv = Server::start();
    let lm = "Tue, 15 Nov 1994 12:45:26 GMT";
    srv.route("/weak", Route::ok("one").header("ETag", "W/\"w1\""));
    srv.route(
        "/weaklm",
        Route::ok("one")
            .header("ETag", "W/\"w1\"")
            .header("Last-Modified", lm),
    );
    let ws = Ws::new();
    // Weak ETag alone: the body is hashed.
    let url = srv.url("/weak");
    counted(&ws, &["-u", &url]);
    assert_eq!(srv.seen("GET", "/weak").len(), 1);
    srv.route("/weak", Route::ok("two").header("ETag", "W/\"w1\""));
    let o = counted(&ws, &["-u", &url]);
    assert!(
        stderr(&o).contains("idem: miss"),
        "same weak ETag, new body: {}",
        stderr(&o)
    );
    assert_eq!(ws.count("count"), 2);
    // Weak ETag with Last-Modified: a validator, no body.
    let url = srv.url("/weaklm");
    counted(&ws, &["-u", &url]);
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert!(srv.seen("GET", "/weaklm").is_empty());
    srv.route(
        "/weaklm",
        Route::ok("one")
            .header("ETag", "W/\"w2\"")
            .header("Last-Modified", lm),
    );
    let o = counted(&ws, &["-u", &url]);
    assert!(
        stderr(&o).contains("etag W/\"w1\" → W/\"w2\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn server_without_validators_gets_its_body_hashed() {
    let srv = Server::start();
    srv.route("/plain", Route::ok("body one"));
    let ws = Ws::new();
    let url = srv.url("/plain");
    counted(&ws, &["-u", &url]);
    assert_eq!(ws.count("count"), 1);
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(
        srv.seen("GET", "/plain").len(),
        2,
        "each check hashes the body"
    );
    // Same length, other bytes: a miss.
    srv.route("/plain", Route::ok("body two"));
    let o = counted(&ws, &["-u", &url]);
    assert!(
        stderr(&o).contains(&format!("url {url} changed: body ")),
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn url_content_hashes_the_body_even_with_an_etag() {
    let srv = Server::start();
    srv.route("/c", Route::ok("first").header("ETag", "\"same\""));
    let ws = Ws::new();
    let url = srv.url("/c");
    counted(&ws, &["--url-content", &url]);
    assert!(srv.seen("HEAD", "/c").is_empty());
    assert!(is_hit(&counted(&ws, &["--url-content", &url])));
    srv.route("/c", Route::ok("other").header("ETag", "\"same\""));
    counted(&ws, &["--url-content", &url]);
    assert_eq!(ws.count("count"), 2, "the ETag lied; the body hash did not");

    // The same URL through -u and --url-content is one input, checked once, by body.
    let ws = Ws::new();
    let gets = srv.seen("GET", "/c").len();
    counted(&ws, &["-u", &url, "--url-content", &url]);
    assert_eq!(srv.seen("GET", "/c").len(), gets + 1);
    assert!(srv.seen("HEAD", "/c").is_empty());
    assert_eq!(records(&ws), 1);
}

#[test]
fn head_not_allowed_falls_back_to_get() {
    let srv = Server::start();
    let mut r = Route::ok("x").header("ETag", "\"e\"");
    r.head_status = Some(405);
    srv.route("/nohead", r);
    let ws = Ws::new();
    let url = srv.url("/nohead");
    let o = counted(&ws, &["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(srv.seen("GET", "/nohead").len(), 2);
}

// ---------------------------------------------------------------------------------
// Unknown states: run, warn once, do not record.

#[test]
fn http_404_and_500_warn_run_and_do_not_record() {
    let srv = Server::start();
    let ws = Ws::new();
    let url = srv.url("/missing");
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "HTTP 404", 0);
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "HTTP 404", 1);

    srv.route("/err", Route::ok("").status(503));
    let url = srv.url("/err");
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "HTTP 503", 2);
}

#[test]
fn connection_refused_warns_runs_and_does_not_record() {
    let port = free_port(); // bound then released: nothing listens there now
    let url = format!("http://127.0.0.1:{port}/x");
    let ws = Ws::new();
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "connection refused", 0);
}

#[test]
fn dns_failure_warns_runs_and_does_not_record() {
    // `.invalid` never resolves (RFC 6761); offline resolvers may time out instead.
    let url = "http://idem-test.invalid/x";
    let ws = Ws::new();
    let t = Instant::now();
    let o = counted(&ws, &["--url-timeout", "2s", "-u", url]);
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    let err = stderr(&o);
    assert!(err.contains("DNS") || err.contains("timed out"), "{err}");
    assert_unknown(&ws, &o, url, "", 0);
}

#[test]
fn server_slower_than_the_timeout_is_unknown_and_bounded() {
    let srv = Server::start();
    srv.route(
        "/slow",
        Route::ok("x")
            .header("ETag", "\"s\"")
            .delay(Duration::from_secs(20)),
    );
    let ws = Ws::new();
    let url = srv.url("/slow");
    let t = Instant::now();
    let o = counted(&ws, &["--url-timeout", "1s", "-u", &url]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_unknown(&ws, &o, &url, "timed out after 1s", 0);
}

#[test]
fn a_response_head_that_never_ends_is_cut_off_at_the_timeout() {
    // Each byte arrives well within the read timeout, so only the overall deadline
    // (the watchdog) can stop this GET.
    let srv = Server::start();
    let mut r = Route::ok("no validators, so a GET");
    r.trickle = Some(Duration::from_millis(300));
    srv.route("/trickle", r);
    let ws = Ws::new();
    let url = srv.url("/trickle");
    let t = Instant::now();
    let o = counted(&ws, &["--url-timeout", "1s", "-u", &url]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_unknown(&ws, &o, &url, "timed out after 1s", 0);
}

#[test]
fn server_slower_than_usual_but_within_the_timeout_is_fine() {
    let srv = Server::start();
    srv.route(
        "/s",
        Route::ok("x")
            .header("ETag", "\"s\"")
            .delay(Duration::from_millis(400)),
    );
    srv.route(
        "/b",
        Route::ok("no validators").delay(Duration::from_millis(400)),
    );
    let ws = Ws::new();
    let (a, b) = (srv.url("/s"), srv.url("/b"));
    let o = counted(&ws, &["--url-timeout", "3s", "-u", &a, "-u", &b]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(records(&ws), 1);
    assert!(is_hit(&counted(
        &ws,
        &["--url-timeout", "3s", "-u", &a, "-u", &b]
    )));
}

#[test]
fn ten_slow_urls_are_checked_concurrently() {
    let srv = Server::start();
    let mut args: Vec<String> = vec!["--url-timeout".into(), "3s".into()];
    for i in 0..10 {
        let path = format!("/slow{i}");
        srv.route(
            &path,
            Route::ok("x")
                .header("ETag", &format!("\"{i}\""))
                .delay(Duration::from_secs(1)),
        );
        args.push("-u".into());
        args.push(srv.url(&path));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ws = Ws::new();
    let t = Instant::now();
    let o = counted(&ws, &args);
    let took = t.elapsed();
    eprintln!("ten 1 s URLs took {took:?}");
    // Sequential checks would take ≥ 10 s; concurrent ones about 1 s.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(records(&ws), 1);
    assert!(is_hit(&counted(&ws, &args)));
}

// ---------------------------------------------------------------------------------
// Redirects and headers.

#[test]
fn redirect_chain_is_followed_and_bounded() {
    let srv = Server::start();
    srv.route("/r1", Route::redirect(301, "/r2"));
    srv.route("/r2", Route::redirect(302, &srv.url("/r3")));
    srv.route("/r3", Route::redirect(307, "final"));
    srv.route("/final", Route::ok("f").header("ETag", "\"f1\""));
    let ws = Ws::new();
    let url = srv.url("/r1");
    let o = counted(&ws, &["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    srv.route("/final", Route::ok("f").header("ETag", "\"f2\""));
    let o = counted(&ws, &["-u", &url]);
    assert!(
        stderr(&o).contains("etag \"f1\" → \"f2\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.count("count"), 2);

    // A loop is cut off and is unknown.
    srv.route("/loop", Route::redirect(302, "/loop"));
    let ws = Ws::new();
    let url = srv.url("/loop");
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "too many redirects", 0);
    assert_eq!(
        srv.seen("HEAD", "/loop").len(),
        11,
        "1 request + 10 redirects"
    );
}

#[test]
fn private_headers_stay_on_their_origin() {
    let a = Server::start();
    let b = Server::start();
    a.route("/same", Route::redirect(302, "/here"));
    a.route("/here", Route::ok("h").header("ETag", "\"h\""));
    a.route("/away", Route::redirect(302, &b.url("/there")));
    b.route("/there", Route::ok("t").header("ETag", "\"t\""));
    let ws = Ws::new();
    let o = counted(
        &ws,
        &[
            "--url-header",
            "X-Token: tok-123",
            "-u",
            &a.url("/same"),
            "-u",
            &a.url("/away"),
        ],
    );
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let has = |s: &Seen| {
        s.headers
            .iter()
            .any(|(n, v)| n == "x-token" && v == "tok-123")
    };
    assert!(a.seen("HEAD", "/same").iter().all(has));
    assert!(
        a.seen("HEAD", "/here").iter().all(has),
        "same origin keeps the header"
    );
    assert!(a.seen("HEAD", "/away").iter().all(has));
    let there = b.seen("HEAD", "/there");
    assert_eq!(there.len(), 1);
    assert!(
        !there.iter().any(has),
        "another origin must not get the header"
    );
}

#[test]
fn header_values_are_sent_but_never_stored_or_printed() {
    let srv = Server::start();
    let mut r = Route::ok("private").header("ETag", "\"p1\"");
    r.require = vec![
        ("X-Secret".into(), "flag-header-value-7f3a".into()),
        (
            "Authorization".into(),
            "Bearer env-header-value-91c2".into(),
        ),
    ];
    srv.route("/private", r);
    let ws = Ws::new();
    let url = srv.url("/private");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "-v",
            "--url-header",
            "X-Secret: flag-header-value-7f3a",
            "-u",
            &url,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", "echo x >> count"]);
        let mut full = vec!["run"];
        full.extend_from_slice(&args);
        ws.idem(&full)
            .env(
                "IDEM_URL_HEADER_1",
                "Authorization: Bearer env-header-value-91c2",
            )
            .output()
            .expect("spawn idem")
    };
    let o1 = run(&[]);
    // Both headers reached the server, or it would have answered 401 (→ warning).
    assert!(!stderr(&o1).contains("warning"), "{}", stderr(&o1));
    assert_eq!(records(&ws), 1);
    let o2 = run(&[]);
    assert!(is_hit(&o2));
    // Changed state, so -v prints the URL diff; still no value in it.
    srv.state
        .lock()
        .unwrap()
        .routes
        .get_mut("/private")
        .unwrap()
        .headers = vec![("ETag".into(), "\"p2\"".into())];
    let o3 = run(&[]);
    assert!(
        stderr(&o3).contains("etag \"p1\" → \"p2\""),
        "{}",
        stderr(&o3)
    );
    // Without the env header: 401, and the warning does not leak the flag header.
    let o4 = ws.run(&[
        "--url-header",
        "X-Secret: flag-header-value-7f3a",
        "-u",
        &url,
        "--",
        "true",
    ]);
    assert!(stderr(&o4).contains("HTTP 401"), "{}", stderr(&o4));

    let mut files = Vec::new();
    all_files(&ws.cache, &mut files);
    assert!(files.iter().any(|f| f.ends_with("idem.db")), "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for secret in ["flag-header-value-7f3a", "env-header-value-91c2"] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} found in {}",
                f.display()
            );
        }
    }
    for o in [&o1, &o2, &o3, &o4] {
        for stream in [&o.stdout, &o.stderr] {
            assert!(
                !contains(stream, b"header-value"),
                "{}",
                String::from_utf8_lossy(stream)
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Offline mode.

#[test]
fn url_offline_hit_trusts_the_last_state_only_when_asked() {
    let ws = Ws::new();
    ws.write("in.txt", "1");
    let url;
    {
        let srv = Server::start();
        srv.route("/o", Route::ok("o").header("ETag", "\"o1\""));
        url = srv.url("/o");
        counted(&ws, &["-f", "in.txt", "-u", &url]);
        assert_eq!(records(&ws), 1);
    } // server gone: connection refused from now on
    let o = counted(&ws, &["--url-offline=hit", "-f", "in.txt", "-u", &url]);
    let err = stderr(&o);
    assert!(is_hit(&o), "{err}");
    assert!(
        err.contains("trusting its last recorded state etag:\"o1\" (--url-offline=hit)"),
        "{err}"
    );
    assert_eq!(ws.count("count"), 1);
    // Default: run, unrecorded.
    let o = counted(&ws, &["-f", "in.txt", "-u", &url]);
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    assert_eq!(records(&ws), 1);
    // Trusted URL state but another input changed: runs, still not recorded.
    ws.write("in.txt", "22");
    let o = counted(&ws, &["--url-offline=hit", "-f", "in.txt", "-u", &url]);
    assert!(stderr(&o).contains("trusting"), "{}", stderr(&o));
    assert!(stderr(&o).contains("file in.txt changed"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 3);
    assert_eq!(records(&ws), 1);
    // Nothing recorded to trust (a new task): runs, not recorded.
    let o = counted(&ws, &["--url-offline=hit", "-u", &url]);
    assert!(
        stderr(&o).contains("no recorded state to trust"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.count("count"), 4);
    assert_eq!(records(&ws), 1);
}

#[test]
fn url_offline_hit_does_not_paper_over_a_404() {
    let srv = Server::start();
    srv.route("/g", Route::ok("g").header("ETag", "\"g\""));
    let ws = Ws::new();
    let url = srv.url("/g");
    counted(&ws, &["-u", &url]);
    srv.route("/g", Route::ok("").status(404));
    let o = counted(&ws, &["--url-offline=hit", "-u", &url]);
    assert!(!is_hit(&o), "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP 404"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    assert_eq!(records(&ws), 1);
}

// ---------------------------------------------------------------------------------
// file:// and usage errors.

#[test]
fn file_urls_are_hashed_like_files() {
    let ws = Ws::new();
    let other = tempfile::tempdir().unwrap();
    let data = other.path().join("data.csv");
    std::fs::write(&data, "a,b\n").unwrap();
    let url = format!("file://{}", data.display());
    counted(&ws, &["-u", &url]);
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    std::fs::write(&data, "a,c\n").unwrap();
    let o = counted(&ws, &["-u", &url]);
    assert!(stderr(&o).contains("changed: blake3 "), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    std::fs::remove_file(&data).unwrap();
    let o = counted(&ws, &["-u", &url]);
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 3);
}

#[test]
fn malformed_urls_and_other_schemes_are_usage_errors() {
    let ws = Ws::new();
    for bad in [
        "not a url",
        "example.com/x",
        "http://",
        "ftp://example.com/x",
        "file://elsewhere/etc/hosts",
    ] {
        let o = counted(&ws, &["-u", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("invalid URL"), "{bad}: {}", stderr(&o));
        let o = counted(&ws, &["--url-content", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
    }
    let o = counted(&ws, &["-u", "https://me:hunter2@example.com/"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let o = counted(&ws, &["--url-timeout", "0s", "-u", "http://127.0.0.1:9/"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = counted(
        &ws,
        &["--url-header", "no-colon", "-u", "http://127.0.0.1:9/"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(ws.count("count"), 0, "nothing runs on a usage error");
}

// ---------------------------------------------------------------------------------
// nginx: a real static server with its own ETag and Last-Modified.

#[test]
fn nginx_static_file_etag() {
    let Some(ng) = static_nginx(None) else { return };
    std::fs::write(ng.file("data.txt"), "version one\n").unwrap();
    let ws = Ws::new();
    let url = ng.url("/data.txt");
    let o = counted(&ws, &["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(ws.count("count"), 1);
    // nginx's ETag is mtime-size; another size changes it even within the same second.
    std::fs::write(ng.file("data.txt"), "version two, longer\n").unwrap();
    let o = counted(&ws, &["-u", &url]);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("url {url} changed: etag \"")),
        "{err}"
    );
    assert_eq!(ws.count("count"), 2);
    assert!(is_hit(&counted(&ws, &["-u", &url])));

    // Redirect chain through nginx (301 → 302 → file).
    let old = ng.url("/old");
    counted(&ws, &["-u", &old]);
    assert_eq!(ws.count("count"), 3);
    assert!(is_hit(&counted(&ws, &["-u", &old])));

    // --url-content hashes what nginx serves.
    let o = counted(&ws, &["--url-content", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(is_hit(&counted(&ws, &["--url-content", &url])));
}

#[test]
fn nginx_404_is_unknown() {
    let Some(ng) = static_nginx(None) else { return };
    let ws = Ws::new();
    let url = ng.url("/nope.txt");
    let o = counted(&ws, &["-u", &url]);
    assert_unknown(&ws, &o, &url, "HTTP 404 Not Found", 0);
}

#[test]
fn https_uses_the_system_trust_store() {
    let certs = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = make_ca(certs.path()) else {
        return;
    };
    let Some(ng) = static_nginx(Some((&cert, &key))) else {
        return;
    };
    std::fs::write(ng.file("data.txt"), "secure one\n").unwrap();
    let url = ng.url("/data.txt");
    assert!(url.starts_with("https://127.0.0.1:"));
    let ws = Ws::new();
    let with_ca = |extra: &[&str]| {
        let mut full = vec!["run", "-v"];
        full.extend_from_slice(extra);
        full.extend_from_slice(&["--", "sh", "-c", "echo x >> count"]);
        // SSL_CERT_FILE is the standard way to point the system store at a bundle.
        ws.idem(&full)
            .env("SSL_CERT_FILE", &ca)
            .output()
            .expect("spawn idem")
    };
    let o = with_ca(&["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(is_hit(&with_ca(&["-u", &url])));
    std::fs::write(ng.file("data.txt"), "secure two, longer\n").unwrap();
    let o = with_ca(&["-u", &url]);
    assert!(stderr(&o).contains("changed: etag"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    // A refused certificate is not an outage: --url-offline=hit does not trust the
    // recorded state over it.
    let o = ws
        .idem(&[
            "run",
            "-v",
            "--url-offline=hit",
            "-u",
            &url,
            "--",
            "sh",
            "-c",
            "echo x >> count",
        ])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!is_hit(&o) && !err.contains("trusting"), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert_eq!(ws.count("count"), 3);
    // Without the CA (the real system store), the certificate is not trusted: unknown,
    // run, not recorded.
    let ws = Ws::new();
    let o = ws
        .idem(&["run", "-u", &url, "--", "sh", "-c", "echo x >> count"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    assert_unknown(&ws, &o, &url, "certificate", 0);
}

#[test]
fn slow_bodies_show_a_progress_bar_only_on_a_terminal() {
    let srv = Server::start();
    let mut r = Route::ok(&"x".repeat(200_000));
    r.slow_body = Some((20, Duration::from_millis(100))); // about 2 s
    srv.route("/big", r);
    let url = srv.url("/big");
    // Piped stderr: no bar, whatever the duration.
    let ws = Ws::new();
    let o = counted(&ws, &["-u", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("/big ["), "{}", stderr(&o));
    assert_eq!(records(&ws), 1);
    // On a terminal (script(1) gives idem a pty): the bar appears after a second.
    let Some(script) = require_binary("script") else {
        return;
    };
    let ws = Ws::new();
    let line = format!(
        "{} run -u {url} -- sh -c 'echo x >> count'",
        crate::common::idem_bin().display()
    );
    let o = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .env_remove("CI")
        .env_remove("IDEM_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains(&format!("idem: {url} [")), "{tty}");
    assert!(tty.contains("195.31 KiB"), "the bar counts bytes: {tty}");
    assert_eq!(ws.count("count"), 1);
}

// ---------------------------------------------------------------------------------
// Hardening: racy validators and overall deadlines.

#[test]
fn a_last_modified_as_new_as_the_date_is_not_trusted() {
    // "Modified this very second": a later change within that second (same size) would
    // carry the same Last-Modified, so only the body can tell.
    let srv = Server::start();
    let now = "Sun, 06 Nov 1994 08:49:37 GMT";
    let at = |body: &str, date: &str| {
        Route::ok(body)
            .header("Last-Modified", now)
            .header("Date", date)
    };
    let route = |body: &str| at(body, now);
    srv.route("/racy", route("aaaa"));
    let ws = Ws::new();
    let url = srv.url("/racy");
    let o = counted(&ws, &["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(srv.seen("GET", "/racy").len(), 1, "the body decides");
    srv.route("/racy", route("bbbb"));
    let o = counted(&ws, &["-u", &url]);
    assert!(!is_hit(&o), "replayed a stale outcome: {}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    // Unchanged bytes: the body hash replays.
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(ws.count("count"), 2);
    // The same dates two seconds apart are settled: a validator again, no body.
    let gets = srv.seen("GET", "/racy").len();
    srv.route("/racy", at("bbbb", "Sun, 06 Nov 1994 08:49:39 GMT"));
    counted(&ws, &["-u", &url]);
    assert!(is_hit(&counted(&ws, &["-u", &url])));
    assert_eq!(
        srv.seen("GET", "/racy").len(),
        gets,
        "a settled date needs no body"
    );
}

#[test]
fn a_body_that_trickles_is_cut_off_at_the_timeout() {
    // Each byte arrives well within the read timeout: only an overall deadline stops it.
    let srv = Server::start();
    let mut r = Route::ok(&"x".repeat(1000));
    r.slow_body = Some((1000, Duration::from_millis(100))); // 100 s, a byte at a time
    srv.route("/drip", r);
    let ws = Ws::new();
    let url = srv.url("/drip");
    let t = Instant::now();
    let o = counted(&ws, &["--url-timeout", "1s", "--url-content", &url]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_unknown(&ws, &o, &url, "timed out after 1s", 0);
}

#[test]
fn python_http_server_same_size_change_is_seen() {
    // The case from the field: `python3 -m http.server` sends Last-Modified (the file's
    // mtime, in whole seconds) and Content-Length, and a Date.
    let Some(python) = require_binary("python3") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("data.txt"), "aaaa").unwrap();
    let port = free_port();
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(
        Command::new(python)
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    wait_until(
        Duration::from_secs(20),
        "python3 -m http.server to accept connections",
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let ws = Ws::new();
    let url = format!("http://127.0.0.1:{port}/data.txt");
    let o = counted(&ws, &["-u", &url]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    std::fs::write(dir.path().join("data.txt"), "bbbb").unwrap();
    let o = counted(&ws, &["-u", &url]);
    assert!(!is_hit(&o), "replayed a stale outcome: {}", stderr(&o));
    assert_eq!(ws.count("count"), 2, "{}", stderr(&o));
}
