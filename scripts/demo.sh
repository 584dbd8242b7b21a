#!/usr/bin/env bash
# The main job, end to end on this machine, as a container would run it:
#   - build the static vardr-init and a venv with the example app's pinned dependencies;
#   - make a demo CA in a certs folder, and an HTTPS "upstream" whose certificate that CA signed;
#   - print the dry-run plan (certificate verdicts, bundle, exported variables, uvicorn argv);
#   - run `vardr-init` (no arguments: discover the app, run uvicorn) as PID 1 of a new PID
#     namespace, print the URL, probe /health with `vardr-init health`, and call the app's
#     /upstream endpoint, which reaches the HTTPS upstream only because the demo CA was merged
#     into the bundle the app was given;
#   - stop it with SIGTERM as `docker stop` does and report the exit status (0: graceful).
# Without root (no PID namespace) vardr-init runs as a child subreaper instead, and says so.
# `--keep` leaves the app running until Ctrl-C instead of stopping it after the checks.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

# The system tools (openssl, curl, python3-venv, util-linux, ...): installed where missing.
bash scripts/install-deps.sh
bin=$(bash scripts/build-static.sh)
app=$PWD/examples/with-deps
venv=$PWD/target/demo-venv
if ! cmp -s "$app/requirements.txt" "$venv/.requirements" 2>/dev/null; then
    echo "== making $venv from $app/requirements.txt"
    python=$(python3 -c 'import sys; print(sys.executable)') # the real interpreter, not a shim
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r "$app/requirements.txt"
    cp "$app/requirements.txt" "$venv/.requirements"
fi

work=$(mktemp -d)
upstream_pid=
outer=
cleanup() {
    [ -n "$outer" ] && kill -KILL "$outer" 2>/dev/null
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== a demo CA in $work/certs, and an HTTPS upstream signed by it"
mkdir -p "$work/certs" "$work/tmp"
bash scripts/ca-and-server.sh "$work/certs/demo-ca.crt" "vardr-init demo CA" 30 "$work/pki"
upstream_port=$(free_port)
"$venv/bin/python" - "$upstream_port" "$work/pki/server.crt" "$work/pki/server.key" <<'EOF' &
import http.server, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"upstream says hi\n")
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", port), Hello)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
EOF
upstream_pid=$!
upstream="https://127.0.0.1:$upstream_port/"

port=$(free_port)
# What a container would set: the app, the certs mount, a writable /tmp, the venv's python
# first on PATH. The machine's own CA variables are removed, as in a fresh container.
run_env=(env -u SSL_CERT_FILE -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE -u SSL_CERT_DIR
    PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" VARDR_APP_DIR="$app"
    VARDR_CERTS_DIR="$work/certs" VARDR_CA_BUNDLE="$work/tmp/custom_ca_bundle.pem"
    HOST=127.0.0.1 PORT="$port" VARDR_STOP_TIMEOUT=10)

echo
echo "== the plan: vardr-init --dry-run (writes nothing, starts nothing)"
(cd "$app" && "${run_env[@]}" "$bin" --dry-run)

if unshare -p -f --mount-proc true 2>/dev/null; then
    launcher=(unshare -p -f --mount-proc)
    echo "== starting vardr-init as PID 1 of a new PID namespace"
else
    launcher=()
    echo "== no PID namespace here (needs root): starting vardr-init as a child subreaper"
fi
(cd "$app" && exec "${run_env[@]}" "${launcher[@]}" "$bin") &
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

for _ in $(seq 100); do
    PORT=$port "$bin" health --timeout 1 >/dev/null 2>&1 && break
    sleep 0.1
done
echo
echo "== the app is at http://127.0.0.1:$port/"
echo "+ vardr-init health"
PORT=$port "$bin" health
echo "+ GET /upstream?url=$upstream (the app calls an HTTPS server signed by the demo CA)"
"$venv/bin/python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$port/upstream?url=$upstream"

echo "== process tree (host PIDs; inside the namespace vardr-init is PID 1)"
ps -o pid,ppid,stat,args --pid "$vardr" --ppid "$vardr"

if $keep; then
    echo "== --keep: running until Ctrl-C (then SIGTERM goes to vardr-init)"
    trap 'kill -TERM "$vardr"' INT
    wait "$outer" || true
    exit 0
fi
echo "== SIGTERM to vardr-init, as docker stop sends it: forwarded to uvicorn"
kill -TERM "$vardr"
status=0
wait "$outer" || status=$?
outer=
echo "== vardr-init exited with status $status"
[ "$status" -eq 0 ] && echo "   0: uvicorn shut down gracefully (vardr-init reports its re-raised SIGTERM as 0)."
exit "$status"
