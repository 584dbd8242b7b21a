#!/usr/bin/env bash
# The whole test suite, run against the shipped artifact (the static musl release binary).
# PID-namespace tests need root (unshare -p); without it they skip, except when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(bash scripts/build-static.sh)
VARDR_TEST_BIN="$bin" cargo test --locked
