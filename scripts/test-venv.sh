#!/usr/bin/env bash
# The venv of real peers (FastAPI, uvicorn, requests, httpx: tests/requirements.txt) that the
# tests and the live-trust benchmark run: target/test-venv, made from the real interpreter (python3
# may be a pyenv shim), remade when tests/requirements.txt changes. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/target/test-venv
if ! cmp -s tests/requirements.txt "$venv/.requirements" 2>/dev/null; then
    python=$(python3 -c 'import sys; print(sys.executable)')
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2
    cp tests/requirements.txt "$venv/.requirements"
fi
echo "$venv"
