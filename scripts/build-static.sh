#!/usr/bin/env bash
# Builds the shipped artifact, the static musl vardr-init, proves it is static, prints its path.
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
echo "build-static: $(stat -c %s "$bin") bytes, no interpreter, no dynamic section: $bin" >&2
echo "$bin"
