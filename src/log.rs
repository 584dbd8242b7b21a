//! Log lines on stderr, in the contract's two formats, written so that they never block PID 1
//! and cannot forge lines.
//!
//! Text: `[Vardr] message` (warnings and errors carry `WARN:` / `ERROR:`, debug lines `DEBUG:`).
//! JSON: `{"type":"log","timestamp":"2024-01-15T10:30:00Z","level":"INFO","message":"..."}`, one
//! object per line, RFC 3339 UTC timestamps to the second.
//!
//! The crate logs through this module's macros, `error!`, `warn!`, `info!` and `debug!`, which take
//! `format!` arguments: a level, a message, one line. That is all vardr-init ever logged through
//! `tracing` (no spans, no fields, one thread), whose callsite machinery cost the static binary
//! more than this whole module.
//!
//! # Escaping
//! Messages carry file names and certificate subjects, which anyone who can write to the
//! certificates directory chooses. In text logs every control character and line separator is
//! escaped, so none can end a line early, erase one or drive the terminal: `\n`, `\r` and `\t` as
//! such, the rest of C0 and DEL as `\xNN`, C1 (U+0080 to U+009F, NEL among them), U+2028 and
//! U+2029 as `\u{NNNN}` (Rust's notation, lowercase hex). Backslashes are left as they are: names
//! are escaped once, upstream, and a second pass would double them. JSON lines are escaped by
//! serde_json, which leaves DEL, C1, U+2028 and U+2029 raw, as JSON allows; they are written as
//! `\u007f`, `\u0085`, `\u2028`, ... here, the same string to any JSON reader, because JSON logs
//! are read on terminals too (`docker logs`), and JavaScript before ES2019 ends a line at U+2028.
//!
//! # Never blocking
//! A stalled log driver fills the stderr pipe, and a blocking write would then hold the
//! supervisor: no signal forwarded, no stop deadline. So no write waits on stderr, and a wait for
//! room is bounded: a reader that is only slower than a burst of lines (thousands of certificate
//! verdicts at start-up) is waited for as long as it keeps taking bytes, but when stderr takes
//! nothing for `STALL_WAIT` (0.5 s) it counts as stalled. The line is then dropped (or, if part
//! of it is out, cut there), and from then on every line that cannot be written at once is
//! dropped at once, without waiting, until one goes through: a stall costs PID 1 one such wait,
//! not one per line. Dropped lines are counted, and the first line that gets through is preceded
//! by `N log lines were dropped: stderr was full` (a line cut short counts as dropped, and the
//! next one starts on a line of its own). O_NONBLOCK cannot go on fd 2 itself:
//! it belongs to the open file description the child shares, whose writes would then fail with
//! EAGAIN. Instead, depending on what stderr is:
//! - a pipe or FIFO (Docker, Kubernetes): the line goes into a private pipe and is moved into
//!   stderr with `splice(SPLICE_F_NONBLOCK)`, non-blocking for that call alone. Reopening
//!   `/proc/self/fd/2` would also give a description of our own, but a pipe made by another user
//!   (the runtime, as root, when the image sets `USER`) cannot be reopened;
//! - a terminal: `/proc/self/fd/2` reopened with O_NONBLOCK;
//! - a socket (journald): `send(MSG_DONTWAIT)`;
//! - a regular file or anything else: written directly; a file does not fill up (reopening it
//!   would change its offset semantics).
//!
//! When the splice or the reopen is refused (a seccomp profile, no /proc), a line is written only
//! when `poll` says there is room; a concurrent writer can take that room between the two, so
//! there a write may still wait: a narrow window, not a stall by design.
//!
//! A line of at most `PIPE_BUF` (4096) bytes is one write, whole or nothing, so it never
//! interleaves with the child's output. A longer one (the JSON certificate summary can be
//! megabytes) goes out in pieces of that size, which other writers may come between.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, IsTerminal, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Level, LogSettings};
use crate::events::{self, LogEvent};
use crate::sys;

static SETTINGS: OnceLock<LogSettings> = OnceLock::new();
/// Set up at the first line, when stderr is what it will stay.
static STDERR: Mutex<Option<Stderr>> = Mutex::new(None);

/// The largest write a pipe takes whole or not at all.
const PIPE_BUF: usize = 4096;
/// How long stderr may take nothing before it counts as stalled.
const STALL_WAIT: Duration = Duration::from_millis(500);

/// Installs the global logger. Later calls are ignored (tests may call it more than once).
pub fn init(settings: LogSettings) {
    let _ = SETTINGS.set(settings);
}

/// One log line at `level`, if the configured level lets it through (none before [`init`]).
/// Called by the macros.
pub fn event(level: Level, message: fmt::Arguments<'_>) {
    if SETTINGS.get().is_some_and(|s| level <= s.level) {
        emit(format_line(level, &message.to_string()).as_bytes());
    }
}

/// `error!("...", args)`: a line at level ERROR.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::event($crate::config::Level::ERROR, format_args!($($arg)*)) };
}

/// `warn!("...", args)`: a line at level WARN.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::event($crate::config::Level::WARN, format_args!($($arg)*)) };
}

/// `info!("...", args)`: a line at level INFO.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::event($crate::config::Level::INFO, format_args!($($arg)*)) };
}

/// `debug!("...", args)`: a line at level DEBUG.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::event($crate::config::Level::DEBUG, format_args!($($arg)*)) };
}

/// Whether logs are JSON lines (events other than `log` are then written with [`write_line`]).
pub fn json() -> bool {
    SETTINGS.get().is_some_and(|s| s.json)
}

/// Writes one line (a JSON event) on stderr like every log line: at once or not at all.
pub fn write_line(line: &str) {
    let mut line = json_safe(line);
    line.push('\n');
    emit(line.as_bytes());
}

fn emit(line: &[u8]) {
    let mut stderr = STDERR.lock().unwrap_or_else(PoisonError::into_inner);
    if stderr.is_none() {
        // A duplicate of fd 2: the same open file description. None while fd 2 is closed.
        let target = io::stderr().as_fd().try_clone_to_owned();
        *stderr = target.ok().map(|fd| Stderr::over(File::from(fd)));
    }
    if let Some(stderr) = stderr.as_mut() {
        stderr.write_line(line);
    }
}

/// stderr, and what has been lost on the way to it.
struct Stderr {
    /// Where the lines go: fd 2 (a duplicate of it, close-on-exec) outside tests.
    target: File,
    sink: Sink,
    /// Lines dropped or cut short since the last one written whole.
    dropped: u64,
    /// The last line was cut short: the next one must start on a line of its own.
    cut: bool,
    /// stderr took nothing for [`STALL_WAIT`]: lines are not waited for until one gets through.
    stalled: bool,
}

/// How the target is written without waiting (see the module documentation).
enum Sink {
    /// Through this private pipe, spliced; empty between writes.
    Pipe(PipeReader, PipeWriter),
    /// The target reopened with O_NONBLOCK: an open file description of our own.
    Reopened(File),
    Socket,
    Direct,
    /// Written when `poll` says there is room.
    WhenWritable,
}

impl Stderr {
    fn over(target: File) -> Stderr {
        let kind = target.metadata().map(|meta| meta.file_type());
        let sink = match kind {
            Ok(kind) if kind.is_fifo() => io::pipe()
                .map(|(reader, writer)| Sink::Pipe(reader, writer))
                .unwrap_or(Sink::WhenWritable),
            Ok(kind) if kind.is_socket() => Sink::Socket,
            Ok(kind) if kind.is_char_device() && target.is_terminal() => OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(format!("/proc/self/fd/{}", target.as_raw_fd()))
                .map_or(Sink::WhenWritable, Sink::Reopened),
            _ => Sink::Direct,
        };
        Stderr {
            target,
            sink,
            dropped: 0,
            cut: false,
            stalled: false,
        }
    }

    /// Writes `line` (ending in a newline), preceded by the count of lines lost before it.
    fn write_line(&mut self, line: &[u8]) {
        let mut bytes = Vec::with_capacity(line.len() + 128);
        if self.cut {
            bytes.push(b'\n');
        }
        if self.dropped > 0 {
            let n = self.dropped;
            let (lines, were) = if n == 1 {
                ("line", "was")
            } else {
                ("lines", "were")
            };
            let notice = format!("{n} log {lines} {were} dropped: stderr was full");
            bytes.extend_from_slice(format_line(Level::WARN, &notice).as_bytes());
        }
        let prefix = bytes.len();
        bytes.extend_from_slice(line);
        let written = self.write_bounded(&bytes);
        if written == bytes.len() {
            (self.dropped, self.cut) = (0, false);
        } else if written == 0 {
            self.dropped += 1;
        } else {
            // Cut short: counted, and if the notice itself was cut, it comes again.
            self.dropped = if written >= prefix {
                1
            } else {
                self.dropped + 1
            };
            self.cut = true;
        }
    }

    /// Writes as much of `bytes` as stderr takes; returns how much. Waits for room only while
    /// stderr is not stalled, and only while it keeps taking bytes: after [`STALL_WAIT`] without
    /// progress it is stalled, and the rest is left.
    fn write_bounded(&mut self, bytes: &[u8]) -> usize {
        let mut done = 0;
        let mut deadline = None;
        while let Some(rest) = bytes.get(done..).filter(|rest| !rest.is_empty()) {
            match self.write_now(rest) {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    // A reader is there: it may take its time.
                    (deadline, self.stalled) = (None, false);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock && !self.stalled => {
                    let now = Instant::now();
                    let end = *deadline.get_or_insert(now + STALL_WAIT);
                    if now >= end || !sys::wait_writable(self.target.as_fd(), end - now) {
                        self.stalled = true;
                    }
                }
                Err(_) => break,
            }
        }
        done
    }

    /// One write that does not wait: part of `bytes`, or `WouldBlock`.
    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let piece = &bytes[..bytes.len().min(PIPE_BUF)];
        let target = &mut self.target;
        match &mut self.sink {
            Sink::Pipe(reader, writer) => {
                // The private pipe is empty and takes PIPE_BUF bytes without waiting; a piece
                // that size is one pipe buffer, which the splice moves whole or not at all.
                let queued = writer.write(piece)?;
                let moved = sys::splice_nonblocking(reader.as_fd(), target.as_fd(), queued);
                let unsent = queued - moved.as_ref().map_or(0, |&n| n.min(queued));
                if unsent > 0 {
                    // Taken back (it is there: no wait), so the private pipe is empty again.
                    let _ = reader.read_exact(&mut vec![0; unsent]);
                }
                match moved {
                    // No splice here (an old sandbox, a seccomp profile): for good.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)
                        ) =>
                    {
                        self.sink = Sink::WhenWritable;
                        self.write_now(bytes)
                    }
                    moved => moved,
                }
            }
            Sink::Reopened(file) => file.write(bytes),
            Sink::Socket => sys::send_nonblocking(target.as_fd(), bytes),
            Sink::Direct => target.write(bytes),
            Sink::WhenWritable if sys::wait_writable(target.as_fd(), Duration::ZERO) => {
                target.write(piece)
            }
            Sink::WhenWritable => Err(ErrorKind::WouldBlock.into()),
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// A log line in the configured format, ending in a newline.
fn format_line(level: Level, message: &str) -> String {
    if json() {
        json_line(level, SystemTime::now(), message)
    } else {
        text_line(level, message)
    }
}

fn text_line(level: Level, message: &str) -> String {
    let message = escape(message);
    match level {
        Level::INFO => format!("[Vardr] {message}\n"),
        _ => format!("[Vardr] {}: {message}\n", level_name(level)),
    }
}

fn json_line(level: Level, time: SystemTime, message: &str) -> String {
    // The contract's `log` event, serialised like every event; then nothing raw that a terminal
    // would act on.
    let event = LogEvent {
        timestamp: events::timestamp(time),
        level: level_name(level),
        message,
    };
    let mut line = json_safe(&events::line(&event));
    line.push('\n');
    line
}

/// A control character or a line separator: never written raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A text message with every [`is_unsafe`] character escaped (see the module documentation).
fn escape(message: &str) -> Cow<'_, str> {
    if !message.chars().any(is_unsafe) {
        return Cow::Borrowed(message);
    }
    let mut escaped = String::with_capacity(message.len() + 16);
    for c in message.chars() {
        push_escaped(&mut escaped, c);
    }
    Cow::Owned(escaped)
}

/// `c` as text logs show it: `\n`, `\r`, `\t`, other C0 and DEL as `\xNN`, C1 and the line
/// separators as `\u{NN}`, anything else as itself. Shared with the file-name escaping of
/// `certs::scan`, so a name reads the same everywhere.
pub fn push_escaped(out: &mut String, c: char) {
    let _ = match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if !is_unsafe(c) => out.write_char(c),
        c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    };
}

/// Serialized JSON with every [`is_unsafe`] character as a `\uNNNN` escape. Compact JSON has
/// them only inside strings, where the escape means the same character.
fn json_safe(json: &str) -> String {
    let mut safe = String::with_capacity(json.len());
    for c in json.chars() {
        let _ = match c {
            c if is_unsafe(c) => write!(safe, "\\u{:04x}", u32::from(c)),
            c => safe.write_char(c),
        };
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Stderr` over a fresh pipe; the pipe's read end, and a non-blocking description of its
    /// write end to fill it with.
    fn over_a_pipe() -> (Stderr, File, File) {
        let (reader, writer) = io::pipe().expect("pipe");
        let writer = File::from(std::os::fd::OwnedFd::from(writer));
        let reopen = |fd: &dyn AsRawFd, write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_NONBLOCK)
                .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .expect("reopen the pipe")
        };
        let filler = reopen(&writer, true);
        let reader = reopen(&reader, false);
        let stderr = Stderr::over(writer);
        assert!(matches!(stderr.sink, Sink::Pipe(..)));
        (stderr, reader, filler)
    }

    fn fill(mut filler: &File) {
        for size in [4096, 1] {
            while filler.write(&vec![b'.'; size]).is_ok() {}
        }
    }

    /// What the pipe holds now, without the filler's dots.
    fn drain(mut reader: &File) -> String {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).replace('.', "")
    }

    #[test]
    fn lines_that_find_stderr_full_are_dropped_counted_and_reported() {
        let (mut stderr, reader, filler) = over_a_pipe();
        stderr.write_line(b"[Vardr] first\n");
        fill(&filler);
        // The first waits for room, then stderr counts as stalled: the others are not waited for.
        for i in 0..3 {
            stderr.write_line(format!("[Vardr] lost {i}\n").as_bytes());
            assert!(stderr.stalled);
        }
        assert_eq!(drain(&reader), "[Vardr] first\n");
        stderr.write_line(b"[Vardr] back\n");
        assert!(!stderr.stalled);
        stderr.write_line(b"[Vardr] again\n");
        assert_eq!(
            drain(&reader),
            "[Vardr] WARN: 3 log lines were dropped: stderr was full\n[Vardr] back\n\
             [Vardr] again\n"
        );
        fill(&filler);
        stderr.write_line(b"[Vardr] lost\n");
        let _ = drain(&reader);
        stderr.write_line(b"[Vardr] one\n");
        assert_eq!(
            drain(&reader),
            "[Vardr] WARN: 1 log line was dropped: stderr was full\n[Vardr] one\n"
        );
    }

    #[test]
    fn a_line_waits_for_a_slow_reader_is_cut_by_a_stalled_one_and_the_next_starts_afresh() {
        let (mut stderr, mut reader, filler) = over_a_pipe();
        // Room for two pieces of the line, then nobody reads: the rest waits while the reader
        // takes nothing, then it is cut.
        fill(&filler);
        let _ = (&reader).read_exact(&mut [0; 2 * PIPE_BUF]);
        let long = format!("[Vardr] {}\n", "a".repeat(10 * PIPE_BUF));
        let started = Instant::now();
        stderr.write_line(long.as_bytes());
        assert!(started.elapsed() >= STALL_WAIT, "it waited for room");
        assert!(started.elapsed() < 10 * STALL_WAIT, "a hang guard");
        stderr.write_line(b"[Vardr] after\n");
        let cut = drain(&reader);
        assert_eq!(cut, long[..2 * PIPE_BUF], "the two pieces that had room");
        stderr.write_line(b"[Vardr] next\n");
        assert_eq!(
            drain(&reader),
            "\n[Vardr] WARN: 2 log lines were dropped: stderr was full\n[Vardr] next\n"
        );
        // With a reader, a line of megabytes goes out whole.
        let big = format!("[Vardr] {}\n", "b".repeat(4 << 20));
        let reading = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut chunk = [0; 65536];
            while !bytes.ends_with(b"\n") {
                match reader.read(&mut chunk) {
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            bytes
        });
        stderr.write_line(big.as_bytes());
        assert_eq!(reading.join().expect("reader"), big.as_bytes());
        assert_eq!((stderr.dropped, stderr.cut), (0, false));
    }

    #[test]
    fn a_reader_slower_than_a_burst_of_lines_loses_none() {
        let (mut stderr, mut reader, _filler) = over_a_pipe();
        let reading = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut chunk = [0; PIPE_BUF];
            while !bytes.ends_with(b"end\n") {
                match reader.read(&mut chunk) {
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            String::from_utf8(bytes).expect("UTF-8")
        });
        for i in 0..20_000 {
            stderr.write_line(format!("[Vardr] verdict {i}\n").as_bytes());
        }
        stderr.write_line(b"[Vardr] end\n");
        let read = reading.join().expect("reader");
        assert_eq!(
            read.lines().count(),
            20_001,
            "{}",
            &read[read.len() - 200..]
        );
        assert!(!read.contains("dropped"));
    }

    #[test]
    fn json_line_matches_the_contract() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_314_600);
        let line = json_line(Level::INFO, time, "say \"hi\"\nnext\u{1b}");
        assert_eq!(
            line,
            "{\"type\":\"log\",\"timestamp\":\"2024-01-15T10:30:00Z\",\"level\":\"INFO\",\
             \"message\":\"say \\\"hi\\\"\\nnext\\u001b\"}\n"
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["message"], "say \"hi\"\nnext\u{1b}");
    }

    #[test]
    fn json_lines_carry_no_raw_separators_or_c1() {
        let message = "del\u{7f} nel\u{85} csi\u{9b} ls\u{2028} ps\u{2029} é ✓ \\";
        let escaped = r"del\u007f nel\u0085 csi\u009b ls\u2028 ps\u2029 é ✓ \\";
        let line = json_line(Level::WARN, SystemTime::UNIX_EPOCH, message);
        assert!(
            line.ends_with(&format!("\"message\":\"{escaped}\"}}\n")),
            "{line:?}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(
            value["message"], message,
            "the same string to a JSON reader"
        );
        // Events written with `write_line`, such as the certificate summary, too.
        let event = serde_json::json!({ "results": { message: "FAILED" } }).to_string();
        let safe = json_safe(&event);
        assert_eq!(
            safe,
            format!("{{\"results\":{{\"{escaped}\":\"FAILED\"}}}}")
        );
        let value: serde_json::Value = serde_json::from_str(&safe).expect("valid JSON");
        assert_eq!(value["results"][message], "FAILED");
    }

    #[test]
    fn text_line_is_one_line_with_prefix() {
        assert_eq!(text_line(Level::INFO, "started"), "[Vardr] started\n");
        assert_eq!(text_line(Level::WARN, "a\nb"), "[Vardr] WARN: a\\nb\n");
    }

    #[test]
    fn text_escapes_every_control_character_and_line_separator() {
        for (raw, shown) in [
            ("\r\t", r"\r\t"),
            ("\0\u{1}\u{7}\u{8}", r"\x00\x01\x07\x08"),
            (
                "\u{b}\u{c}\u{1b}[2K\u{1f}\u{7f}",
                r"\x0b\x0c\x1b[2K\x1f\x7f",
            ),
            ("\u{80}\u{85}\u{9b}\u{9f}", r"\u{80}\u{85}\u{9b}\u{9f}"),
            ("\u{2028}\u{2029}", r"\u{2028}\u{2029}"),
            // Printable text, backslashes included, passes as it is.
            (r"é ✓ \x1b C:\certs", r"é ✓ \x1b C:\certs"),
            (
                "\u{a0}\u{200b}\u{2027}\u{202a}",
                "\u{a0}\u{200b}\u{2027}\u{202a}",
            ),
        ] {
            assert_eq!(escape(raw), shown, "{raw:?}");
        }
        let forged = "esc\u{1b}[2K\u{1b}[1G[Vardr] forged";
        assert_eq!(
            text_line(Level::WARN, forged),
            "[Vardr] WARN: esc\\x1b[2K\\x1b[1G[Vardr] forged\n"
        );
    }
}
