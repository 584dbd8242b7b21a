"""Reads the dependency list cargo auditable embedded in a vardr-init binary (the ELF section
.dep-v0: zlib-compressed JSON) and checks it against Cargo.lock and what cargo builds.

    python3 scripts/check-dependency-list.py BINARY TARGET_TRIPLE

Fails (exit 1) when:
- the binary has no dependency list;
- a crate the binary links (`cargo tree -e normal,no-proc-macro --target TRIPLE`) is missing from
  it, or listed with another version, or listed as a build-time crate: a scanner would miss it;
- it lists a crate that is not in Cargo.lock with that version and source;
- it lists a crate as linked that the build neither links nor runs at compile time, unless that
  crate is in the graph only through dev-dependencies: `cargo metadata`, which cargo auditable
  reads, unifies features with dev-dependencies and so over-reports such crates (known:
  rust-secure-code/cargo-auditable#66); they are printed, never silently accepted.

Prints the crates read back from the binary, each with how it is used.
"""

import json
import os
import struct
import subprocess
import sys
import tomllib
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    print(f"check-dependency-list: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def elf_section(path, wanted):
    """The bytes of section `wanted` of a 64-bit little-endian ELF file (x86_64 and aarch64)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        fail(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    names = header(shstrndx)
    strtab = data[names[4] : names[4] + names[5]]
    for i in range(shnum):
        name_off, _, _, _, offset, size = header(i)
        name = strtab[name_off : strtab.index(b"\0", name_off)].decode()
        if name == wanted:
            return data[offset : offset + size]
    return None


def cargo_tree(target, edges):
    """{(name, version)} of `cargo tree` with these edge kinds, for this target."""
    out = subprocess.run(
        ["cargo", "tree", "--locked", "-e", edges, "--target", target, "--prefix", "none",
         "--format", "{p}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    crates = set()
    for line in out.splitlines():
        if line.strip():
            name, version = line.split()[:2]
            crates.add((name, version.removeprefix("v")))
    return crates


def main():
    if len(sys.argv) != 3:
        fail("usage: check-dependency-list.py BINARY TARGET_TRIPLE")
    binary, target = sys.argv[1], sys.argv[2]
    section = elf_section(binary, ".dep-v0")
    if section is None:
        fail(f"{binary} has no .dep-v0 section: not built with cargo auditable")
    packages = json.loads(zlib.decompress(section))["packages"]
    embedded = {(p["name"], p["version"]): p for p in packages}

    with open(os.path.join(ROOT, "Cargo.lock"), "rb") as f:
        lock = {(p["name"], p["version"]): p for p in tomllib.load(f)["package"]}

    linked = cargo_tree(target, "normal,no-proc-macro")
    compile_time = cargo_tree(target, "normal,build") - linked
    in_graph = cargo_tree(target, "all")

    errors = []
    for crate in sorted(linked):
        p = embedded.get(crate)
        if p is None:
            errors.append(f"{crate[0]} {crate[1]} is linked but not listed")
        elif p.get("kind", "runtime") != "runtime":
            errors.append(f"{crate[0]} {crate[1]} is linked but listed as kind {p['kind']!r}")
    for (name, version), p in sorted(embedded.items()):
        locked = lock.get((name, version))
        if locked is None:
            errors.append(f"{name} {version} is listed but not in Cargo.lock")
            continue
        source = "crates.io" if locked.get("source", "").startswith("registry+") else "local"
        if p.get("source", "local") != source:
            errors.append(f"{name} {version}: listed source {p.get('source')!r}, Cargo.lock {source!r}")

    rows = []
    over_reported = []
    for crate, p in sorted(embedded.items()):
        kind = p.get("kind", "runtime")
        if crate in linked:
            use = "linked (root)" if p.get("root") else "linked"
        elif crate in compile_time:
            use = f"compile time only (proc-macro or build script; listed as {kind})"
        elif crate in in_graph:
            use = (f"NOT BUILT: in the graph only through dev-dependencies (listed as {kind}; "
                   f"cargo metadata over-reports it)")
            over_reported.append(crate)
        else:
            errors.append(f"{crate[0]} {crate[1]} is listed but not in the dependency graph at all")
            use = "NOT IN THE GRAPH"
        rows.append(f"  {crate[0]} {crate[1]}: {use}")

    print(f"dependency list of {binary} ({target}): {len(embedded)} crates, "
          f"{len(linked)} linked, as `cargo tree -e normal,no-proc-macro` says:")
    print("\n".join(rows))
    if over_reported:
        print(f"over-reported (listed, not built; cargo-auditable#66): "
              f"{', '.join(f'{n} {v}' for n, v in over_reported)}")
    if errors:
        fail("\n  ".join(["the embedded dependency list does not match the build:"] + errors))
    print(f"check-dependency-list: every one of the {len(linked)} linked crates is listed with its "
          f"Cargo.lock version; every listed crate is in Cargo.lock")


main()
