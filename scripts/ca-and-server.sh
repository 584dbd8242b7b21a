#!/usr/bin/env bash
# Makes a P-256 CA and a server certificate for 127.0.0.1 signed by it, with openssl; the demo and
# the container tests use it for their HTTPS upstream.
# Usage: bash scripts/ca-and-server.sh CA_CERT CN DAYS PKI_DIR
#   CA_CERT  where the CA certificate goes (into a certs folder, for vardr-init to import)
#   PKI_DIR  gets ca.key, server.key and server.crt (and the CSR, extensions and serial file)
set -euo pipefail
ca_cert=$1 cn=$2 days=$3 pki=$4
mkdir -p "$pki" "$(dirname "$ca_cert")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=$cn" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$pki/ca.key" -out "$ca_cert" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$pki/server.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$ca_cert" -CAkey "$pki/ca.key" \
    -CAserial "$pki/ca.srl" -CAcreateserial -days "$days" -extfile "$pki/server.ext" \
    -out "$pki/server.crt" 2>/dev/null
