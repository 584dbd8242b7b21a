#!/usr/bin/env bash
# The main job, end to end on this machine: build the static vardr-init, run a real web server
# under it as PID 1 of a fresh PID namespace (as in a container), probe it, show the process
# tree, stop it with SIGTERM as `docker stop` does, and report the exit status.
# Without root (no PID namespace) vardr-init runs as a child subreaper instead, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(bash scripts/build-static.sh)
python=$(python3 -c 'import sys; print(sys.executable)')
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
site=$(mktemp -d)
echo "hello from a server supervised by vardr-init" >"$site/index.html"
trap 'rm -rf "$site"' EXIT

echo "== the binary"
ls -l "$bin"
file "$bin" 2>/dev/null || true

if unshare -p -f --mount-proc true 2>/dev/null; then
    launcher=(unshare -p -f --mount-proc)
    echo "== starting vardr-init as PID 1 of a new PID namespace"
else
    launcher=()
    echo "== no PID namespace here (needs root): starting vardr-init as a child subreaper"
fi
echo "+ ${launcher[*]} vardr-init -- $python -m http.server $port --bind 127.0.0.1 --directory $site"
"${launcher[@]}" "$bin" -- "$python" -m http.server "$port" --bind 127.0.0.1 --directory "$site" &
outer=$!

# vardr-init's host PID: unshare's forked child, or the background job itself.
vardr=$outer
if [ ${#launcher[@]} -gt 0 ]; then
    for _ in $(seq 100); do
        vardr=$(cut -d' ' -f1 "/proc/$outer/task/$outer/children" 2>/dev/null || true)
        [ -n "$vardr" ] && break
        sleep 0.05
    done
fi

url="http://127.0.0.1:$port/"
for _ in $(seq 100); do
    "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null && break
    sleep 0.1
done
echo "== serving at $url"
"$python" -c "import urllib.request, sys; print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())" "$url"

echo "== process tree (host PIDs; inside the namespace vardr-init is PID 1, the server PID 2)"
ps -o pid,ppid,pgid,stat,args --pid "$vardr" --ppid "$vardr"

echo "== SIGTERM to vardr-init, as docker stop sends it: forwarded to the server"
kill -TERM "$vardr"
status=0
wait "$outer" || status=$?
echo "== vardr-init exited with status $status"
if [ "$status" -eq 143 ]; then
    echo "   143 = 128 + 15: the server has no SIGTERM handler and died of the forwarded signal;"
    echo "   vardr-init passed that on exactly as the shell and tini do."
fi
