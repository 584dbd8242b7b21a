#!/usr/bin/env bash
# The whole test suite, run against the shipped artifact (the static musl release binary).
# PID-namespace tests need root (unshare -p); without it they skip, except when CI=true.
# Tests that need real FastAPI, uvicorn, requests and httpx use a venv made here from
# tests/requirements.txt (target/test-venv, rebuilt when that file changes).
set -euo pipefail
cd "$(dirname "$0")/.."

# The system tools the tests need (bubblewrap, strace, qemu-user, ...): installed where missing.
bash scripts/install-deps.sh
venv=$(bash scripts/test-venv.sh)

bin=$(bash scripts/build-static.sh)
# The dependency list the binary carries (cargo auditable) names every crate it links.
python3 scripts/check-dependency-list.py "$bin" x86_64-unknown-linux-musl
# --no-fail-fast: a red run reports every failing test binary, not only the first.
VARDR_TEST_BIN="$bin" VARDR_TEST_VENV="$venv" cargo test --locked --no-fail-fast
