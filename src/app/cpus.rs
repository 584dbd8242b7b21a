//! `WORKERS=auto`: one uvicorn worker per CPU the container may use, which is its cgroup CPU
//! limit, not the host's CPU count (a 64-core node running a 2-CPU pod must not start 64 workers).
//!
//! The limit is read from the cgroup file system at its conventional mount point, as container
//! runtimes (Docker, containerd, CRI-O, Podman) lay it out: cgroup v2 at `/sys/fs/cgroup` (or
//! `/sys/fs/cgroup/unified` on hybrid hosts), v1's cpu controller at `/sys/fs/cgroup/cpu` or
//! `/sys/fs/cgroup/cpu,cpuacct`. `std::thread::available_parallelism` is not used for this: it
//! rounds a fractional limit down (1.5 CPUs gives 1), where a worker per started CPU is wanted.

use std::fs;
use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The worker count for `WORKERS=auto`: the cgroup CPU limit rounded up, at most the CPUs this
/// process may run on, at least 1; without a limit, the CPUs this process may run on.
// Called from two places: one copy of the cgroup walk, not one inlined into each.
#[inline(never)]
pub fn auto_workers() -> NonZeroU32 {
    let limit = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|cgroup| cgroup_cpu_limit(&cgroup, Path::new(CGROUP_ROOT)));
    workers_for(limit, usable_cpus())
}

fn workers_for(limit: Option<f64>, cpus: NonZeroU32) -> NonZeroU32 {
    let Some(limit) = limit else {
        return cpus;
    };
    let wanted = limit.ceil();
    if wanted >= f64::from(cpus.get()) {
        cpus
    } else if wanted >= 1.0 {
        // In range: below `cpus`, at least 1, and a whole number.
        NonZeroU32::new(wanted as u32).unwrap_or(NonZeroU32::MIN)
    } else {
        NonZeroU32::MIN
    }
}

/// The CPU limit, in CPUs, of the process whose `/proc/self/cgroup` is `proc_self_cgroup`, with
/// the cgroup file system mounted at `cgroup_root`; `None` when nothing limits it.
///
/// Every hierarchy that controls CPU is read (on hybrid hosts, v1 owns the cpu controller and v2
/// has no `cpu.max`), and in each, the process's cgroup and all its ancestors up to the root: a
/// parent's quota caps its children, so the smallest one applies. Inside a container the mounted
/// root is often the container's own cgroup, so the path `/proc/self/cgroup` names (relative to
/// the host's root) does not exist under it; then the root is the process's cgroup.
pub fn cgroup_cpu_limit(proc_self_cgroup: &str, cgroup_root: &Path) -> Option<f64> {
    let mut limit = None;
    for line in proc_self_cgroup.lines() {
        // "hierarchy-ID:controller-list:cgroup-path"; the path may itself contain ':'.
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let found = if controllers.is_empty() {
            v2_hierarchy(cgroup_root).and_then(|h| walk_up(&h, path, v2_quota))
        } else if controllers.split(',').any(|c| c == "cpu") {
            v1_hierarchy(cgroup_root, controllers).and_then(|h| walk_up(&h, path, v1_quota))
        } else {
            None
        };
        limit = smaller(limit, found);
    }
    limit
}

/// The unified (v2) hierarchy: the root itself on a v2-only host, `unified/` on a hybrid one.
/// `cgroup.controllers` exists in every v2 cgroup and in no v1 one, so it tells them apart.
fn v2_hierarchy(root: &Path) -> Option<PathBuf> {
    [root.to_path_buf(), root.join("unified")]
        .into_iter()
        .find(|dir| dir.join("cgroup.controllers").is_file())
}

/// The v1 hierarchy the cpu controller is mounted on. Runtimes and systemd name the directory
/// after its controller list (`cpu,cpuacct`) and usually add a `cpu` symlink.
fn v1_hierarchy(root: &Path, controllers: &str) -> Option<PathBuf> {
    [root.join("cpu"), root.join(controllers)]
        .into_iter()
        .find(|dir| dir.is_dir())
}

/// The smallest quota of `cgroup` and its ancestors within `hierarchy`.
fn walk_up(hierarchy: &Path, cgroup: &str, quota: fn(&Path) -> Option<f64>) -> Option<f64> {
    let start = within(hierarchy, cgroup)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| hierarchy.to_path_buf());
    let mut limit = None;
    for dir in start.ancestors() {
        limit = smaller(limit, quota(dir));
        if dir == hierarchy {
            break;
        }
    }
    limit
}

/// `cgroup` as a directory under `hierarchy`, or `None` if it would leave it: a process outside
/// the reader's cgroup namespace is shown as `/../..`.
fn within(hierarchy: &Path, cgroup: &str) -> Option<PathBuf> {
    let mut dir = hierarchy.to_path_buf();
    for component in Path::new(cgroup).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => dir.push(name),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(dir)
}

/// v2 `cpu.max`: "QUOTA PERIOD" in microseconds, QUOTA `max` for no limit.
fn v2_quota(dir: &Path) -> Option<f64> {
    let text = fs::read_to_string(dir.join("cpu.max")).ok()?;
    let mut fields = text.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?;
    // The kernel always writes the period; 100 ms is its default should it ever be left out.
    let period: u64 = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    ratio(quota, period)
}

/// v1 `cpu.cfs_quota_us` (-1 for no limit) over `cpu.cfs_period_us`.
fn v1_quota(dir: &Path) -> Option<f64> {
    let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let quota: i64 = read("cpu.cfs_quota_us")?.trim().parse().ok()?;
    let quota = u64::try_from(quota).ok()?;
    let period: u64 = read("cpu.cfs_period_us")?.trim().parse().ok()?;
    ratio(quota, period)
}

fn ratio(quota: u64, period: u64) -> Option<f64> {
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

fn smaller(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The CPUs this process may run on (its affinity mask: `docker run --cpuset-cpus`, `taskset`).
/// Should the call fail, the standard library's count, which also honours the mask.
fn usable_cpus() -> NonZeroU32 {
    crate::sys::affinity_cpus()
        .or_else(|| {
            let count = std::thread::available_parallelism().ok()?;
            NonZeroU32::new(u32::try_from(count.get()).ok()?)
        })
        .unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, contents) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(&path, contents).expect("write");
        }
        dir
    }

    fn limit(proc_self_cgroup: &str, root: &tempfile::TempDir) -> Option<f64> {
        cgroup_cpu_limit(proc_self_cgroup, root.path())
    }

    #[test]
    fn v2_takes_the_tightest_of_the_cgroup_and_its_ancestors() {
        let root = tree(&[
            ("cgroup.controllers", "cpu memory\n"),
            ("kubepods/cpu.max", "max 100000\n"),
            ("kubepods/pod1/cpu.max", "150000 100000\n"),
            ("kubepods/pod1/ctr/cpu.max", "400000 100000\n"),
        ]);
        assert_eq!(limit("0::/kubepods/pod1/ctr\n", &root), Some(1.5));
        assert_eq!(limit("0::/kubepods\n", &root), None);
    }

    #[test]
    fn v2_max_everywhere_is_no_limit() {
        let root = tree(&[
            ("cgroup.controllers", ""),
            ("a/cpu.max", "max 100000\n"),
            ("a/b/cpu.max", "max 100000\n"),
        ]);
        assert_eq!(limit("0::/a/b\n", &root), None);
    }

    #[test]
    fn v2_path_missing_under_a_namespaced_root_falls_back_to_the_root() {
        let root = tree(&[("cgroup.controllers", ""), ("cpu.max", "50000 100000\n")]);
        assert_eq!(limit("0::/docker/0123abcd\n", &root), Some(0.5));
        assert_eq!(limit("0::/\n", &root), Some(0.5));
        assert_eq!(
            limit("0::/../../elsewhere\n", &root),
            Some(0.5),
            "`..` never leaves the root"
        );
    }

    #[test]
    fn v2_on_a_hybrid_host_is_under_unified() {
        let root = tree(&[
            ("unified/cgroup.controllers", ""),
            ("unified/svc/cpu.max", "300000 100000\n"),
        ]);
        assert_eq!(limit("0::/svc\n", &root), Some(3.0));
    }

    #[test]
    fn v2_needs_cgroup_controllers_to_be_recognised() {
        let root = tree(&[("svc/cpu.max", "100000 100000\n")]);
        assert_eq!(limit("0::/svc\n", &root), None);
    }

    #[test]
    fn v1_quota_over_period_under_the_cpu_controller() {
        let root = tree(&[
            ("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n"),
            ("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"),
            ("cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
            ("memory/docker/abc/cpu.cfs_quota_us", "100000\n"),
            ("memory/docker/abc/cpu.cfs_period_us", "100000\n"),
        ]);
        let cgroup = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n";
        assert_eq!(limit(cgroup, &root), Some(2.5));
    }

    #[test]
    fn v1_through_the_cpu_symlink_and_a_tighter_parent() {
        let root = tree(&[
            ("cpu,cpuacct/slice/cpu.cfs_quota_us", "50000\n"),
            ("cpu,cpuacct/slice/cpu.cfs_period_us", "100000\n"),
            ("cpu,cpuacct/slice/job/cpu.cfs_quota_us", "200000\n"),
            ("cpu,cpuacct/slice/job/cpu.cfs_period_us", "100000\n"),
        ]);
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).expect("symlink");
        assert_eq!(limit("3:cpuacct,cpu:/slice/job\n", &root), Some(0.5));
    }

    #[test]
    fn v1_minus_one_is_no_limit() {
        let root = tree(&[
            ("cpu/cpu.cfs_quota_us", "-1\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(limit("1:cpu:/\n", &root), None);
        assert_eq!(limit("1:cpu:/not/here\n", &root), None);
    }

    #[test]
    fn v1_and_v2_both_limiting_take_the_smaller() {
        let root = tree(&[
            ("unified/cgroup.controllers", ""),
            ("unified/cpu.max", "300000 100000\n"),
            ("cpu/cpu.cfs_quota_us", "200000\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(limit("1:cpu:/\n0::/\n", &root), Some(2.0));
    }

    #[test]
    fn garbage_files_are_no_limit() {
        for (file, contents) in [
            ("cpu.max", "banana\n"),
            ("cpu.max", ""),
            ("cpu.max", "0 100000\n"),
            ("cpu.max", "100000 0\n"),
            ("cpu.max", "-5 100000\n"),
            ("cpu.max", "100000 x\n"),
        ] {
            let root = tree(&[("cgroup.controllers", ""), (file, contents)]);
            assert_eq!(limit("0::/\n", &root), None, "{contents:?}");
        }
        for (quota, period) in [("x", "100000"), ("100000", "x"), ("100000", "0"), ("", "")] {
            let root = tree(&[
                ("cpu/cpu.cfs_quota_us", quota),
                ("cpu/cpu.cfs_period_us", period),
            ]);
            assert_eq!(limit("1:cpu:/\n", &root), None, "{quota:?}/{period:?}");
        }
        let root = tree(&[("cgroup.controllers", ""), ("cpu.max", "100000 100000\n")]);
        assert_eq!(
            limit("garbage\n\n7\n0::/\n", &root),
            Some(1.0),
            "bad lines skipped"
        );
    }

    #[test]
    fn missing_files_are_no_limit() {
        let root = tree(&[]);
        assert_eq!(limit("0::/\n1:cpu:/\n", &root), None);
        assert_eq!(limit("", &root), None);
        let root = tree(&[("cpu/cpu.cfs_quota_us", "100000\n")]);
        assert_eq!(limit("1:cpu:/\n", &root), None, "quota without period");
    }

    #[test]
    fn workers_round_the_limit_up_within_the_usable_cpus() {
        let four = NonZeroU32::new(4).expect("nonzero");
        let workers = |limit| workers_for(limit, four).get();
        assert_eq!(workers(None), 4);
        assert_eq!(workers(Some(1.5)), 2);
        assert_eq!(workers(Some(2.0)), 2);
        assert_eq!(workers(Some(0.1)), 1);
        assert_eq!(workers(Some(3.01)), 4);
        assert_eq!(workers(Some(64.0)), 4);
        assert_eq!(workers(Some(f64::NAN)), 1);
    }

    #[test]
    fn auto_workers_here_is_between_one_and_the_cpu_count() {
        let online = fs::read_to_string("/proc/cpuinfo")
            .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
            .unwrap_or(0);
        let machine = online.max(std::thread::available_parallelism().map_or(1, |n| n.get()));
        let workers = auto_workers().get() as usize;
        assert!(
            (1..=machine).contains(&workers),
            "{workers} workers on a {machine}-CPU machine"
        );
    }
}
