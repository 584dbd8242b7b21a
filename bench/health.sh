#!/usr/bin/env bash
# `vardr-init health` next to the probe images without curl use instead,
# `python3 -c "import urllib.request ..."`, against the same local HTTP server, in one run,
# alternating: wall time (hyperfine) and peak RSS (GNU time). Reports medians and ratios; asserts
# nothing. Usage: bench/health.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=30
[ "${1:-}" = "--runs" ] && runs=$2

if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends hyperfine time
fi
bin=$(bash scripts/build-static.sh)
# The interpreter a slim image has; the shim's own start-up must not be measured.
python=$(python3 -c 'import sys; print(sys.executable)')
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" - "$port" <<'PY' &
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"status":"ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
PY
server=$!
trap 'kill $server' EXIT
url="http://127.0.0.1:$port/health"
probe_py="import sys, urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=3).status < 300 else 1)"
for _ in $(seq 50); do "$bin" health --url "$url" >/dev/null 2>&1 && break; sleep 0.1; done

out=$(mktemp -d)
hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$out/time.json" \
    -n vardr-init "$bin health --url $url" \
    -n python-urllib "$python -c '$probe_py' $url" >/dev/null
# Peak RSS, alternating so both see the same machine state.
for _ in $(seq "$runs"); do
    /usr/bin/time -f %M -a -o "$out/rss.vardr" "$bin" health --url "$url" >/dev/null
    /usr/bin/time -f %M -a -o "$out/rss.python" "$python" -c "$probe_py" "$url"
done
"$python" - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
t = {r["command"]: r["times"] for r in json.load(open(f"{out}/time.json"))["results"]}
rss = {name: [int(x) for x in open(f"{out}/rss.{name}").read().split()] for name in ("vardr", "python")}
def row(label, a, b, unit, scale=1):
    ma, mb = statistics.median(a) * scale, statistics.median(b) * scale
    print(f"| {label} | {ma:.2f} ({min(a)*scale:.2f}-{max(a)*scale:.2f}) | {mb:.2f} ({min(b)*scale:.2f}-{max(b)*scale:.2f}) | {ma/mb:.3f} |")
print(f"{len(t['vardr-init'])} runs each (time: hyperfine; peak RSS: GNU time, alternating); medians (min-max)")
print("| metric | vardr-init health | python3 urllib | ratio |")
print("|---|---|---|---|")
row("wall time, ms", t["vardr-init"], t["python-urllib"], "ms", 1000)
row("peak RSS, KiB", rss["vardr"], rss["python"], "KiB")
PY
rm -rf "$out"
