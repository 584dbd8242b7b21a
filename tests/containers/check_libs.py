"""check_libs.py IMAGE_ROOT BASE_ROOT: the shared libraries of an image's Python, checked.

IMAGE_ROOT and BASE_ROOT are mounted root filesystems (podman image mount) of a runtime image and
of the base it was built on. For every ELF file under /usr/local, /usr/lib/python3*, /opt/venv
(the interpreter, libpython, extension modules), the image's own dynamic loader is asked what it
loads (chroot IMAGE_ROOT ld.so --list FILE). Fails if anything is not found. Then compares the
shared libraries the image has in its library directories beyond the base with those the ELF
files need beyond the base: they must be equal, so nothing Python needs is missing and nothing
it does not need was added. Prints both lists.
"""

import os
import subprocess
import sys

LIB_DIRS = ("lib", "usr/lib", "lib64", "usr/local/lib")


def lib_names(root):
    """The names of the shared objects in ROOT's loader directories (/lib, /usr/lib, /lib64 and
    their multiarch subdirectories)."""
    names = set()
    for top in LIB_DIRS:
        base = os.path.join(root, top)
        if os.path.islink(base) or not os.path.isdir(base):
            continue
        dirs = [base] + [os.path.join(base, d) for d in os.listdir(base) if d.endswith("-linux-gnu")]
        for d in dirs:
            if os.path.isdir(d):
                names.update(n for n in os.listdir(d) if ".so" in n and not os.path.isdir(os.path.join(d, n)))
    return names


def elf_files(root):
    for top in ("usr/local", "opt/venv", "usr/lib/python3", "usr/lib/python3.13", "usr/bin"):
        base = os.path.join(root, top)
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if top == "usr/bin" and not name.startswith("python"):
                    continue
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        yield "/" + os.path.relpath(path, root)


def loader(root):
    for candidate in ("lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1"):
        if os.path.exists(os.path.join(root, candidate)):
            return "/" + candidate
    sys.exit("check_libs: no dynamic loader in the image")


def main():
    root, base = sys.argv[1], sys.argv[2]
    ld = loader(root)
    needed, missing, checked = set(), [], 0
    for elf in elf_files(root):
        if elf.endswith("/vardr-init"):
            continue
        out = subprocess.run(["chroot", root, ld, "--list", elf], capture_output=True, text=True)
        if "statically linked" in out.stdout + out.stderr:
            continue
        if out.returncode != 0:
            missing.append(f"{elf}: {out.stderr.strip() or out.stdout.strip()}")
            continue
        checked += 1
        for line in out.stdout.splitlines():
            parts = line.split()
            if "not found" in line:
                missing.append(f"{elf}: {line.strip()}")
            elif len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
                needed.add(os.path.basename(parts[2]))
    if missing:
        print("check_libs: unresolved:\n  " + "\n  ".join(missing))
        sys.exit(1)
    in_base = lib_names(base)
    in_image = lib_names(root)
    added = {n for n in in_image if n not in in_base}
    needed_beyond_base = {n for n in needed if n not in in_base}
    print(f"check_libs: {checked} ELF files resolve every library; "
          f"needed beyond the base: {' '.join(sorted(needed_beyond_base)) or 'none'}")
    print(f"check_libs: shared objects the image adds to the base's library directories: "
          f"{' '.join(sorted(added)) or 'none'}")
    if added != needed_beyond_base:
        print(f"check_libs: added but not needed: {sorted(added - needed_beyond_base)}; "
              f"needed but missing: {sorted(needed_beyond_base - added)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
