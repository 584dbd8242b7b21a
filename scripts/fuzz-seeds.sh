#!/usr/bin/env bash
# Regenerates the fuzz seed corpus in fuzz/seeds/TARGET/ (committed: CI does not run this). The
# certificates are made with openssl like the tests' fixtures: CAs (RSA, EC, v1 root, chain),
# leaves, an expired CA, a CA that may not sign certificates, keys in several formats, and
# broken PEM. The fuzz targets judge at a fixed time (2027-01-15), inside these CAs' validity.
# Usage: bash scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"/{verdict,certs_dir,uvicorn_opts,health_response}

ssl() { openssl "$@" 2>/dev/null; }
# ca NAME KEYALG [extra req args...]: a self-signed CA, valid 20 years from today.
ca() {
    local name=$1 alg=$2
    shift 2
    ssl req -x509 -newkey "$alg" -nodes -keyout "$work/$name.key" -out "$work/$name.pem" \
        -days 7300 -subj "/CN=$name" "$@"
}
ca rsa-ca rsa:2048 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign
ca ec-ca ec -pkeyopt ec_paramgen_curve:P-256 -addext basicConstraints=critical,CA:TRUE
ca ec-ca2 ec -pkeyopt ec_paramgen_curve:P-384 -addext basicConstraints=critical,CA:TRUE
ca no-sign ec -pkeyopt ec_paramgen_curve:P-256 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=digitalSignature
ca leaf-self ec -pkeyopt ec_paramgen_curve:P-256 -addext basicConstraints=CA:FALSE
ca no-bc ec -pkeyopt ec_paramgen_curve:P-256 -addext subjectKeyIdentifier=hash
ca expired ec -pkeyopt ec_paramgen_curve:P-256 -addext basicConstraints=critical,CA:TRUE -days 1
# A v1 root: no extensions at all.
ssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/v1.key" \
    -subj /CN=v1-root -out "$work/v1.csr"
ssl x509 -req -in "$work/v1.csr" -signkey "$work/v1.key" -days 7300 -out "$work/v1.pem"
# An intermediate signed by the RSA CA, and a leaf signed by it.
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=keyCertSign\n' >"$work/int.ext"
ssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/int.key" \
    -subj /CN=intermediate -out "$work/int.csr"
ssl x509 -req -in "$work/int.csr" -CA "$work/rsa-ca.pem" -CAkey "$work/rsa-ca.key" \
    -CAcreateserial -days 3650 -extfile "$work/int.ext" -out "$work/int.pem"
printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:example.test\n' >"$work/leaf.ext"
ssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/leaf.key" \
    -subj /CN=leaf -out "$work/leaf.csr"
ssl x509 -req -in "$work/leaf.csr" -CA "$work/int.pem" -CAkey "$work/int.key" \
    -CAcreateserial -days 365 -extfile "$work/leaf.ext" -out "$work/leaf.pem"

v=$out/verdict
for name in rsa-ca ec-ca no-sign leaf-self no-bc expired v1 int leaf; do
    cp "$work/$name.pem" "$v/$name.pem"
done
ssl x509 -in "$work/ec-ca.pem" -outform DER -out "$v/ec-ca.der"
cat "$work/int.pem" "$work/rsa-ca.pem" >"$v/chain.pem"
cat "$work/ec-ca.pem" "$work/leaf.pem" >"$v/ca-then-leaf.pem"
cat "$work/ec-ca.pem" "$work/ec-ca.key" >"$v/ca-with-key.pem"
cp "$work/ec-ca.key" "$v/pkcs8.key"
ssl ec -in "$work/ec-ca.key" -out "$v/sec1.key"
ssl pkey -in "$work/ec-ca.key" -pubout -out "$v/public.pem"
ssl x509 -in "$work/ec-ca.pem" -text >"$v/with-text.pem"
sed 's/$/\r/' "$work/ec-ca.pem" >"$v/crlf.pem"
sed 's/CERTIFICATE/TRUSTED CERTIFICATE/' "$work/ec-ca.pem" >"$v/trusted.pem"
grep -v 'END CERTIFICATE' "$work/ec-ca.pem" >"$v/truncated.pem"
sed '2s/^M/!/' "$work/ec-ca.pem" >"$v/bad-base64.pem"
printf 'hello\n' >"$v/text"
: >"$v/empty"

# certs_dir: the system bundle, then %%FILE:name<newline>bytes per file (see its target).
d=$out/certs_dir
file() { printf '%%%%FILE:%s\n' "$1"; cat "${@:2}"; }
{ cat "$work/rsa-ca.pem" "$work/v1.pem"; file ca.pem "$work/ec-ca.pem"; } >"$d/one-ca"
{
    cat "$work/rsa-ca.pem" "$work/v1.pem"
    file a/ec.crt "$work/ec-ca.pem"
    file b.pem "$work/ec-ca2.pem" "$work/int.pem"
    file dup-of-system.pem "$work/rsa-ca.pem"
    file dup-of-a.pem "$work/ec-ca.pem"
    file leaf.pem "$work/leaf.pem"
    file key.pem "$work/ec-ca.pem" "$work/ec-ca.key"
    file .hidden.pem "$work/ec-ca2.pem"
    file der.cer "$v/ec-ca.der"
    file empty /dev/null
} >"$d/mixed"
{ printf '# no system certificates\n'; file ca.pem "$work/ec-ca.pem"; } >"$d/text-system"
{ cat "$work/ec-ca.key"; file ca.pem "$work/ec-ca.pem"; } >"$d/key-in-system"
{ head -c 300 "$work/rsa-ca.pem"; file ca.pem "$work/ec-ca.pem"; } >"$d/truncated-system"
{ file ca.pem "$work/ec-ca.pem"; file ../up.pem "$work/ec-ca2.pem"; } >"$d/no-system"
# 0x01 in a name is a newline (see the target).
{ cat "$work/v1.pem"; file "$(printf 'two\001lines.pem')" "$work/ec-ca.pem"; } >"$d/newline-name"

u=$out/uvicorn_opts
printf '%s' '--root-path "/my api" --log-level debug' >"$u/quoted"
printf '%s' "--proxy-headers --forwarded-allow-ips='*' --timeout-graceful-shutdown=5" >"$u/single"
printf '%s' '--header X-A:\ b # comment' >"$u/backslash-comment"
printf '%s' '--root-path "/unbalanced' >"$u/unbalanced"
printf '%s' '--reload \' >"$u/trailing-backslash"
printf '\t--workers\n4  ' >"$u/blanks"

h=$out/health_response
printf 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}' >"$h/ok"
printf 'HTTP/1.1 204 No Content\r\n\r\n' >"$h/no-content"
printf 'HTTP/1.1 307 Temporary Redirect\r\nlocation: /health/\r\n\r\n' >"$h/redirect"
printf 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n\r\n' >"$h/interim"
printf 'HTTP/1.0 200 \r\n\r\n' >"$h/empty-reason"
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n' >"$h/upgrade"
printf 'HTTP/1.1 200 OK\nServer: bare-lf\n\n' >"$h/bare-lf"
printf 'SSH-2.0-OpenSSH_9.6\r\n\r\n' >"$h/ssh"
printf 'HTTP/1.1 200 OK\r\nContent-Ty' >"$h/truncated"
echo "seeds written to $out: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
