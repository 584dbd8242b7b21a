#!/usr/bin/env bash
# Footprint of vardr-init next to Debian's tini-static, measured in one run, alternating:
# binary size and linkage, and memory while supervising `sleep`. Usage: bench/footprint.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tini-static >/dev/null || [ ! -x /usr/bin/time ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends tini time
fi
bin=$(bash scripts/build-static.sh)
exec python3 bench/footprint.py --vardr "$bin" --tini "$(command -v tini-static)" "$@"
