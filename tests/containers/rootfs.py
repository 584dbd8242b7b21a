"""Stand-in base images for the container tests, made from debootstrapped Debian root filesystems.

    rootfs.py distroless SRC DST PACKAGE...   a distroless-like tree: only the files of PACKAGE and
                                              its dependencies (from SRC's dpkg database), minus the
                                              shell, coreutils, perl, dpkg and debconf; the CA bundle;
                                              distroless' users (root, nobody, nonroot 65532)
    rootfs.py add-python PREFIX DST           copy a CPython install (a pyenv build) into DST/usr/local,
                                              as the python:3.X-slim images have it: no tests, IDLE,
                                              tkinter, headers or static library

Plain standard library, run by the host's python3.
"""

import os
import re
import shutil
import stat
import sys

# Never part of a distroless image: what would give it a shell or a package manager. Their
# dependents in the closure (tzdata -> debconf, ca-certificates -> openssl) keep their own files.
NEVER = {
    "bash", "dash", "coreutils", "debconf", "perl-base", "dpkg", "openssl", "debianutils",
    "sed", "grep", "findutils", "diffutils", "util-linux", "login", "passwd", "mawk",
    "base-passwd", "libc-bin", "tar", "gzip", "hostname", "bsdutils", "ncurses-bin",
    "init-system-helpers", "sensible-utils",
}


def dpkg_status(root):
    """{package: depends-string} for installed packages in ROOT's dpkg database."""
    packages = {}
    with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for block in f.read().split("\n\n"):
            fields = {}
            key = None
            for line in block.splitlines():
                if line.startswith((" ", "\t")) and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" in fields and "installed" in fields.get("Status", ""):
                deps = ", ".join(v for k, v in fields.items() if k in ("Depends", "Pre-Depends"))
                packages[fields["Package"]] = deps
    return packages


def closure(root, wanted):
    status = dpkg_status(root)
    seen, todo = set(), list(wanted)
    while todo:
        name = todo.pop()
        if name in seen or name in NEVER:
            continue
        if name not in status:
            sys.exit(f"rootfs: {name} is not installed in {root}")
        seen.add(name)
        for alternatives in filter(None, (d.strip() for d in status[name].split(","))):
            names = [re.split(r"[\s(:]", a.strip())[0] for a in alternatives.split("|")]
            installed = [n for n in names if n in status]
            if installed:
                todo.append(installed[0])
    return sorted(seen)


def package_files(root, package):
    info = os.path.join(root, "var/lib/dpkg/info")
    for name in (f"{package}.list", *(n for n in os.listdir(info) if n.startswith(package + ":") and n.endswith(".list"))):
        path = os.path.join(info, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
    sys.exit(f"rootfs: no file list for {package}")


def copy_entry(src_root, dst_root, path):
    """Copy PATH (absolute inside the root) with its parent directories resolved, so /lib/x.so on
    a merged-/usr tree lands in usr/lib/x.so and the top-level links stay links."""
    parent = os.path.realpath(os.path.join(src_root, os.path.dirname(path).lstrip("/")))
    if not parent.startswith(os.path.realpath(src_root)):
        return
    rel_parent = os.path.relpath(parent, os.path.realpath(src_root))
    src = os.path.join(parent, os.path.basename(path))
    dst_dir = os.path.normpath(os.path.join(dst_root, rel_parent))
    dst = os.path.join(dst_dir, os.path.basename(path))
    if not os.path.lexists(src):
        return
    os.makedirs(dst_dir, exist_ok=True)
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst)


def distroless(src, dst, wanted):
    os.makedirs(dst)
    for link in ("bin", "lib", "lib64", "sbin"):
        path = os.path.join(src, link)
        if os.path.islink(path):
            os.symlink(os.readlink(path), os.path.join(dst, link))
    packages = closure(src, wanted)
    for package in packages:
        for path in package_files(src, package):
            copy_entry(src, dst, path)
    # The CA bundle update-ca-certificates generated (not in any package's file list).
    shutil.copytree(os.path.join(src, "etc/ssl"), os.path.join(dst, "etc/ssl"), symlinks=True, dirs_exist_ok=True)
    etc = os.path.join(dst, "etc")
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
                "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    with open(os.path.join(etc, "group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n")
    for name, mode, owner in (("tmp", 0o1777, 0), ("root", 0o700, 0), ("home/nonroot", 0o700, 65532)):
        path = os.path.join(dst, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        os.chown(path, owner, owner)
    for shell in ("bin/sh", "bin/bash", "bin/dash", "usr/bin/sh", "usr/bin/bash", "usr/bin/dash"):
        if os.path.lexists(os.path.join(dst, shell)):
            sys.exit(f"rootfs: {shell} is in the distroless-like tree")
    print(f"rootfs: {dst}: {len(packages)} packages: {' '.join(packages)}", file=sys.stderr)


def add_python(prefix, dst):
    version = re.search(r"(\d+\.\d+)", os.path.basename(os.path.realpath(prefix))).group(1)
    local = os.path.join(dst, "usr/local")
    os.makedirs(os.path.join(local, "bin"), exist_ok=True)
    os.makedirs(os.path.join(local, "lib"), exist_ok=True)
    for name in os.listdir(os.path.join(prefix, "bin")):
        if name.startswith(("python", "pip")) and "config" not in name:
            src = os.path.join(prefix, "bin", name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), os.path.join(local, "bin", name))
            else:
                shutil.copy2(src, os.path.join(local, "bin", name))
    for name in os.listdir(os.path.join(prefix, "lib")):
        if name.startswith("libpython") and name.endswith((".so", ".so.1.0")):
            shutil.copy2(os.path.join(prefix, "lib", name), os.path.join(local, "lib", name), follow_symlinks=False)
    skip = {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "__pycache__"}
    shutil.copytree(
        os.path.join(prefix, "lib", f"python{version}"), os.path.join(local, "lib", f"python{version}"),
        symlinks=True,
        dirs_exist_ok=True,
        ignore=lambda d, names: [n for n in names if n in skip or n.startswith(("config-", "_tkinter"))],
    )
    print(f"rootfs: CPython {version} from {prefix} in {local}", file=sys.stderr)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "distroless":
        distroless(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "add-python":
        add_python(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
