//! `vardr-init health`: the `HEALTHCHECK` probe for images that ship no curl.
//!
//! One HTTP/1.1 GET to the app's own port and one deadline for all of it: name lookup, connect,
//! sending the request, reading the status line and headers. Docker kills a check that overruns
//! its own timeout and records no reason, so the probe gives up first and says why. Healthy is a
//! 2xx status; anything else, including no answer, is unhealthy, exit 1. Never exit 2: Docker
//! reserves it for `HEALTHCHECK`, so even a bad `--url` or `--timeout` is a plain failure.
//!
//! Deliberately only what a probe of a local port needs: plain HTTP (TLS would put a TLS stack in
//! PID 1's binary for no gain), redirects shown but not followed, the body never read (the status
//! answers the question, and a streaming endpoint must not hold the probe). Of the response, the
//! status line, the shape of each header line and `Location` are read; nothing else.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Listen;

/// The probe's deadline when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// More header lines than any health endpoint sends.
const MAX_HEADERS: usize = 100;
/// An hour: far beyond any health check interval, and far from `Instant` overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The status line and headers may not exceed this: a health endpoint that sends more is broken,
/// and the probe must not buffer whatever a confused server streams at it.
const MAX_HEAD: usize = 16 * 1024;
const URL_FORM: &str = "expected http://HOST[:PORT][/PATH], such as http://127.0.0.1:8000/health";

/// What to probe. Built only by [`parse_url`], [`Target::default_for_port`] or
/// [`Target::for_listen`], so every part is printable ASCII without spaces and goes into the
/// request as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As in the URL: a name, an IPv4 address, or an IPv6 address in brackets.
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
    /// A Unix socket to send the request over (`BIND=unix:PATH`), instead of host and port.
    socket: Option<PathBuf>,
}

impl Target {
    /// `http://127.0.0.1:PORT/health`: uvicorn listens on every IPv4 address by default, and the
    /// loopback address needs no name lookup.
    pub fn default_for_port(port: u16) -> Target {
        Target {
            host: "127.0.0.1".to_owned(),
            port,
            path: "/health".to_owned(),
            socket: None,
        }
    }

    /// `/health` where uvicorn listens: a wildcard address (`0.0.0.0`, `::`) is probed on its
    /// loopback, any other host as it is; a Unix socket over the socket.
    pub fn for_listen(listen: &Listen) -> Result<Target, String> {
        let (host, port) = match listen {
            Listen::Unix(path) => {
                let mut target = Target::default_for_port(80);
                target.host = "localhost".to_owned();
                target.socket = Some(path.clone());
                return Ok(target);
            }
            Listen::Tcp { host, port, .. } => (host.as_str(), *port),
        };
        let host = match host {
            "0.0.0.0" | "" => "127.0.0.1",
            "::" | "[::]" => "[::1]",
            host => host,
        };
        let url = match host.contains(':') && !host.starts_with('[') {
            true => format!("http://[{host}]:{port}/health"),
            false => format!("http://{host}:{port}/health"),
        };
        // A host with `/`, `?`, `#` or `@` would change what the URL means: it must come back as
        // this port and path, or it is no host the probe can reach.
        match parse_url(&url) {
            Ok(target) if target.port == port && target.path == "/health" => Ok(target),
            _ => Err(format!(
                "{host:?} is not a host name or IP address the probe can reach"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.socket {
            Some(socket) => write!(f, "{} on unix:{}", self.path, socket.display()),
            None => write!(f, "http://{}:{}{}", self.host, self.port, self.path),
        }
    }
}

/// Parses `--url`: `http://HOST[:PORT][/PATH][?QUERY]`, the port 80 by default. Anything that
/// could smuggle bytes into the request (spaces, CR, LF, other control characters) is refused,
/// not escaped.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let invalid = |why: &str| format!("invalid URL {url:?}: {why}");
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "spaces, control and non-ASCII characters must be percent-encoded (%20)",
        ));
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "{scheme} is not supported: use a plain-HTTP endpoint, such as the app's own port"
            )));
        }
        None => return Err(invalid(URL_FORM)),
    };
    // A fragment is never sent to the server.
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(invalid("user names and passwords are not supported"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // Not the colons inside `[::1]`.
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let name_byte = |b| u8::is_ascii_alphanumeric(&b) || b"-._".contains(&b);
    let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => ip.parse::<Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.bytes().all(name_byte),
    };
    if !valid_host {
        return Err(invalid(&format!(
            "{host:?} is not a host name, an IPv4 address or an IPv6 address in brackets \
             ([::1]): {URL_FORM}"
        )));
    }
    let port = match port {
        None => 80,
        // Digits only: `u16::from_str` would also take a leading `+`.
        Some(port) => port
            .parse()
            .ok()
            .filter(|&n| n != 0 && port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| invalid(&format!("port {port:?} is not a number from 1 to 65535")))?,
    };
    // The path may be empty, or a query straight after the authority.
    let path = format!("/{}", path.strip_prefix('/').unwrap_or(path));
    let host = host.to_owned();
    Ok(Target {
        host,
        port,
        path,
        socket: None,
    })
}

/// Parses `--timeout`: seconds as `N` or `N.F`, more than 0 and at most an hour. Read as decimal
/// digits, not through `f64`, which would also take signs, exponents, `inf` and `nan`.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::config::parse_seconds(text)
        .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
        .ok_or_else(|| {
            format!(
                "invalid timeout {text:?}: expected a number of seconds greater than 0 and at \
                 most 3600, such as 3 or 0.5"
            )
        })
}

/// The status line of the final response. `reason` and `location` come from the server: any byte
/// that is not printable ASCII is shown as `?`, so they cannot forge lines where they are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    /// The `Location` header: the probe does not follow redirects, so it shows where one points
    /// (a FastAPI route declared as `/health/` answers `/health` with a 307).
    pub location: Option<String>,
}

impl Status {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        match &self.location {
            Some(location) if (300..400).contains(&self.code) => {
                write!(f, " to {location} (redirects are not followed)")
            }
            _ => Ok(()),
        }
    }
}

/// What vardr-init, as PID 1 of this container, says by its name (see
/// [`crate::sys::DRAINING_NAME`]): a probe is unhealthy then, whatever the app answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pid1State {
    /// It holds a SIGTERM (`VARDR_STOP_DELAY`).
    Draining,
    /// Its certificate watcher keeps dying ([`crate::sys::TRUST_DOWN_NAME`]).
    TrustDown,
}

pub fn pid1_state() -> Option<Pid1State> {
    match crate::sys::process_name(1)?.as_str() {
        crate::sys::DRAINING_NAME => Some(Pid1State::Draining),
        crate::sys::TRUST_DOWN_NAME => Some(Pid1State::TrustDown),
        _ => None,
    }
}

/// Probes `target` once and prints the verdict: one line on stdout when healthy, on stderr when
/// not. Returns the exit code, 0 or 1.
pub fn run(target: &Target, timeout: Duration) -> u8 {
    let started = Instant::now();
    let result = probe(target, timeout);
    let (healthy, line) = verdict(target, &result, started.elapsed());
    // Errors ignored: `println!` would panic on a closed stdout, an abort in release (exit 134),
    // and the exit code is the answer Docker reads.
    if healthy {
        let _ = writeln!(io::stdout(), "{line}");
        0
    } else {
        let _ = writeln!(io::stderr(), "{line}");
        1
    }
}

fn verdict(target: &Target, result: &Result<Status, String>, elapsed: Duration) -> (bool, String) {
    let ms = elapsed.as_millis();
    match result {
        Ok(status) if status.is_success() => {
            (true, format!("healthy: GET {target} -> {status} ({ms} ms)"))
        }
        Ok(status) => (
            false,
            format!("unhealthy: GET {target}: {status} ({ms} ms)"),
        ),
        Err(why) => (false, format!("unhealthy: GET {target}: {why}")),
    }
}

/// Sends one GET to `target` and returns the final status, or why there is none, within
/// `timeout`.
pub fn probe(target: &Target, timeout: Duration) -> Result<Status, String> {
    let timeout = timeout.min(MAX_TIMEOUT);
    let (sender, receiver) = mpsc::channel();
    let owned = target.clone();
    // The exchange runs on a thread and the probe stops waiting for it at the deadline: one
    // deadline for every step, which getaddrinfo (it takes no timeout; musl's waits out
    // resolv.conf's) or a server trickling bytes cannot stretch. The thread is left behind; the
    // process exits right after the verdict.
    let spawned = thread::Builder::new().spawn(move || {
        let _ = sender.send(exchange(&owned, timeout));
    });
    if spawned.is_err() {
        // No thread to spare (a container's pids limit): each step still has the timeout, and
        // failing a health check for want of a thread would be worse.
        return exchange(target, timeout);
    }
    receiver.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(format!(
            "no answer within {}s",
            crate::events::seconds(timeout)
        ))
    })
}

/// The first of the host's addresses that accepts a connection within `timeout`.
fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, String> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host, target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host name {host}: {e}"))?;
    // Every address in turn (localhost is often ::1 first, and uvicorn listens on IPv4 only).
    let mut failures = Vec::new();
    addrs
        .into_iter()
        .find_map(|addr| {
            let connected = TcpStream::connect_timeout(&addr, timeout);
            connected
                .map_err(|e| failures.push(format!("cannot connect to {addr}: {e}")))
                .ok()
        })
        .ok_or_else(|| failures.join("; "))
}

fn exchange(target: &Target, timeout: Duration) -> Result<Status, String> {
    // One type for both kinds of connection, so the exchange is compiled once.
    let mut stream: std::fs::File = match &target.socket {
        // No per-step timeouts here: the deadline of `probe` bounds the exchange.
        Some(socket) => crate::sys::connect_unix(socket)
            .map_err(|e| format!("cannot connect to unix:{}: {e}", socket.display()))?,
        None => {
            let stream = connect(target, timeout)?;
            // Fails only for a zero timeout, which parse_timeout refuses.
            let _ = stream.set_write_timeout(Some(timeout));
            let _ = stream.set_read_timeout(Some(timeout));
            std::os::fd::OwnedFd::from(stream).into()
        }
    };
    let authority = match target.socket {
        Some(_) => target.host.clone(),
        None => format!("{}:{}", target.host, target.port),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: vardr-init/{}\r\nConnection: close\r\n\r\n",
        target.path,
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("connection failed while sending the request: {e}"))?;
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    // Counts interim responses too, so a stream of 1xx cannot go on forever.
    let mut limited = stream.take(MAX_HEAD as u64);
    loop {
        let read = limited
            .read(&mut chunk)
            .map_err(|e| format!("connection failed while reading the response: {e}"))?;
        head.extend_from_slice(&chunk[..read]);
        if let Some(status) = parse_response(&head)? {
            return Ok(status);
        }
        if read == 0 {
            return Err(match head.len() {
                0 => "connection closed without a response".to_owned(),
                MAX_HEAD => format!("response too large: headers over {} KiB", MAX_HEAD / 1024),
                n => format!("truncated response: connection closed after {n} bytes of headers"),
            });
        }
    }
}

/// Parses the response received so far (httparse): the final status once its headers are
/// complete, `None` while more bytes are needed, or why they are not an HTTP response. Interim
/// responses are skipped.
pub fn parse_response(bytes: &[u8]) -> Result<Option<Status>, String> {
    let mut rest = bytes;
    loop {
        // Refused from the first byte that differs: a server speaking another protocol (SSH,
        // TLS) fails at once, not at the deadline.
        if !b"HTTP/1.".starts_with(&rest[..rest.len().min(7)]) {
            return Err("invalid HTTP response: it does not start with HTTP/1.".to_owned());
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response
            .parse(rest)
            .map_err(|e| format!("invalid HTTP response: {e}"))?;
        let httparse::Status::Complete(length) = parsed else {
            return Ok(None);
        };
        let code = response.code.unwrap_or_default();
        // 1xx other than 101 come before the real response (103 Early Hints) and are skipped,
        // as curl does; 101 ends HTTP on the connection, so it is final.
        if (100..200).contains(&code) && code != 101 {
            rest = &rest[length..];
            continue;
        }
        let location = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("location"))
            .map(|h| printable(h.value.trim_ascii()));
        return Ok(Some(Status {
            code,
            reason: printable(response.reason.unwrap_or_default().as_bytes()),
            location,
        }));
    }
}

/// Text from the server, for a line on a terminal: printable ASCII and spaces as they are, any
/// other byte as `?`.
fn printable(bytes: &[u8]) -> String {
    let shown = |&b: &u8| {
        if b == b' ' || b.is_ascii_graphic() {
            char::from(b)
        } else {
            '?'
        }
    };
    bytes.iter().map(shown).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};

    const QUICK: Duration = Duration::from_millis(300);
    const ENOUGH: Duration = Duration::from_secs(10);

    /// A one-connection server on `ip`. `answer` gets the stream once the request head is read;
    /// the head comes back through the receiver.
    fn serve_on(
        ip: std::net::IpAddr,
        answer: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> io::Result<(u16, mpsc::Receiver<String>)> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))?;
        let port = listener.local_addr()?.port();
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
            answer(&mut stream);
        });
        Ok((port, receiver))
    }

    fn serve(
        answer: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> (Target, mpsc::Receiver<String>) {
        let (port, request) = serve_on(Ipv4Addr::LOCALHOST.into(), answer).expect("a test port");
        (Target::default_for_port(port), request)
    }

    fn answering(bytes: impl AsRef<[u8]> + Send + 'static) -> impl FnOnce(&mut TcpStream) + Send {
        move |stream| {
            let _ = stream.write_all(bytes.as_ref());
        }
    }

    fn probe_answer(bytes: &'static str) -> Result<Status, String> {
        let (target, _) = serve(answering(bytes));
        probe(&target, ENOUGH)
    }

    fn free_port() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a test port");
        listener.local_addr().expect("bound address").port()
    }

    /// What the parser makes of `bytes` received whole, byte by byte and in chunks of 7, which
    /// must agree (the fuzz target checks the same on any input).
    fn parse(bytes: &[u8]) -> Result<Option<Status>, String> {
        let feed = |chunk: usize| {
            let mut end = 0;
            for piece in bytes.chunks(chunk) {
                end += piece.len();
                match parse_response(&bytes[..end]) {
                    Ok(None) => {}
                    other => return other,
                }
            }
            Ok(None)
        };
        let whole = feed(bytes.len().max(1));
        assert_eq!(feed(1), whole, "byte by byte: {bytes:?}");
        assert_eq!(feed(7), whole, "in chunks of 7: {bytes:?}");
        whole
    }

    #[test]
    fn the_probe_goes_where_uvicorn_listens() {
        let tcp = |host: &str, port| Listen::Tcp {
            host: host.to_owned(),
            port,
            host_from: "HOST",
            port_from: "PORT",
        };
        for (host, url) in [
            ("0.0.0.0", "http://127.0.0.1:81/health"),
            ("::", "http://[::1]:81/health"),
            ("::1", "http://[::1]:81/health"),
            ("127.0.0.2", "http://127.0.0.2:81/health"),
            ("app.local", "http://app.local:81/health"),
        ] {
            let target = Target::for_listen(&tcp(host, 81)).expect("a target");
            assert_eq!(target.to_string(), url, "{host}");
        }
        assert!(Target::for_listen(&tcp("a/b", 81)).is_err());
    }

    #[test]
    fn a_unix_socket_is_probed_over_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
            String::from_utf8_lossy(&head).into_owned()
        });
        let target = Target::for_listen(&Listen::Unix(path.clone())).expect("a target");
        assert_eq!(
            target.to_string(),
            format!("/health on unix:{}", path.display())
        );
        let status = probe(&target, ENOUGH).expect("a 200");
        assert_eq!(status.code, 200);
        let head = server.join().expect("server");
        assert!(
            head.starts_with("GET /health HTTP/1.1\r\nHost: localhost\r\n"),
            "{head}"
        );
        drop(dir);
        let gone = probe(&target, ENOUGH).expect_err("no socket");
        assert!(gone.contains("cannot connect to unix:"), "{gone}");
    }

    #[test]
    fn ok_is_healthy_and_the_request_is_well_formed() {
        let (target, request) = serve(answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n\
             {\"status\":\"ok\"}",
        ));
        let status = probe(&target, ENOUGH).expect("a 200");
        assert_eq!((status.code, status.reason.as_str()), (200, "OK"));
        assert!(status.is_success());
        let request = request.recv().expect("the server saw the request");
        let expected = format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: vardr-init/{}\r\n\
             Connection: close\r\n\r\n",
            target.port,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(request, expected);
    }

    #[test]
    fn statuses_and_their_verdicts() {
        let target = Target::default_for_port(8000);
        for (response, healthy, line) in [
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                true,
                "healthy: GET http://127.0.0.1:8000/health -> 200 OK (12 ms)",
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                true,
                "healthy: GET http://127.0.0.1:8000/health -> 204 No Content (12 ms)",
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
                false,
                "unhealthy: GET http://127.0.0.1:8000/health: 503 Service Unavailable (12 ms)",
            ),
            (
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: /health/\r\n\r\n",
                false,
                "unhealthy: GET http://127.0.0.1:8000/health: 307 Temporary Redirect to \
                 /health/ (redirects are not followed) (12 ms)",
            ),
        ] {
            let (served, _) = serve(answering(response));
            let result = probe(&served, ENOUGH);
            assert!(result.is_ok(), "{response:?}: {result:?}");
            let verdict = verdict(&target, &result, Duration::from_millis(12));
            assert_eq!(verdict, (healthy, line.to_owned()));
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let status = probe_answer(
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        )
        .expect("the final 200");
        assert_eq!(status.code, 200);
        let upgrade = parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert_eq!(
            upgrade.map(|s| s.map(|s| s.code)),
            Ok(Some(101)),
            "101 is final"
        );
    }

    #[test]
    fn the_parser_takes_what_servers_send() {
        for (bytes, code, reason) in [
            (&b"HTTP/1.0 200 \r\n\r\n"[..], 200, ""),
            (b"HTTP/1.1 200\r\n\r\n", 200, ""),
            (b"HTTP/1.1 200 OK\nServer: bare-lf\n\n", 200, "OK"),
            (
                b"HTTP/1.1 599 Any Reason, At All\r\nX-A: b\r\n\r\nbody",
                599,
                "Any Reason, At All",
            ),
            // The reason is printed: nothing in it may drive a terminal (a control character
            // other than a tab is refused by the parser, see below).
            (b"HTTP/1.1 500 a\tb c\r\n\r\n", 500, "a?b c"),
            // Bytes past ASCII (obs-text) are legal but not UTF-8 text: no reason is shown.
            (b"HTTP/1.1 500 a\xc2\x85\r\n\r\n", 500, ""),
        ] {
            let status = parse(bytes).expect("valid").expect("complete");
            assert_eq!(
                (status.code, status.reason.as_str()),
                (code, reason),
                "{bytes:?}"
            );
        }
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Ty"), Ok(None));
    }

    #[test]
    fn the_parser_refuses_what_is_not_http() {
        for bytes in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00",
            b"hello",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\n\r\nSSH-2.0\r\n",
            b"HTTP/1.1 200 a\x1b[2Kforged\r\n\r\n",
        ] {
            let error = parse(bytes).expect_err("not HTTP");
            assert!(
                error.starts_with("invalid HTTP response"),
                "{bytes:?}: {error}"
            );
            assert!(error.chars().all(|c| !c.is_control()), "{error:?}");
        }
    }

    proptest::proptest! {
        /// The fuzz target's property, run with the unit tests: responses made of HTTP's own
        /// pieces, cut anywhere, parse the same, and what is printed of them is printable.
        #[test]
        fn the_verdict_does_not_depend_on_how_tcp_cuts_the_stream(
            pieces in proptest::collection::vec(proptest::sample::select(&[
                "HTTP/1.1 ", "HTTP/1.0 ", "200", "204", "101", "103", "307", " OK", "\r\n", "\n",
                "\r", ":", " ", "Location: /a\u{1b}[2K", "X-A", "\u{85}", "H", "1",
            ][..]), 0..24)
        ) {
            if let Ok(Some(status)) = parse(pieces.concat().as_bytes()) {
                let printable = |t: &str| t.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
                proptest::prop_assert!(printable(&status.reason));
                proptest::prop_assert!(status.location.as_deref().is_none_or(printable));
                proptest::prop_assert!(!(100..200).contains(&status.code) || status.code == 101);
            }
        }
    }

    #[test]
    fn garbage_truncation_and_silence_are_errors() {
        let error = probe_answer("SSH-2.0-OpenSSH_9.6\r\n\r\n").expect_err("garbage");
        assert!(error.starts_with("invalid HTTP response"), "{error}");
        let error = probe_answer("HTTP/1.1 200 OK\r\nContent-Ty").expect_err("truncated");
        assert!(
            error.starts_with("truncated response: connection closed after 27 bytes"),
            "{error}"
        );
        let error = probe_answer("").expect_err("no response");
        assert_eq!(error, "connection closed without a response");
    }

    #[test]
    fn huge_headers_are_refused() {
        let mut response = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        response.resize(response.len() + 2 * MAX_HEAD, b'a');
        response.extend_from_slice(b"\r\n\r\n");
        let (target, _) = serve(answering(response));
        let error = probe(&target, ENOUGH).expect_err("too large");
        assert!(error.starts_with("response too large"), "{error}");
    }

    #[test]
    fn silent_server_times_out() {
        let (target, _) = serve(|stream| {
            let _ = io::copy(stream, &mut io::sink());
        });
        let error = probe(&target, QUICK).expect_err("no answer");
        assert_eq!(error, "no answer within 0.3s");
    }

    #[test]
    fn trickling_headers_cannot_extend_the_deadline() {
        // Each byte would reset a per-read socket timeout; the one deadline must still end it.
        let (target, _) = serve(|stream| {
            let head = format!("HTTP/1.1 200 OK\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
            for byte in head.bytes() {
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        let started = Instant::now();
        assert_eq!(
            probe(&target, QUICK),
            Err("no answer within 0.3s".to_owned())
        );
        // A hang guard, not a performance claim: the head takes 4 s to trickle in.
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn closed_port_is_refused() {
        let target = Target::default_for_port(free_port());
        let error = probe(&target, ENOUGH).expect_err("refused");
        let expected = format!(
            "cannot connect to 127.0.0.1:{}: Connection refused",
            target.port
        );
        assert!(error.starts_with(&expected), "{error}");
    }

    #[test]
    fn host_names_are_resolved_and_every_address_tried() {
        // localhost is often ::1 first; the listener is on 127.0.0.1 only.
        let (served, request) = serve(answering("HTTP/1.1 200 OK\r\n\r\n"));
        let url = format!("http://localhost:{}/ready?full=1#top", served.port);
        let status = probe(&parse_url(&url).expect("URL"), ENOUGH).expect("a 200");
        assert_eq!(status.code, 200);
        let request = request.recv().expect("the server saw the request");
        assert!(
            request.starts_with("GET /ready?full=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains(&format!("\r\nHost: localhost:{}\r\n", served.port)));
    }

    #[test]
    fn ipv6_literals_are_probed() {
        let Ok((port, request)) = serve_on(
            std::net::Ipv6Addr::LOCALHOST.into(),
            answering("HTTP/1.1 200 OK\r\n\r\n"),
        ) else {
            eprintln!("SKIPPED: no IPv6 loopback here");
            return;
        };
        let target = parse_url(&format!("http://[::1]:{port}/x")).expect("URL");
        assert_eq!(probe(&target, ENOUGH).map(|s| s.code), Ok(200));
        let request = request.recv().expect("the server saw the request");
        assert!(
            request.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
            "{request}"
        );
    }

    #[test]
    fn unknown_host_name_is_an_error() {
        let target = parse_url("http://no-such-host.invalid/").expect("URL");
        let error = probe(&target, ENOUGH).expect_err("no such host");
        // A resolver without network access may not answer in time; that is a failure too.
        assert!(
            error.starts_with("cannot resolve host name no-such-host.invalid: ")
                || error == "no answer within 10s",
            "{error}"
        );
    }

    #[test]
    fn run_returns_the_exit_code() {
        let (target, _) = serve(answering("HTTP/1.1 200 OK\r\n\r\n"));
        assert_eq!(run(&target, ENOUGH), 0);
        let (target, _) = serve(answering("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert_eq!(run(&target, ENOUGH), 1);
        assert_eq!(run(&Target::default_for_port(free_port()), ENOUGH), 1);
    }

    #[test]
    fn urls_accepted() {
        assert_eq!(
            Target::default_for_port(8000).to_string(),
            "http://127.0.0.1:8000/health"
        );
        for (url, shown) in [
            (
                "http://127.0.0.1:8000/health",
                "http://127.0.0.1:8000/health",
            ),
            ("http://localhost", "http://localhost:80/"),
            (
                "HTTP://Api.Internal:8080/a/b?x=1&y=2#section",
                "http://Api.Internal:8080/a/b?x=1&y=2",
            ),
            ("http://app?ready", "http://app:80/?ready"),
            ("http://[::1]:9000/x", "http://[::1]:9000/x"),
            ("http://[::1]", "http://[::1]:80/"),
            (
                "http://[::ffff:127.0.0.1]:1/",
                "http://[::ffff:127.0.0.1]:1/",
            ),
            ("http://my_svc:80/", "http://my_svc:80/"),
            ("http://h:065535/%20", "http://h:65535/%20"),
        ] {
            let target = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(target.to_string(), shown, "{url}");
        }
    }

    #[test]
    fn urls_refused() {
        for (url, why) in [
            ("https://127.0.0.1:8443/health", "use a plain-HTTP endpoint"),
            ("ftp://host/", "use a plain-HTTP endpoint"),
            ("127.0.0.1:8000/health", "expected http://HOST"),
            ("", "expected http://HOST"),
            ("http://user:secret@host/", "passwords"),
            ("http://host/a b", "spaces"),
            ("http://host/\r\nX-Injected: 1", "control"),
            ("http://host/\t", "control"),
            ("http://host/\0", "control"),
            ("http://hôst/", "non-ASCII"),
            ("http://", "\"\" is not a host name"),
            ("http:///health", "\"\" is not a host name"),
            ("http://:8000/", "\"\" is not a host name"),
            ("http://host:0/", "port \"0\""),
            ("http://host:65536/", "port \"65536\""),
            ("http://host:+80/", "port \"+80\""),
            ("http://host:/", "port \"\""),
            ("http://host:http/", "port \"http\""),
            ("http://a:b:c/", "\"a:b\" is not a host name"),
            ("http://::1/", "in brackets"),
            ("http://[::1/", "in brackets"),
            ("http://[zz]/", "in brackets"),
            ("http://[::1]x/", "in brackets"),
            ("http://ho%73t/", "not a host name"),
        ] {
            match parse_url(url) {
                Ok(target) => panic!("{url:?} accepted as {target}"),
                Err(error) => {
                    assert!(error.contains(why), "{url:?}: {error}");
                    assert!(!error.contains('\n'), "one line: {error}");
                }
            }
        }
    }

    #[test]
    fn timeouts_accepted() {
        for (text, expected) in [
            ("3", Duration::from_secs(3)),
            ("0.3", Duration::from_millis(300)),
            ("007", Duration::from_secs(7)),
            ("0.000000001", Duration::from_nanos(1)),
            ("3600.000", MAX_TIMEOUT),
        ] {
            assert_eq!(parse_timeout(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn timeouts_refused() {
        for text in [
            "",
            "0",
            "0.0",
            "0.0000000001",
            "3600.000000001",
            "3601",
            "99999999999999999999999",
            "-1",
            "+1",
            "1e3",
            "inf",
            "nan",
            "3s",
            " 3",
            ".5",
            "5.",
            "1.2.3",
        ] {
            let error = parse_timeout(text).expect_err(text);
            assert!(error.contains("at most 3600"), "{text}: {error}");
        }
    }
}
