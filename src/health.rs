//! `vardr-init health`: the `HEALTHCHECK` probe for images that ship no curl.
//!
//! One HTTP/1.1 GET, and one deadline for all of it: name lookup, connect, sending the request,
//! reading the status line and headers. Docker kills a check that overruns its own timeout and
//! records no reason, so the probe gives up first and says why. Healthy is a 2xx status; anything
//! else, including no answer, is unhealthy, exit 1. Never exit 2: Docker reserves it for
//! `HEALTHCHECK`, so even a bad `--url` or `--timeout` is a plain failure.
//!
//! The body is never read: the status answers the question, and an endpoint that streams must not
//! hold the probe until the deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The probe's deadline when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// An hour: far beyond any health check interval, and far from `Instant` overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The status line and headers may not exceed this: a health endpoint that sends more is broken,
/// and the probe must not buffer whatever a confused server streams at it.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
const USER_AGENT: &str = concat!("vardr-init/", env!("CARGO_PKG_VERSION"));
const URL_FORM: &str = "expected http://HOST[:PORT][/PATH], such as http://127.0.0.1:8000/health";

/// What to probe. Built only by [`parse_url`] or [`Target::default_for_port`], so every part is
/// free of whitespace and control characters and can go into the request as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: Host,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Target {
    /// `http://127.0.0.1:PORT/health`: uvicorn listens on every IPv4 address by default, and the
    /// loopback address needs no name lookup.
    pub fn default_for_port(port: u16) -> Target {
        Target {
            host: Host::Ip(Ipv4Addr::LOCALHOST.into()),
            port,
            path: "/health".to_owned(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `HOST[:PORT]`, the `Host` header's value; the port is left out when it is 80, as curl does.
    pub fn authority(&self) -> String {
        if self.port == 80 {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// Parses `--url`. Only plain HTTP: the probe runs inside the container against the app's own
/// port, and TLS would mean a TLS stack in PID 1 for no gain. Anything that could smuggle bytes
/// into the request (whitespace, CR, LF, other control characters) is refused, not escaped.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let invalid = |why: &str| format!("invalid URL {url:?}: {why}");
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "spaces and control characters are not allowed (percent-encode them, as %20)",
        ));
    }
    if !url.is_ascii() {
        return Err(invalid(
            "non-ASCII characters must be percent-encoded (host names in punycode)",
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(URL_FORM));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(invalid(
            "https is not supported: use a plain-HTTP endpoint, such as the app's own port",
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(invalid(&format!(
            "scheme {scheme:?} is not supported: use a plain-HTTP endpoint"
        )));
    }
    // A fragment is never sent to the server.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(invalid(
            "user names and passwords in the URL are not supported",
        ));
    }
    let (host, port) = parse_authority(authority).map_err(|why| invalid(&why))?;
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        // Empty, or a query straight after the authority.
        format!("/{path}")
    };
    Ok(Target { host, port, path })
}

fn parse_authority(authority: &str) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("unclosed '[' in the host")?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("[{inside}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the IPv6 address"))?,
            ),
        };
        (Host::Ip(ip.into()), port)
    } else {
        if authority.parse::<Ipv6Addr>().is_ok() {
            return Err("an IPv6 address goes in brackets, as http://[::1]:8000/".to_owned());
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host = if let Ok(ip) = host.parse::<Ipv4Addr>() {
            Host::Ip(ip.into())
        } else if is_host_name(host) {
            Host::Name(host.to_owned())
        } else if host.is_empty() {
            return Err(format!("no host: {URL_FORM}"));
        } else {
            return Err(format!("{host:?} is not a host name or IP address"));
        };
        (host, port)
    };
    let port = match port {
        None => 80,
        Some(port) => parse_port(port)
            .ok_or_else(|| format!("port {port:?} is not an integer from 1 to 65535"))?,
    };
    Ok((host, port))
}

fn is_host_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Digits only: `u16::from_str` would also take a leading `+`.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&port| port != 0)
}

/// Parses `--timeout`: seconds as `N` or `N.F`, more than 0 and at most an hour. Read as decimal
/// digits, not through `f64`, which would also take signs, exponents, `inf` and `nan`, and would
/// print 0.3 back as 0.29999.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid timeout {text:?}: expected a number of seconds greater than 0 and at most \
             3600, such as 3 or 0.5"
        )
    };
    let timeout = crate::config::parse_seconds(text).ok_or_else(invalid)?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(invalid());
    }
    Ok(timeout)
}

/// The status line of the final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    /// The `Location` header of a redirect: the probe does not follow it, so it shows where it
    /// points (a FastAPI route declared as `/health/` answers `/health` with a 307).
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
        Ok(())
    }
}

/// Why no status was obtained.
#[derive(Debug)]
pub enum ProbeError {
    /// The host name did not resolve.
    Resolve { host: String, error: io::Error },
    /// Every address failed to connect, each with its reason.
    Connect(Vec<(SocketAddr, io::Error)>),
    /// The deadline passed while waiting at `stage`.
    Timeout { stage: Stage, timeout: Duration },
    /// The connection failed after it was made.
    Io {
        peer: SocketAddr,
        stage: Stage,
        error: io::Error,
    },
    /// The server closed the connection before the end of the headers.
    Truncated { peer: SocketAddr, received: usize },
    /// The bytes are not an HTTP response.
    Invalid {
        peer: SocketAddr,
        error: httparse::Error,
    },
    /// The status line and headers exceed the cap.
    TooLarge { peer: SocketAddr, limit: usize },
}

/// Where the probe was when it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    Resolve(String),
    Connect(SocketAddr),
    Send(SocketAddr),
    /// `received` bytes of the response head had arrived.
    Receive {
        peer: SocketAddr,
        received: usize,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Resolve { host, error } => {
                write!(f, "cannot resolve host name {host}: {error}")
            }
            ProbeError::Connect(failures) => {
                if failures.is_empty() {
                    return f.write_str("no address to connect to");
                }
                for (i, (addr, error)) in failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    if error.kind() == io::ErrorKind::ConnectionRefused {
                        write!(f, "connection refused by {addr}")?;
                    } else {
                        write!(f, "cannot connect to {addr}: {error}")?;
                    }
                }
                Ok(())
            }
            ProbeError::Timeout { stage, timeout } => {
                let within = timeout.as_secs_f64();
                match stage {
                    Stage::Resolve(host) => {
                        write!(f, "host name {host} not resolved within {within}s")
                    }
                    Stage::Connect(addr) => write!(f, "no connection to {addr} within {within}s"),
                    Stage::Send(peer) => {
                        write!(f, "could not send the request to {peer} within {within}s")
                    }
                    Stage::Receive { peer, received: 0 } => {
                        write!(f, "no response from {peer} within {within}s")
                    }
                    Stage::Receive { peer, received } => write!(
                        f,
                        "no complete response from {peer} within {within}s \
                         ({received} bytes of headers received)"
                    ),
                }
            }
            ProbeError::Io { peer, stage, error } => {
                let doing = match stage {
                    Stage::Send(_) => "sending the request",
                    _ => "reading the response",
                };
                write!(f, "connection to {peer} failed while {doing}: {error}")
            }
            ProbeError::Truncated { peer, received: 0 } => {
                write!(f, "connection closed by {peer} without a response")
            }
            ProbeError::Truncated { peer, received } => write!(
                f,
                "truncated response: connection closed by {peer} after {received} bytes, before \
                 the end of the headers"
            ),
            ProbeError::Invalid { peer, error } => {
                write!(f, "invalid HTTP response from {peer}: {error}")
            }
            ProbeError::TooLarge { peer, limit } => write!(
                f,
                "response too large: the status line and headers from {peer} exceed {} KiB",
                limit / 1024
            ),
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::Resolve { error, .. } | ProbeError::Io { error, .. } => Some(error),
            ProbeError::Invalid { error, .. } => Some(error),
            _ => None,
        }
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

fn verdict(
    target: &Target,
    result: &Result<Status, ProbeError>,
    elapsed: Duration,
) -> (bool, String) {
    let ms = elapsed.as_millis();
    match result {
        Ok(status) if status.is_success() => {
            (true, format!("healthy: GET {target} -> {status} ({ms} ms)"))
        }
        Ok(status) => {
            let redirect = match &status.location {
                Some(location) if (300..400).contains(&status.code) => {
                    format!(" to {location} (redirects are not followed)")
                }
                _ => String::new(),
            };
            (
                false,
                format!("unhealthy: GET {target}: {status}{redirect} ({ms} ms)"),
            )
        }
        Err(error) => (false, format!("unhealthy: GET {target}: {error}")),
    }
}

/// Sends one GET to `target` and returns the final status, all within `timeout`.
pub fn probe(target: &Target, timeout: Duration) -> Result<Status, ProbeError> {
    // `parse_timeout` caps at an hour; this keeps any other caller from overflowing `Instant`.
    let timeout = timeout.min(MAX_TIMEOUT);
    let deadline = Deadline {
        end: Instant::now() + timeout,
        timeout,
    };
    let addrs = resolve(target, &deadline)?;
    let (mut stream, peer) = connect(&addrs, &deadline)?;
    send(&mut stream, peer, request(target).as_bytes(), &deadline)?;
    receive(&mut stream, peer, &deadline)
}

struct Deadline {
    end: Instant,
    timeout: Duration,
}

impl Deadline {
    /// The time left, or the timeout error for `stage` once there is none. Called before every
    /// blocking step: socket timeouts apply per call, and only this makes them share one budget.
    fn remaining(&self, stage: Stage) -> Result<Duration, ProbeError> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProbeError::Timeout {
                stage,
                timeout: self.timeout,
            });
        }
        Ok(left)
    }
}

fn request(target: &Target) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        target.path,
        target.authority()
    )
}

fn resolve(target: &Target, deadline: &Deadline) -> Result<Vec<SocketAddr>, ProbeError> {
    let name = match &target.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, target.port)]),
        Host::Name(name) => name,
    };
    let port = target.port;
    let lookup = move |name: &str| (name, port).to_socket_addrs().map(Vec::from_iter);
    // getaddrinfo takes no timeout (musl's waits out resolv.conf's, 5 s by default): it runs on a
    // thread of its own, and the probe stops waiting for it at the deadline. The thread is left
    // behind; the process exits right after the verdict.
    let (sender, receiver) = mpsc::channel();
    let looked_up = name.clone();
    let spawned = thread::Builder::new()
        .name("resolve".to_owned())
        .spawn(move || {
            let _ = sender.send(lookup(&looked_up));
        });
    let result = match spawned {
        Ok(_) => match receiver.recv_timeout(deadline.remaining(Stage::Resolve(name.clone()))?) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                return Err(ProbeError::Timeout {
                    stage: Stage::Resolve(name.clone()),
                    timeout: deadline.timeout,
                });
            }
            Err(RecvTimeoutError::Disconnected) => Err(io::Error::other(
                "the lookup thread ended without an answer",
            )),
        },
        // No thread to spare (a container's pids limit): resolving inline may overrun the
        // deadline, but failing a health check for want of a thread would be worse.
        Err(_) => lookup(name),
    };
    match result {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(ProbeError::Resolve {
            host: name.clone(),
            error: io::Error::other("no addresses"),
        }),
        Err(error) => Err(ProbeError::Resolve {
            host: name.clone(),
            error,
        }),
    }
}

fn connect(
    addrs: &[SocketAddr],
    deadline: &Deadline,
) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let mut failures = Vec::new();
    for (tried, &addr) in addrs.iter().enumerate() {
        let left = deadline.remaining(Stage::Connect(addr))?;
        // What is left is shared among the addresses still to try, so one that drops packets
        // cannot starve the next; the last one gets all of it.
        let still_to_try = u32::try_from(addrs.len() - tried).unwrap_or(u32::MAX);
        let slice = Some(left / still_to_try)
            .filter(|slice| !slice.is_zero())
            .unwrap_or(left);
        match TcpStream::connect_timeout(&addr, slice) {
            Ok(stream) => return Ok((stream, addr)),
            Err(error) => {
                if error.kind() == io::ErrorKind::TimedOut {
                    deadline.remaining(Stage::Connect(addr))?;
                }
                failures.push((addr, error));
            }
        }
    }
    Err(ProbeError::Connect(failures))
}

/// A socket timeout or a signal: go round again and let the deadline decide.
fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn send(
    stream: &mut TcpStream,
    peer: SocketAddr,
    mut request: &[u8],
    deadline: &Deadline,
) -> Result<(), ProbeError> {
    let failed = |error| ProbeError::Io {
        peer,
        stage: Stage::Send(peer),
        error,
    };
    while !request.is_empty() {
        let left = deadline.remaining(Stage::Send(peer))?;
        stream.set_write_timeout(Some(left)).map_err(failed)?;
        match stream.write(request) {
            Ok(0) => return Err(failed(io::ErrorKind::WriteZero.into())),
            Ok(written) => request = request.get(written..).unwrap_or_default(),
            Err(error) if is_retry(&error) => {}
            Err(error) => return Err(failed(error)),
        }
    }
    Ok(())
}

fn receive(
    stream: &mut TcpStream,
    peer: SocketAddr,
    deadline: &Deadline,
) -> Result<Status, ProbeError> {
    let mut head = ResponseHead::default();
    let mut chunk = [0; 4096];
    let chunk_len = chunk.len();
    // Counts interim responses too, so a stream of 1xx cannot go on forever.
    let mut received = 0;
    loop {
        let room = MAX_HEAD - received;
        if room == 0 {
            return Err(ProbeError::TooLarge {
                peer,
                limit: MAX_HEAD,
            });
        }
        let left = deadline.remaining(Stage::Receive { peer, received })?;
        let failed = |error| ProbeError::Io {
            peer,
            stage: Stage::Receive { peer, received },
            error,
        };
        stream.set_read_timeout(Some(left)).map_err(failed)?;
        let read = match stream.read(&mut chunk[..room.min(chunk_len)]) {
            Ok(0) => return Err(ProbeError::Truncated { peer, received }),
            Ok(read) => read,
            Err(error) if is_retry(&error) => continue,
            Err(error) => return Err(failed(error)),
        };
        received += read;
        let pushed = head.push(&chunk[..read]);
        if let Some(status) = pushed.map_err(|error| ProbeError::Invalid { peer, error })? {
            return Ok(status);
        }
    }
}

/// The response bytes as they arrive, parsed as far as they go: interim responses are skipped and
/// the final one's status returned. Apart from the size cap, all of [`probe`]'s parsing is here,
/// so it can be fed any byte stream, in any chunks, without a socket.
#[derive(Debug, Default)]
pub struct ResponseHead {
    bytes: Vec<u8>,
}

impl ResponseHead {
    /// Adds the next bytes read: the final status once its headers are complete, `None` while
    /// more are needed, or why the bytes are not an HTTP response.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Status>, httparse::Error> {
        self.bytes.extend_from_slice(bytes);
        // The buffer may hold interim responses and the final one: parse until it runs out.
        while let Some((length, status)) = parse_head(&self.bytes)? {
            if !is_interim(status.code) {
                return Ok(Some(status));
            }
            self.bytes.drain(..length);
        }
        Ok(None)
    }
}

/// The response at the start of `bytes` and its length, or `None` until its headers are complete.
fn parse_head(bytes: &[u8]) -> Result<Option<(usize, Status)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(length) = response.parse(bytes)? else {
        return Ok(None);
    };
    let location = response
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("location"))
        .map(|header| String::from_utf8_lossy(header.value).into_owned());
    let status = Status {
        // Always set on a complete parse; 0 would read as unhealthy anyway.
        code: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_owned(),
        location,
    };
    Ok(Some((length, status)))
}

/// 1xx responses other than 101 come before the real one (103 Early Hints, for one) and must be
/// skipped, as curl does; 101 ends HTTP on the connection, so it is final.
fn is_interim(code: u16) -> bool {
    (100..200).contains(&code) && code != 101
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const QUICK: Duration = Duration::from_millis(300);
    const ENOUGH: Duration = Duration::from_secs(10);

    /// A one-connection server on 127.0.0.1. `answer` gets the stream once the request head is
    /// read; the head comes back through the receiver.
    fn serve(
        answer: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> (Target, mpsc::Receiver<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a test port");
        let port = listener.local_addr().expect("bound address").port();
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = sender.send(read_request(&mut stream));
            answer(&mut stream);
        });
        (Target::default_for_port(port), receiver)
    }

    fn read_request(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    fn answering(bytes: impl AsRef<[u8]> + Send + 'static) -> impl FnOnce(&mut TcpStream) + Send {
        move |stream| {
            let _ = stream.write_all(bytes.as_ref());
        }
    }

    /// Holds the connection open, silent, until the client closes it.
    fn never_answering(stream: &mut TcpStream) {
        let _ = io::copy(stream, &mut io::sink());
    }

    fn probe_answer(bytes: &'static str) -> Result<Status, ProbeError> {
        let (target, _) = serve(answering(bytes));
        probe(&target, ENOUGH)
    }

    fn free_port() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a test port");
        listener.local_addr().expect("bound address").port()
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
        let port = target.port();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        for header in [
            format!("\r\nHost: 127.0.0.1:{port}\r\n"),
            format!(
                "\r\nUser-Agent: vardr-init/{}\r\n",
                env!("CARGO_PKG_VERSION")
            ),
            "\r\nConnection: close\r\n".to_owned(),
        ] {
            assert!(
                request.contains(&header),
                "{header:?} missing in {request:?}"
            );
        }
    }

    #[test]
    fn no_content_is_healthy() {
        let status = probe_answer("HTTP/1.1 204 No Content\r\n\r\n").expect("a 204");
        assert_eq!(status.code, 204);
        assert!(status.is_success());
    }

    #[test]
    fn server_error_is_a_status_not_a_probe_error() {
        let status =
            probe_answer("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                .expect("a 500");
        assert_eq!(status.to_string(), "500 Internal Server Error");
        assert!(!status.is_success());
    }

    #[test]
    fn redirect_is_unhealthy_and_says_where_it_points() {
        let (target, _) = serve(answering(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /health/\r\n\r\n",
        ));
        let result = probe(&target, ENOUGH);
        let status = result.as_ref().expect("a 301");
        assert_eq!(status.code, 301);
        let (healthy, line) = verdict(&target, &result, Duration::from_millis(4));
        assert!(!healthy);
        assert_eq!(
            line,
            format!(
                "unhealthy: GET {target}: 301 Moved Permanently to /health/ (redirects are not \
                 followed) (4 ms)"
            )
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let status = probe_answer(
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        )
        .expect("the final 200");
        assert_eq!(status.code, 200);
    }

    #[test]
    fn empty_reason_is_accepted() {
        let status = probe_answer("HTTP/1.1 200 \r\n\r\n").expect("a 200");
        assert_eq!(status.to_string(), "200");
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        for garbage in [
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\r\n\r\n",
        ] {
            let error = probe_answer(garbage).expect_err(garbage);
            assert!(matches!(error, ProbeError::Invalid { .. }), "{error:?}");
            assert!(
                error
                    .to_string()
                    .starts_with("invalid HTTP response from 127.0.0.1:"),
                "{error}"
            );
        }
    }

    #[test]
    fn truncated_response_is_an_error() {
        let error = probe_answer("HTTP/1.1 200 OK\r\nContent-Ty").expect_err("truncated");
        assert!(
            matches!(error, ProbeError::Truncated { received: 27, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("truncated response"),
            "{error}"
        );
    }

    #[test]
    fn closing_without_a_response_is_an_error() {
        let error = probe_answer("").expect_err("no response");
        assert!(error.to_string().contains("without a response"), "{error}");
    }

    #[test]
    fn huge_headers_are_refused() {
        let mut response = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        response.resize(response.len() + 2 * MAX_HEAD, b'a');
        response.extend_from_slice(b"\r\n\r\n");
        let (target, _) = serve(answering(response));
        let error = probe(&target, ENOUGH).expect_err("too large");
        assert!(matches!(error, ProbeError::TooLarge { .. }), "{error:?}");
        assert!(
            error.to_string().starts_with("response too large"),
            "{error}"
        );
    }

    #[test]
    fn silent_server_times_out() {
        let (target, _) = serve(never_answering);
        let error = probe(&target, QUICK).expect_err("no answer");
        assert!(
            matches!(
                error,
                ProbeError::Timeout {
                    stage: Stage::Receive { received: 0, .. },
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("no response from 127.0.0.1:"),
            "{error}"
        );
        assert!(error.to_string().ends_with("within 0.3s"), "{error}");
    }

    #[test]
    fn trickling_headers_cannot_extend_the_deadline() {
        // Each byte would reset a per-read socket timeout; the shared deadline must still end it.
        let (target, _) = serve(|stream| {
            let head = format!("HTTP/1.1 200 OK\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
            for byte in head.bytes() {
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        let error = probe(&target, QUICK).expect_err("too slow");
        assert!(
            matches!(
                error,
                ProbeError::Timeout {
                    stage: Stage::Receive { received: 1.., .. },
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn closed_port_is_refused() {
        let target = Target::default_for_port(free_port());
        let error = probe(&target, ENOUGH).expect_err("refused");
        assert_eq!(
            error.to_string(),
            format!("connection refused by 127.0.0.1:{}", target.port())
        );
        let (healthy, line) = verdict(&target, &Err(error), Duration::ZERO);
        assert!(!healthy);
        assert!(line.starts_with(&format!("unhealthy: GET {target}: connection refused")));
    }

    #[test]
    fn host_names_are_resolved_and_every_address_tried() {
        // localhost is often ::1 first; the listener is on 127.0.0.1 only.
        let (served, request) = serve(answering("HTTP/1.1 200 OK\r\n\r\n"));
        let target =
            parse_url(&format!("http://localhost:{}/ready?full=1", served.port())).expect("URL");
        let status = probe(&target, ENOUGH).expect("a 200");
        assert_eq!(status.code, 200);
        let request = request.recv().expect("the server saw the request");
        assert!(
            request.starts_with("GET /ready?full=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains(&format!("\r\nHost: localhost:{}\r\n", served.port())));
    }

    #[test]
    fn unknown_host_name_is_an_error() {
        let target = parse_url("http://no-such-host.invalid/").expect("URL");
        match probe(&target, ENOUGH) {
            Err(ProbeError::Resolve { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
            // A resolver without network access may not answer in time; that is a failure too.
            Err(ProbeError::Timeout { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verdict_lines() {
        let target = Target::default_for_port(8000);
        let ok = Ok(Status {
            code: 200,
            reason: "OK".to_owned(),
            location: None,
        });
        assert_eq!(
            verdict(&target, &ok, Duration::from_millis(12)),
            (
                true,
                "healthy: GET http://127.0.0.1:8000/health -> 200 OK (12 ms)".to_owned()
            )
        );
        let unavailable = Ok(Status {
            code: 503,
            reason: "Service Unavailable".to_owned(),
            location: None,
        });
        assert_eq!(
            verdict(&target, &unavailable, Duration::from_millis(3)),
            (
                false,
                "unhealthy: GET http://127.0.0.1:8000/health: 503 Service Unavailable (3 ms)"
                    .to_owned()
            )
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
    fn default_target() {
        let target = Target::default_for_port(8000);
        assert_eq!(target.to_string(), "http://127.0.0.1:8000/health");
        assert_eq!(target.authority(), "127.0.0.1:8000");
        assert_eq!(target.path(), "/health");
        assert_eq!(
            Target::default_for_port(80).to_string(),
            "http://127.0.0.1/health"
        );
    }

    #[test]
    fn urls_accepted() {
        for (url, shown, authority, port, path) in [
            (
                "http://127.0.0.1:8000/health",
                "http://127.0.0.1:8000/health",
                "127.0.0.1:8000",
                8000,
                "/health",
            ),
            (
                "http://localhost",
                "http://localhost/",
                "localhost",
                80,
                "/",
            ),
            (
                "HTTP://Api.Internal:8080/a/b?x=1&y=2#section",
                "http://Api.Internal:8080/a/b?x=1&y=2",
                "Api.Internal:8080",
                8080,
                "/a/b?x=1&y=2",
            ),
            (
                "http://app?ready",
                "http://app/?ready",
                "app",
                80,
                "/?ready",
            ),
            (
                "http://[::1]:9000/x",
                "http://[::1]:9000/x",
                "[::1]:9000",
                9000,
                "/x",
            ),
            ("http://[::1]", "http://[::1]/", "[::1]", 80, "/"),
            ("http://my_svc:80/", "http://my_svc/", "my_svc", 80, "/"),
        ] {
            let target = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(target.to_string(), shown, "{url}");
            assert_eq!(target.authority(), authority, "{url}");
            assert_eq!(target.port(), port, "{url}");
            assert_eq!(target.path(), path, "{url}");
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
            ("http://host/\r\nX-Injected: 1", "control characters"),
            ("http://host/\t", "control characters"),
            ("http://host/\0", "control characters"),
            ("http://hôst/", "non-ASCII"),
            ("http:///health", "no host"),
            ("http://:8000/", "no host"),
            ("http://host:0/", "port \"0\""),
            ("http://host:65536/", "port \"65536\""),
            ("http://host:+80/", "port \"+80\""),
            ("http://host:/", "port \"\""),
            ("http://host:http/", "port \"http\""),
            ("http://a:b:c/", "port \"b:c\""),
            ("http://::1/", "in brackets"),
            ("http://[::1/", "unclosed"),
            ("http://[zz]/", "not an IPv6 address"),
            ("http://[::1]x/", "after the IPv6 address"),
            ("http://ho%73t/", "not a host name"),
        ] {
            match parse_url(url) {
                Ok(target) => panic!("{url:?} accepted as {target}"),
                Err(error) => {
                    assert!(error.contains(why), "{url:?}: {error}");
                    assert!(
                        !error.contains('\n'),
                        "the message stays on one line: {error}"
                    );
                }
            }
        }
    }

    #[test]
    fn timeouts_accepted() {
        for (text, expected) in [
            ("3", Duration::from_secs(3)),
            ("0.3", Duration::from_millis(300)),
            ("2.5", Duration::from_millis(2500)),
            ("007", Duration::from_secs(7)),
            ("0.000000001", Duration::from_nanos(1)),
            ("1.0000000009", Duration::from_secs(1)),
            ("3600", MAX_TIMEOUT),
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
