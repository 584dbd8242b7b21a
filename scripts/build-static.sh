#!/usr/bin/env bash
# Builds the shipped artifact, the static musl vardr-init, proves it is static and at most 1.25 MiB,
# prints its path on stdout (messages go to stderr).
#
#   scripts/build-static.sh                    x86_64-unknown-linux-musl
#   scripts/build-static.sh --target aarch64   aarch64-unknown-linux-musl (cross-built, rust-lld)
#
# The binary carries its dependency list (cargo auditable: a .dep-v0 section that Trivy, grype,
# syft and `cargo audit bin` read) and is reproducible: the paths of this checkout, of
# CARGO_HOME and of the toolchain are remapped, and nothing records the time, so two checkouts of
# one commit build the same bytes (.ci/run checks it). Installs the musl target with rustup and
# cargo-auditable (pinned) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
while [ $# -gt 0 ]; do
    case "$1" in
        --target)
            case "${2:-}" in
                x86_64 | amd64 | x86_64-unknown-linux-musl) target=x86_64-unknown-linux-musl ;;
                aarch64 | arm64 | aarch64-unknown-linux-musl) target=aarch64-unknown-linux-musl ;;
                *) echo "build-static: --target takes x86_64 or aarch64, not '${2:-}'" >&2; exit 2 ;;
            esac
            shift 2 ;;
        *) echo "build-static: unknown argument '$1' (usage: build-static.sh [--target x86_64|aarch64])" >&2; exit 2 ;;
    esac
done

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" >&2
fi
auditable_version=0.7.7
if ! command -v cargo-auditable >/dev/null; then
    cargo install --locked cargo-auditable --version "$auditable_version" >&2
fi

# Reproducible: every absolute path that can reach the binary (panic locations of this crate and
# of its dependencies) is remapped to a fixed name. Added to .cargo/config.toml's rustflags for
# the target (--config merges arrays), not in RUSTFLAGS, which would replace them.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
remap=("$PWD=/vardr-init" "$(cd "$cargo_home" && pwd -P)=/cargo" "$(rustc --print sysroot)=/rustup")
[ "$(cd "$cargo_home" && pwd -P)" = "$cargo_home" ] || remap+=("$cargo_home=/cargo")
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    remap+=("$(mkdir -p "$CARGO_TARGET_DIR" && cd "$CARGO_TARGET_DIR" && pwd -P)=/target")
fi
flags=""
for r in "${remap[@]}"; do flags+="\"--remap-path-prefix=$r\", "; done
cargo auditable build --locked --release --target "$target" \
    --config "target.$target.rustflags = [${flags%, }]" >&2
bin="${CARGO_TARGET_DIR:-$PWD/target}/$target/release/vardr-init"

# Static means: no program interpreter (PT_INTERP) and no dynamic section at all.
if readelf -lW "$bin" | grep -q 'INTERP'; then
    echo "build-static: $bin has a program interpreter: not static" >&2
    exit 1
fi
if ! readelf -d "$bin" | grep -q 'There is no dynamic section'; then
    echo "build-static: $bin has a dynamic section: not static" >&2
    exit 1
fi
# The dependency list scanners read (cargo auditable).
if ! readelf -SW "$bin" | grep -q '\.dep-v0'; then
    echo "build-static: $bin has no .dep-v0 section: cargo auditable did not embed the dependency list" >&2
    exit 1
fi
# PID 1 of every container, copied into every image: the size is a budget, not an accident.
limit=1310720
size=$(stat -c %s "$bin")
if [ "$size" -gt "$limit" ]; then
    echo "build-static: $bin is $size bytes, over the limit of $limit bytes (1.25 MiB) by $((size - limit))." >&2
    echo "build-static: see what grew: CARGO_PROFILE_RELEASE_STRIP=false cargo bloat --release --target $target --crates" >&2
    echo "build-static: (cargo install cargo-bloat; -n 30 instead of --crates lists functions), then slim or drop" >&2
    echo "build-static: that dependency or feature; raising the limit in this script is a decision for review." >&2
    exit 1
fi
echo "build-static: $target: $size bytes (limit $limit), no interpreter, no dynamic section, dependency list embedded: $bin" >&2
echo "$bin"
