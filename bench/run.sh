#!/usr/bin/env bash
# The benchmark suite: vardr-init against what users would pick instead (tini, dumb-init, a Python
# entrypoint doing the same certificate work, update-ca-certificates, a Python urllib health
# probe), on the same work, in one session. Installs its own peers: tini, bubblewrap,
# ca-certificates, file and a C compiler from apt; dumb-init (its PyPI wheel ships the binary) and
# cryptography (to make test CAs quickly) into target/bench-venv; three small C helpers.
#
#   bash bench/run.sh            full run (about 10 minutes): writes bench/results/results.json,
#                                results.md and start-overhead.svg
#   bash bench/run.sh --smoke    every step once on tiny inputs, writes nothing (for CI: it checks
#                                the suite still runs and asserts no timing)
#   bash bench/run.sh --runs N   repetitions of each timed command (default 30)
#   bash bench/run.sh --only pid1 [--vardr BIN]...
#                                only the three figures of the PID 1 refactor, each against
#                                tini-static, in under a minute: PID 1's VmRSS supervising `sleep`
#                                after a 1000-CA pass, the cached 10-CA start, the binary size;
#                                prints them, writes nothing (--json FILE to keep them)
#   bash bench/run.sh --only watch [--vardr BIN] [--runs N]
#                                only live trust (VARDR_CERTS_WATCH, bench/watch.py), each figure
#                                against restarting vardr-init, in about 4 minutes: a Kubernetes swap
#                                until the new bundle (N swaps, default 20), PID 1 and vardr-watch
#                                before and after 100 rebuilds, failed requests while uvicorn's
#                                workers roll (hup); prints them, writes nothing (--json FILE to
#                                keep them). Uses target/test-venv (uvicorn), made by
#                                scripts/test-venv.sh. --smoke also runs it, on tiny inputs
#   bash bench/run.sh --only python [--vardr BIN] [--runs N]
#                                only the Python hook's cost on a Python start (bench/python_hook.py):
#                                `python -c pass`, a certifi.where() call and a logging call with and
#                                without the hook (and eager and JSON-logs variants), and
#                                vardr-init -- python with the hook
#                                on and off, side by side, in about a minute; prints them, writes
#                                nothing (--json FILE to keep them). Uses target/test-venv's Python.
#                                --smoke also runs it, on two runs each
#   --vardr BIN                  measure BIN instead of building this tree; with --only pid1 it
#                                may be given more than once (an old and a new build, side by side)
# Needs root (PID namespaces for the inits as PID 1, bwrap for update-ca-certificates).
set -euo pipefail
command_line="bash bench/run.sh${*:+ $*}"
vardrs=()
rest=()
only=
smoke=
while [ $# -gt 0 ]; do
    case "$1" in
        --vardr) vardrs+=(--vardr "$(realpath -e "${2:?--vardr needs a path}")"); shift 2 ;;
        --vardr=*) vardrs+=(--vardr "$(realpath -e "${1#--vardr=}")"); shift ;;
        --only) only=${2:?--only needs a value}; shift 2 ;;
        --only=*) only=${1#--only=}; shift ;;
        --smoke) smoke=1; rest+=("$1"); shift ;;
        *) rest+=("$1"); shift ;;
    esac
done
cd "$(dirname "$0")/.."

missing=()
command -v tini-static >/dev/null || missing+=(tini)
command -v bwrap >/dev/null || missing+=(bubblewrap)
[ -x /usr/sbin/update-ca-certificates ] || missing+=(ca-certificates)
command -v file >/dev/null || missing+=(file)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v unshare >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The interpreter itself, not a version-manager shim whose own start-up would be measured.
python=$(python3 -c 'import sys; print(sys.executable)')
venv=target/bench-venv
if [ ! -x "$venv/bin/dumb-init" ] || ! "$venv/bin/python" -c 'import cryptography' 2>/dev/null; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt >&2
fi
helpers=target/bench-helpers
mkdir -p "$helpers"
for helper in sigchild orphans measure; do
    cc -O2 -static -Wall -Werror -o "$helpers/$helper" "bench/helpers/$helper.c"
done
if [ ${#vardrs[@]} -eq 0 ]; then
    vardrs=(--vardr "$(bash scripts/build-static.sh)")
fi

# Live trust runs the real uvicorn: the test suite's venv (scripts/test-venv.sh).
watch() {
    local app_venv
    app_venv=$(bash scripts/test-venv.sh)
    if [ ${#vardrs[@]} -ne 2 ]; then
        echo "bench: --only watch measures one --vardr" >&2
        exit 2
    fi
    "$python" bench/watch.py "${vardrs[@]}" --venv-python "$PWD/$venv/bin/python" \
        --app-python "$app_venv/bin/python" --command "$command_line" "$@"
}
if [ "$only" = watch ]; then
    watch ${rest[@]+"${rest[@]}"}
    exit
fi
# The Python hook's cost on a Python start: the test suite's venv has certifi.
python_hook() {
    local app_venv
    app_venv=$(bash scripts/test-venv.sh)
    "$python" bench/python_hook.py "${vardrs[@]:0:2}" --measure "$PWD/$helpers/measure" \
        --app-python "$app_venv/bin/python" --command "$command_line" "$@"
}
if [ "$only" = python ]; then
    python_hook ${rest[@]+"${rest[@]}"}
    exit
fi

"$python" bench/bench.py "${vardrs[@]}" --tini "$(command -v tini)" \
    --tini-static "$(command -v tini-static)" --dumb-init "$PWD/$venv/bin/dumb-init" \
    --python "$python" --venv-python "$PWD/$venv/bin/python" \
    --sigchild "$PWD/$helpers/sigchild" --orphans "$PWD/$helpers/orphans" \
    --measure "$PWD/$helpers/measure" --command "$command_line" ${only:+--only "$only"} ${rest[@]+"${rest[@]}"}
# The smoke run covers live trust too (about 20 s more); the full run's files do not include it.
if [ -n "$smoke" ] && [ -z "$only" ]; then
    watch --smoke
    python_hook --smoke
fi
