#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time, starting from the committed seeds
# (fuzz/seeds/TARGET) and any corpus grown by earlier runs (fuzz/corpus/TARGET, not committed).
# Installs cargo-fuzz and the nightly toolchain when missing. A crash stops the script with exit 1
# and leaves the input in fuzz/artifacts/TARGET/; reproduce it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`.
# Usage: bash scripts/fuzz.sh [--seconds N] [--sanitizer address|none] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
sanitizer=address
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --sanitizer) sanitizer=$2; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
    # Built unoptimised and without LTO: 50 s instead of 90 here, and it only drives cargo.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 cargo install cargo-fuzz --locked
fi
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)

# The certs_dir target writes its files under TMPDIR: a directory of this run's own, on tmpfs
# when there is one, removed at the end.
TMPDIR=$(mktemp -d "$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/vardr-fuzz.XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

start=$SECONDS
cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"
echo "fuzz: built in $((SECONDS - start)) s"
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    start=$SECONDS
    log=$TMPDIR/$target.log
    if ! cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" \
        | sed 's/^stat:://' | tr -s ' \n' ' ')
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)
    echo "fuzz: $target ok in $((SECONDS - start)) s: $cov; $stats"
done
