//! The certificates directory, read once into memory, in a deterministic order.
//!
//! Only this module touches `/certs`. It follows symlinks to files and directories (Kubernetes
//! mounts are symlink farms) but skips every name starting with `.`, so a ConfigMap's
//! `name.crt -> ..data/name.crt` is read once, under its user-facing name. Directory cycles are
//! cut by remembering each directory's device and inode. Reads are bounded in size, count and
//! depth, and opened non-blocking so a FIFO cannot hang PID 1.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::verdict::Reason;

/// Larger than any real CA file (a PEM certificate is 1-3 KiB), small enough to read at once.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
pub const MAX_FILES: usize = 10_000;
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
const MAX_DEPTH: usize = 16;
const MAX_DIRS: usize = 1_000;

/// One name under the certificates directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The path relative to the directory, `/`-separated, as raw bytes (names need not be UTF-8).
    pub name: Vec<u8>,
    pub content: Content,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// Rejected before its bytes could be judged.
    Unusable(Reason),
}

impl Input {
    /// The name for logs and the summary's `results`: one line, and distinct for distinct names
    /// (a lossy conversion would make `ca-\xfe.pem` and `ca-\xff.pem` one JSON key, and hide one
    /// verdict behind the other). See [`escape_name`].
    pub fn display_name(&self) -> String {
        escape_name(&self.name)
    }
}

/// A file name as text, reversibly: control characters and line separators as the logs escape
/// them ([`crate::log::push_escaped`]: `\n`, `\x1b`, `\u{85}`...), each invalid UTF-8 byte as
/// `\xNN`, and a backslash as `\\`, so no two names escape alike and none spans two lines.
pub fn escape_name(name: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c => crate::log::push_escaped(&mut out, c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// What a walk read: the inputs, and where they came from (for watching them).
#[derive(Debug, Default)]
pub struct Scanned {
    pub inputs: Vec<Input>,
    /// Every directory listed, as walked (through symlinks).
    pub dirs: Vec<PathBuf>,
    /// Files reached through a symlink (a Kubernetes `name -> ..data/name`): what they point at
    /// may change without any of `dirs` changing.
    pub linked: Vec<PathBuf>,
}

/// Reads every input under `dir`, except the files at `exclude` (vardr-init's own outputs). A
/// missing directory has no inputs; an unreadable one is a single rejected input named `.`, so
/// strict mode and the summary both see it.
pub fn scan(dir: &Path, exclude: &[PathBuf]) -> Scanned {
    let mut walk = Walk {
        scanned: Scanned::default(),
        visited: Vec::new(),
        excluded: exclude
            .iter()
            .filter_map(|path| fs::metadata(path).ok())
            .map(|meta| (meta.dev(), meta.ino()))
            .collect(),
        dirs: 0,
        bytes: 0,
        stopped: false,
    };
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Scanned::default(),
        Err(e) => walk.reject(b".".to_vec(), reason_for(&e)),
        Ok(meta) if meta.is_dir() => walk.dir(dir, Vec::new(), &meta, 0),
        Ok(_) => walk.reject(
            b".".to_vec(),
            Reason::NotRegular("not a directory".to_owned()),
        ),
    }
    // Names are distinct (a path each), so an unstable sort gives the one order.
    walk.scanned
        .inputs
        .sort_unstable_by(|a, b| a.name.cmp(&b.name));
    walk.scanned
}

struct Walk {
    scanned: Scanned,
    visited: Vec<(u64, u64)>,
    excluded: Vec<(u64, u64)>,
    dirs: usize,
    bytes: u64,
    /// A limit was hit: the rest of the tree is not walked at all (a `certs/x -> /` must not
    /// cost a scan of the whole file system).
    stopped: bool,
}

impl Walk {
    /// Whether the results are full. Every name in them counts against [`MAX_FILES`], whatever
    /// its verdict: a dangling link, a directory nested too deep or one that cannot be listed
    /// costs a line in the summary like a file does, so the summary (and the walk) stays bounded
    /// by `MAX_FILES + 1` names however the tree is made. The first name past the limit is
    /// reported as such and the walk stops.
    fn full(&mut self, name: &[u8]) -> bool {
        if self.scanned.inputs.len() < MAX_FILES {
            return false;
        }
        if !self.stopped {
            self.stopped = true;
            self.scanned.inputs.push(Input {
                name: name.to_vec(),
                content: Content::Unusable(Reason::TooManyFiles { limit: MAX_FILES }),
            });
        }
        true
    }

    fn reject(&mut self, name: Vec<u8>, reason: Reason) {
        if !self.full(&name) {
            self.scanned.inputs.push(Input {
                name,
                content: Content::Unusable(reason),
            });
        }
    }

    fn dir(&mut self, path: &Path, name: Vec<u8>, meta: &Metadata, depth: usize) {
        let id = (meta.dev(), meta.ino());
        if self.visited.contains(&id) {
            // A symlink back to an ancestor (or a second link to the same directory): its files
            // are already read once.
            crate::debug!(
                "skipping {}: directory already read (symlink cycle or duplicate link)",
                path.display()
            );
            return;
        }
        self.visited.push(id);
        self.dirs += 1;
        if self.dirs > MAX_DIRS {
            let why = format!("too many directories: only the first {MAX_DIRS} are read");
            self.reject(dir_name(name), Reason::Unreadable(why));
            self.stopped = true;
            return;
        }
        let entries = match fs::read_dir(path) {
            Ok(entries) => {
                self.scanned.dirs.push(path.to_owned());
                entries
            }
            Err(e) => return self.reject(dir_name(name), reason_for(&e)),
        };
        let mut children: Vec<(Vec<u8>, PathBuf, bool)> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let file_name = entry.file_name();
                    if !file_name.as_bytes().starts_with(b".") {
                        // The listing's own file type (d_type), no system call: a hint only.
                        let regular = entry.file_type().is_ok_and(|t| t.is_file());
                        children.push((file_name.as_bytes().to_vec(), entry.path(), regular));
                    }
                }
                Err(e) => return self.reject(dir_name(name), reason_for(&e)),
            }
        }
        // Names are unique in a directory: by name alone (no `Path` comparison code).
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (file_name, child, regular) in children {
            if self.stopped {
                return;
            }
            let mut child_name = name.clone();
            if !child_name.is_empty() {
                child_name.push(b'/');
            }
            child_name.extend_from_slice(&file_name);
            self.entry(&child, child_name, depth, regular);
        }
    }

    fn entry(&mut self, path: &Path, name: Vec<u8>, depth: usize, listed_regular: bool) {
        // A regular file in the listing is opened straight away and judged by the open
        // descriptor's metadata: one path lookup instead of two. Anything else, and a file that
        // is no longer regular or cannot be opened, takes the general route below.
        if listed_regular
            && let Ok(file) = crate::sys::open_nonblocking(path)
            && let Ok(meta) = file.metadata()
            && meta.is_file()
        {
            return self.file(path, name, &meta, Some(file));
        }
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                let reason = match e.kind() {
                    io::ErrorKind::NotFound if is_link => Reason::Dangling,
                    _ => reason_for(&e),
                };
                return self.reject(name, reason);
            }
        };
        if meta.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                let why = format!("directory nested deeper than {MAX_DEPTH} levels, not read");
                return self.reject(name, Reason::Unreadable(why));
            }
            return self.dir(path, name, &meta, depth + 1);
        }
        if !meta.is_file() {
            return self.reject(name, Reason::NotRegular(kind_of(&meta).to_owned()));
        }
        if !listed_regular {
            self.scanned.linked.push(path.to_owned());
        }
        self.file(path, name, &meta, None);
    }

    /// A regular file: `opened` if it already is (its `meta` then comes from the descriptor).
    fn file(&mut self, path: &Path, name: Vec<u8>, meta: &Metadata, opened: Option<File>) {
        if self.excluded.contains(&(meta.dev(), meta.ino())) {
            crate::debug!("skipping {}: it is vardr-init's own output", path.display());
            return;
        }
        if self.full(&name) {
            return;
        }
        if self.bytes + meta.len().min(MAX_FILE_BYTES) > MAX_TOTAL_BYTES {
            return self.reject(
                name,
                Reason::TooMuchData {
                    limit: MAX_TOTAL_BYTES,
                },
            );
        }
        let read = match opened {
            Some(file) => read_opened(file, meta, MAX_FILE_BYTES),
            None => read_capped(path, MAX_FILE_BYTES),
        };
        let content = match read {
            Ok(bytes) => {
                self.bytes += bytes.len() as u64;
                Content::Bytes(bytes)
            }
            Err(reason) => Content::Unusable(reason),
        };
        self.scanned.inputs.push(Input { name, content });
    }
}

fn dir_name(name: Vec<u8>) -> Vec<u8> {
    if name.is_empty() { b".".to_vec() } else { name }
}

/// Reads a regular file of at most `limit` bytes. The checks run on the opened descriptor, so a
/// file swapped for a FIFO or a huge file after the directory listing is still caught.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, Reason> {
    let file = crate::sys::open_nonblocking(path).map_err(|e| reason_for(&e))?;
    let meta = file.metadata().map_err(|e| reason_for(&e))?;
    read_opened(file, &meta, limit)
}

/// The rest of [`read_capped`], for a file already open; `meta` is its descriptor's.
fn read_opened(file: File, meta: &Metadata, limit: u64) -> Result<Vec<u8>, Reason> {
    if !meta.is_file() {
        return Err(Reason::NotRegular(kind_of(meta).to_owned()));
    }
    if meta.len() > limit {
        return Err(Reason::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| reason_for(&e))?;
    if bytes.len() as u64 > limit {
        return Err(Reason::TooLarge { limit });
    }
    Ok(bytes)
}

fn reason_for(error: &io::Error) -> Reason {
    match error.raw_os_error() {
        Some(libc::ELOOP) => Reason::SymlinkLoop,
        Some(libc::EACCES) | Some(libc::EPERM) => Reason::PermissionDenied,
        _ => Reason::Unreadable(error.to_string()),
    }
}

/// What a file that is not a regular file is, in a word (`FIFO`, `socket`, `device`, ...).
pub fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device"
    } else if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The directory walk rejects FIFOs from their metadata; this is the last line of defence,
    /// for a file swapped after the listing and for the system bundle, which is opened directly.
    #[test]
    fn read_capped_does_not_block_on_a_fifo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_capped(&fifo, MAX_FILE_BYTES));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("read_capped blocked on a FIFO");
        assert_eq!(result, Err(Reason::NotRegular("FIFO".to_owned())));
    }

    /// Distinct names stay distinct, and none can break a line.
    #[test]
    fn names_are_escaped_reversibly() {
        assert_eq!(escape_name(b"ca.pem"), "ca.pem");
        assert_eq!(escape_name(b"ca-\xfe.pem"), "ca-\\xfe.pem");
        assert_eq!(escape_name(b"ca-\xff.pem"), "ca-\\xff.pem");
        assert_eq!(escape_name(b"a\\xfe"), "a\\\\xfe");
        assert_eq!(escape_name(b"esc\x1b[2K\n"), "esc\\x1b[2K\\n");
        assert_eq!(
            escape_name("nel\u{85}ls\u{2028}é".as_bytes()),
            "nel\\u{85}ls\\u{2028}é"
        );
        let names: [&[u8]; 6] = [
            b"a\xfe",
            b"a\\xfe",
            b"a\\\\xfe",
            b"a\\\xfe",
            b"a\x7f",
            b"a\\x7f",
        ];
        let escaped: std::collections::HashSet<String> =
            names.iter().map(|n| escape_name(n)).collect();
        assert_eq!(escaped.len(), names.len(), "{escaped:?}");
    }

    #[test]
    fn read_capped_refuses_what_grew_past_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; 11]).expect("write");
        assert_eq!(read_capped(&file, 10), Err(Reason::TooLarge { limit: 10 }));
        assert_eq!(read_capped(&file, 11), Ok(vec![b'x'; 11]));
    }
}
