#!/usr/bin/env bash
# Two builds of the same commit must be byte-identical: HEAD in two directories of different
# names and depths (this checkout when it is clean, and a clone of it; else two clones), built one
# after the other (so at different times) by
# scripts/build-static.sh, each in its own target directory, with the one CARGO_HOME of this
# machine. Prints both SHA-256; exit 1 if they differ (then diffoscope on the two binaries shows
# where). Options are passed to build-static.sh (--target aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse HEAD)
work=$(mktemp -d /var/tmp/vardr-repro.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A clean checkout (CI's fresh clone) is the first of the two: its build is usually there already.
if [ -z "$(git status --porcelain)" ]; then
    dirs=("$PWD" "$work/second/clone-of-vardr-init")
else
    dirs=("$work/a" "$work/second/clone-of-vardr-init")
fi
sums=()
for dir in "${dirs[@]}"; do
    if [ "$dir" != "$PWD" ]; then
        git clone --quiet --no-checkout "$PWD" "$dir"
        git -C "$dir" checkout --quiet --detach "$commit"
    fi
    bin=$(cd "$dir" && bash scripts/build-static.sh "$@")
    sums+=("$(sha256sum "$bin" | cut -d' ' -f1)")
    echo "reproducible: $(date -u +%H:%M:%S) $dir: ${sums[-1]}"
done
if [ "${sums[0]}" != "${sums[1]}" ]; then
    echo "reproducible: FAIL: two builds of $commit differ (${sums[0]} vs ${sums[1]})" >&2
    exit 1
fi
echo "reproducible: ${commit:0:12} built in two directories, the same bytes: sha256 ${sums[0]}"
