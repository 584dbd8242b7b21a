#!/usr/bin/env bash
# The dependency policy in deny.toml: licenses, bans (duplicate versions, wildcards) and sources.
# Installs cargo-deny if missing. Advisories are checked by .github/workflows/audit.yml instead:
# their database comes from GitHub, which CI machines here cannot reach.
# Usage: bash scripts/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
    # cargo-deny's own release profile (fat LTO, one codegen unit) is most of its build time;
    # without them it builds several times faster and still checks this graph in a second.
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
        cargo install cargo-deny --locked
fi
cargo deny --locked check licenses bans sources
