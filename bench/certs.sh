#!/usr/bin/env bash
# `vardr-init certs` with N custom CAs plus the system bundle: cold (no cache record: parse, merge,
# write, verify) and cached (inputs unchanged: hash and reuse). Wall time with hyperfine, peak RSS
# with GNU time; medians with min-max; asserts nothing. The CAs are made by openssl, one key for
# all, in a temporary directory. Usage: bench/certs.sh [--counts "10 1000"] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
counts="10 1000"
runs=20
while [ $# -gt 0 ]; do
    case $1 in
    --counts) counts=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: bench/certs.sh [--counts \"10 1000\"] [--runs N]" >&2; exit 2 ;;
    esac
done
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ] || ! command -v openssl >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends hyperfine time openssl
fi
bin=$(bash scripts/build-static.sh)
system=/etc/ssl/certs/ca-certificates.crt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$work/key.pem" 2>/dev/null

echo "system bundle: $system ($(grep -c 'BEGIN CERTIFICATE' "$system") certificates); $runs runs each"
echo "| custom CAs | cold: time, ms | cold: peak RSS, KiB | cached: time, ms | cached: peak RSS, KiB |"
echo "|---|---|---|---|---|"
for n in $counts; do
    dir=$work/certs-$n
    mkdir -p "$dir"
    for i in $(seq "$n"); do
        openssl req -x509 -key "$work/key.pem" -subj "/CN=bench CA $i" -days 30 \
            -addext basicConstraints=critical,CA:TRUE -out "$dir/ca$i.crt" 2>/dev/null
    done
    bundle=$work/bundle-$n.pem
    run=(env VARDR_CERTS_DIR="$dir" VARDR_CA_BUNDLE="$bundle" VARDR_SYSTEM_CA_BUNDLE="$system" "$bin" certs)
    hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$work/t-$n.json" \
        --prepare "rm -f $bundle.sha256" --prepare true \
        -n cold "${run[*]}" -n cached "${run[*]}" >/dev/null
    for _ in $(seq "$runs"); do
        rm -f "$bundle.sha256"
        /usr/bin/time -f %M -a -o "$work/rss-cold-$n" "${run[@]}" >/dev/null 2>&1
        /usr/bin/time -f %M -a -o "$work/rss-cached-$n" "${run[@]}" >/dev/null 2>&1
    done
    python3 - "$work" "$n" <<'PY'
import json, statistics, sys
work, n = sys.argv[1], sys.argv[2]
t = {r["command"]: r["times"] for r in json.load(open(f"{work}/t-{n}.json"))["results"]}
def cell(xs, scale=1, fmt="{:.1f}"):
    xs = [x * scale for x in xs]
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"
rss = lambda kind: [int(x) for x in open(f"{work}/rss-{kind}-{n}").read().split()]
print(f"| {n} | {cell(t['cold'], 1000)} | {cell(rss('cold'), fmt='{:.0f}')} | "
      f"{cell(t['cached'], 1000)} | {cell(rss('cached'), fmt='{:.0f}')} |")
PY
done
