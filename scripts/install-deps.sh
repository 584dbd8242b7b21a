#!/usr/bin/env bash
# The system tools the tests, the demo and CI need, installed where missing: the one list, called
# by scripts/test.sh, scripts/demo.sh and .ci/run (tests/dev_tools.rs checks that every tool a
# test runs is here).
# With root and apt-get it installs what is missing (Debian, Ubuntu); without them it names what
# is missing and how to get it, and goes on (the tests that need a missing tool skip, or fail when
# CI=true). Messages go to stderr.
set -euo pipefail

missing=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need readelf binutils
need unshare util-linux
need setpriv util-linux
need nsenter util-linux
need python3 python3
need openssl openssl
need curl curl
need bwrap bubblewrap
need strace strace
need qemu-aarch64-static qemu-user-static
# python3 -m venv is a package of its own on Debian; a pyenv python has it built in.
if command -v python3 >/dev/null 2>&1 && ! python3 -m venv --help >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
[ ${#missing[@]} -gt 0 ] || exit 0

# One package may cover two commands (util-linux): install each once.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
    echo "install-deps: missing ${missing[*]} (Debian: apt-get install ${missing[*]}, as root);" \
        "the tests that need them skip (CI=true: fail)" >&2
fi
