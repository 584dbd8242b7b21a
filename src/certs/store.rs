//! Writing the bundle and its cache record safely in a shared, world-writable directory.
//!
//! `/tmp` is shared with every user of the container. So: a new file is created with `O_EXCL |
//! O_NOFOLLOW` under a name nobody can predict, filled, fsynced, and renamed over the target.
//! `rename` replaces a symlink planted at the target instead of writing through it, and readers
//! see the old bundle or the new one, never half of one. What is read back for reuse must be a
//! regular file owned by this user, opened without following symlinks.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sys;

/// A bundle of ten thousand CAs is about 20 MiB; a system bundle is a few hundred KiB.
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Writes `bytes` to `target` atomically, mode 0644. The new file is read back before it is
/// renamed into place, and `check` sees the outcome: `Ok(bytes)` when it reads back exactly as
/// written, `Err(n)` when it does not (`n` bytes read), so a short write (a full disk) or a file
/// tampered with in between never becomes the target. On error the old target is untouched and
/// no temporary file is left behind.
pub fn write_atomic(
    target: &Path,
    bytes: &[u8],
    check: impl FnOnce(Result<&[u8], u64>) -> Result<(), String>,
) -> Result<(), String> {
    let dir = parent(target);
    let (temp, mut file) = create_temp(target)?;
    let written = file
        .set_permissions(fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all());
    drop(file);
    let renamed = written
        .map_err(|e| format!("cannot write {}: {e}", temp.display()))
        .and_then(|()| {
            let read = read_back(&temp, bytes)
                .ok_or_else(|| format!("cannot read back {}, just written", temp.display()))?;
            check(read)
        })
        .and_then(|()| fs::rename(&temp, target).map_err(|e| rename_error(target, &e)));
    if let Err(error) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    // The rename itself is durable only once the directory is synced (a no-op on tmpfs).
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn create_temp(target: &Path) -> Result<(PathBuf, File), String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = parent(target).join(format!(".{name}.{}.{nanos:x}.{n}.tmp", sys::getpid()));
        match File::options()
            .write(true)
            .create_new(true) // O_EXCL: never open a file someone planted
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(create_error(target, &e)),
        }
    }
    let error = last.map(|e| e.to_string()).unwrap_or_default();
    Err(format!(
        "cannot create a temporary file in {}: {error}",
        parent(target).display()
    ))
}

fn create_error(target: &Path, error: &io::Error) -> String {
    let dir = parent(target);
    let hint = match error.raw_os_error() {
        Some(libc::EROFS) => {
            "the filesystem is read-only: mount a writable /tmp (an emptyDir or \
                              --tmpfs /tmp) or point VARDR_CA_BUNDLE at a writable directory"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "this user may not write there: point \
                                                   VARDR_CA_BUNDLE at a directory it can write"
        }
        Some(libc::ENOENT) => "the directory does not exist: create it or change VARDR_CA_BUNDLE",
        Some(libc::ENOSPC) => "the filesystem is full",
        _ => "check VARDR_CA_BUNDLE",
    };
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    format!("cannot create {name} in {}: {error}; {hint}", dir.display())
}

fn rename_error(target: &Path, error: &io::Error) -> String {
    let owner = fs::symlink_metadata(target).map(|m| m.uid()).ok();
    match (error.raw_os_error(), owner) {
        (Some(libc::EPERM) | Some(libc::EACCES), Some(uid)) if uid != sys::geteuid() => format!(
            "cannot replace {}: it belongs to uid {uid} and the directory is sticky (like /tmp); \
             remove it or point VARDR_CA_BUNDLE at a path this user owns",
            target.display()
        ),
        _ => format!(
            "cannot rename the new bundle to {}: {error}",
            target.display()
        ),
    }
}

/// The bytes of `path` if it is a regular file owned by this user, at most `limit` bytes;
/// `None` for anything else (absent, a symlink, someone else's, too large, unreadable).
pub fn read_own(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let (file, len) = open_own(path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// Whether `path` is our own regular file holding exactly `bytes`: a re-check after start then
/// leaves an unchanged bundle alone (same inode, nothing for a client to notice).
pub fn holds(path: &Path, bytes: &[u8]) -> bool {
    matches!(read_back(path, bytes), Some(Ok(_)))
}

/// Whether `path` holds exactly `expected`: `Ok(expected)`, or `Err(n)` with the `n` bytes it
/// holds instead; `None` where [`read_own`] has nothing (a file longer than `expected` included).
/// Compared as it is read, so a bundle of thousands of CAs is not held twice.
fn read_back<'a>(path: &Path, expected: &'a [u8]) -> Option<Result<&'a [u8], u64>> {
    let limit = u64::try_from(expected.len()).unwrap_or(u64::MAX);
    let mut offset = 0;
    let mut equal = true;
    let read = stream_own(path, limit, |chunk| {
        let end = offset + chunk.len();
        equal = equal
            && expected
                .get(offset..end)
                .is_some_and(|part| same_bytes(part, chunk));
        offset = end;
    })?;
    Some(if equal && read == limit {
        Ok(expected)
    } else {
        Err(read)
    })
}

/// `a == b`, eight bytes at a time: slice equality calls musl's memcmp, a byte-at-a-time loop,
/// which made comparing a 1000-CA bundle with its read-back a tenth of the build's instructions.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a.len() == b.len()
        && a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_rest == b_rest
}

/// [`read_own`] in chunks: `each` sees the file's bytes in order, and the total is returned; the
/// same `None`s. For hashing or comparing a large file without holding all of it.
pub fn stream_own(path: &Path, limit: u64, mut each: impl FnMut(&[u8])) -> Option<u64> {
    let (file, _) = open_own(path, limit)?;
    let mut file = file.take(limit + 1);
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                each(&buffer[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    (total <= limit).then_some(total)
}

/// Opens `path` for [`read_own`]: a regular file owned by this user, at most `limit` bytes; with
/// its length.
fn open_own(path: &Path, limit: u64) -> Option<(File, u64)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.uid() == sys::geteuid() && meta.len() <= limit)
        .then_some((file, meta.len()))
}

/// Whether a bundle may be put at `target`, checked without writing: what a dry run can know of
/// the write a run would attempt, and what a run checks before it writes. `Ok` carries a warning
/// for a directory that is safe to write but not to trust; `Err` says why not and what to do.
///
/// The target must be absent or a regular file (or a symlink, replaced, not followed) this user
/// may replace: `rename` would happily put the bundle over a device node (`/dev/null` as root)
/// or a FIFO, fails over a directory, and fails on another user's file in a sticky directory. It must not be a system bundle (`is_system`
/// says whether it is one): the next start would read our output back as the system trust.
pub fn check_target(target: &Path, is_system: bool, reuse: bool) -> Result<Option<String>, String> {
    let dir = parent(target);
    if is_system {
        return Err(format!(
            "VARDR_CA_BUNDLE={} is a system CA bundle: vardr-init would overwrite it, and the next \
             start would take the merged file for the system trust (a removed custom CA would \
             stay trusted); point VARDR_CA_BUNDLE at a file of its own, such as \
             /tmp/custom_ca_bundle.pem",
            target.display()
        ));
    }
    // The directory's mode, read once: sticky (0o1000) and writable by all (0o002).
    let dir_mode = fs::metadata(dir).map_or(0, |d| d.mode());
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", target.display())),
        // A symlink is replaced by the rename, never written through: like a file.
        Ok(meta) if !meta.file_type().is_file() && !meta.file_type().is_symlink() => {
            return Err(format!(
                "{} is a {}, not a regular file: vardr-init only replaces a bundle file (or a \
                 symlink); remove it or point VARDR_CA_BUNDLE elsewhere",
                target.display(),
                super::scan::kind_of(&meta)
            ));
        }
        Ok(meta) if meta.uid() != sys::geteuid() => {
            if dir_mode & 0o1000 != 0 {
                return Err(format!(
                    "cannot replace {}: it belongs to uid {} and {} is sticky (like /tmp); remove \
                     it or point VARDR_CA_BUNDLE at a path this user owns",
                    target.display(),
                    meta.uid(),
                    dir.display()
                ));
            }
        }
        Ok(_) => {}
    }
    // A reused bundle is not written: a read-only /tmp may keep serving it.
    if !reuse && let Err(e) = sys::can_write(dir) {
        // The message a run's write would give, with its hint (read-only, permission, missing).
        return Err(create_error(target, &e));
    }
    let open_to_all = dir_mode & 0o1002 == 0o002;
    Ok(open_to_all.then(|| {
        format!(
            "{} is writable by every user and not sticky (a Kubernetes emptyDir is): another \
             user of this container could replace the bundle, or the Python hook beside it, \
             between its check and the app's read; if other users share the container, point \
             VARDR_CA_BUNDLE into a directory only this user can write",
            dir.display()
        )
    }))
}

/// Where the cache record of `bundle` lives: beside it.
pub fn cache_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The directory a file is created in (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn replaces_a_planted_symlink_without_writing_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").expect("write");
        let target = dir.path().join("bundle.pem");
        symlink(&victim, &target).expect("symlink");
        write_atomic(&target, b"new", |read| {
            assert_eq!(read, Ok(&b"new"[..]));
            Ok(())
        })
        .expect("written");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert!(fs::symlink_metadata(&target).expect("meta").is_file());
        assert_eq!(read_own(&target, 10), Some(b"new".to_vec()));
        let mode = fs::metadata(&target).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_check_leaves_the_old_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("bundle.pem");
        fs::write(&target, "old").expect("write");
        let error = write_atomic(&target, b"new", |_| Err("bad bundle".into()));
        assert_eq!(error, Err("bad bundle".to_owned()));
        assert_eq!(fs::read(&target).expect("read"), b"old");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn read_own_refuses_symlinks_and_oversize() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        fs::write(&real, "0123456789").expect("write");
        let link = dir.path().join("link");
        symlink(&real, &link).expect("symlink");
        assert_eq!(read_own(&link, 100), None);
        assert_eq!(read_own(&real, 9), None);
        assert_eq!(read_own(&real, 10), Some(b"0123456789".to_vec()));
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let error = write_atomic(Path::new("/nonexistent-vardr/bundle.pem"), b"x", |_| Ok(()))
            .expect_err("no such directory");
        assert!(error.contains("/nonexistent-vardr"), "{error}");
        assert!(error.contains("VARDR_CA_BUNDLE"), "{error}");
    }

    /// The read-back check compares as it reads: equal only when every byte and the length match.
    #[test]
    fn read_back_tells_equal_from_different_shorter_and_longer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&file, &big).expect("write");
        assert_eq!(read_back(&file, &big), Some(Ok(&big[..])));
        let mut changed = big.clone();
        changed[150_000] ^= 1;
        assert_eq!(read_back(&file, &changed), Some(Err(200_000)));
        let mut longer = big.clone();
        longer.push(0);
        assert_eq!(read_back(&file, &longer), Some(Err(200_000)));
        assert_eq!(
            read_back(&file, &big[..199_999]),
            None,
            "longer than written"
        );
        assert_eq!(read_back(&file, b""), None);
        fs::write(&file, b"").expect("write");
        assert_eq!(read_back(&file, b""), Some(Ok(&b""[..])));
        let mut seen = Vec::new();
        fs::write(&file, &big).expect("write");
        assert_eq!(
            stream_own(&file, 200_000, |c| seen.extend_from_slice(c)),
            Some(200_000)
        );
        assert_eq!(seen, big);
        assert_eq!(stream_own(&file, 199_999, |_| ()), None);
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let base: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert!(same_bytes(&[], &[]));
        for len in [1, 7, 8, 9, 64, 999, 1000] {
            let a = &base[..len];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &a[..len - 1]), "len {len}, shorter");
            for at in [0, len / 2, len - 1] {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "len {len}, byte {at}");
            }
        }
    }
}
