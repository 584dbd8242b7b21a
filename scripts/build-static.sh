#!/usr/bin/env bash
# Builds the shipped artifact, the static musl vardr-init, proves it is static and at most 1 MiB,
# prints its path on stdout (messages go to stderr).
# Installs the musl target with rustup when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" >&2
fi
cargo build --locked --release --target "$target" >&2
bin="$PWD/target/$target/release/vardr-init"

# Static means: no program interpreter (PT_INTERP) and no dynamic section at all.
if readelf -lW "$bin" | grep -q 'INTERP'; then
    echo "build-static: $bin has a program interpreter: not static" >&2
    exit 1
fi
if ! readelf -d "$bin" | grep -q 'There is no dynamic section'; then
    echo "build-static: $bin has a dynamic section: not static" >&2
    exit 1
fi
# PID 1 of every container, copied into every image: the size is a budget, not an accident.
limit=1048576
size=$(stat -c %s "$bin")
if [ "$size" -gt "$limit" ]; then
    echo "build-static: $bin is $size bytes, over the limit of $limit bytes (1 MiB) by $((size - limit))." >&2
    echo "build-static: see what grew: CARGO_PROFILE_RELEASE_STRIP=false cargo bloat --release --target $target --crates" >&2
    echo "build-static: (cargo install cargo-bloat; -n 30 instead of --crates lists functions), then slim or drop" >&2
    echo "build-static: that dependency or feature; raising the limit in this script is a decision for review." >&2
    exit 1
fi
echo "build-static: $size bytes (limit $limit), no interpreter, no dynamic section: $bin" >&2
echo "$bin"
