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

/// Writes `bytes` to `target` atomically, mode 0644. `check` sees the bytes read back from the
/// new file before it is renamed into place, so a short write (a full disk) or a file tampered
/// with in between never becomes the target. On error the old target is untouched and no
/// temporary file is left behind.
pub fn write_atomic(
    target: &Path,
    bytes: &[u8],
    check: impl FnOnce(&[u8]) -> Result<(), String>,
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
            let limit = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            let read = read_own(&temp, limit)
                .ok_or_else(|| format!("cannot read back {}, just written", temp.display()))?;
            check(&read)
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
            Err(e) => return Err(create_error(parent(target), &e)),
        }
    }
    let error = last.map(|e| e.to_string()).unwrap_or_default();
    Err(format!(
        "cannot create a temporary file in {}: {error}",
        parent(target).display()
    ))
}

fn create_error(dir: &Path, error: &io::Error) -> String {
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
    format!(
        "cannot create the bundle in {}: {error}; {hint}",
        dir.display()
    )
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
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != sys::geteuid() || meta.len() > limit {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
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
            assert_eq!(read, b"new");
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
}
