#!/usr/bin/env bash
# The dependency policy in deny.toml: licenses, bans (duplicate versions, wildcards) and sources.
# Installs cargo-deny if missing. Advisories are checked by .github/workflows/audit.yml instead:
# their database comes from GitHub, which CI machines here cannot reach.
# Usage: bash scripts/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
    # A tool run once on a small graph: built unoptimised, without its release profile's fat LTO
    # and single codegen unit, it costs a third of the CPU time and still checks in a second.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 cargo install cargo-deny --locked
fi
cargo deny --locked check licenses bans sources
