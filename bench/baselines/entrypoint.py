#!/usr/bin/env python3
"""The Python entrypoint vardr-init replaces, written as a careful user would, as the baseline.

    python3 entrypoint.py CMD [ARG...]

Same inputs and outputs as vardr-init's certificate step, with the standard library only:
- SHA-256 over the certs directory (every regular file under it, names starting with `.`
  skipped, sorted by relative path: name and bytes) and the system bundle; when it matches the
  hash stored beside the bundle and the bundle is still there, nothing is parsed or written;
- otherwise each file is checked with the `ssl` module: no private key, every certificate in it
  loads into an SSLContext, is a CA (OpenSSL's own check: `get_ca_certs` lists only CAs) and is
  within its validity period; a bad file is skipped with a message;
- the system bundle and the accepted CAs (each once) are written to a temporary file in the
  bundle's directory, fsynced and renamed over the bundle, then the hash is stored;
- SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE are exported and CMD is exec'd.
Environment: VARDR_CERTS_DIR, VARDR_CA_BUNDLE, VARDR_SYSTEM_CA_BUNDLE (vardr-init's names and
defaults), so both can be pointed at the same files.
"""
import hashlib
import os
import re
import ssl
import sys
import tempfile
import time

CERTS_DIR = os.environ.get("VARDR_CERTS_DIR") or "/certs"
BUNDLE = os.environ.get("VARDR_CA_BUNDLE") or "/tmp/custom_ca_bundle.pem"
SYSTEM = os.environ.get("VARDR_SYSTEM_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt"
MAX_FILE = 1024 * 1024
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.S)


def log(message):
    print(f"[entrypoint] {message}", file=sys.stderr)


def inputs():
    """(relative name, bytes) of every regular file under CERTS_DIR, sorted, dot-names skipped."""
    found = []
    for root, dirs, files in os.walk(CERTS_DIR, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if not os.path.isfile(path) or os.path.getsize(path) > MAX_FILE:
                log(f"skipping {path}: not a regular file of at most {MAX_FILE} bytes")
                continue
            with open(path, "rb") as f:
                found.append((os.path.relpath(path, CERTS_DIR), f.read()))
    found.sort()
    return found


def fingerprint(files, system):
    digest = hashlib.sha256()
    for part in [SYSTEM.encode(), system] + [x for name, data in files for x in (name.encode(), data)]:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def check(name, data, now):
    """The DER certificates of a file, or None (with a message) if it must stay out."""
    if b"PRIVATE KEY" in data:
        log(f"rejected {name}: contains a private key")
        return None
    if b"-----BEGIN " in data:
        ders = [ssl.PEM_cert_to_DER_cert(block.decode("ascii")) for block in PEM_BLOCK.findall(data)]
    else:
        ders = [data]
    if not ders:
        log(f"rejected {name}: no certificate found")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        for der in ders:
            context.load_verify_locations(cadata=der)
    except (ssl.SSLError, ValueError) as e:
        log(f"rejected {name}: {e}")
        return None
    cas = context.get_ca_certs()  # OpenSSL lists only the certificates that are CAs
    if len(cas) != len(set(ders)):
        log(f"rejected {name}: a certificate in it is not a CA")
        return None
    for ca in cas:
        if not ssl.cert_time_to_seconds(ca["notBefore"]) <= now <= ssl.cert_time_to_seconds(ca["notAfter"]):
            log(f"rejected {name}: a certificate in it is expired or not yet valid")
            return None
    return ders


def build(files, system):
    now = time.time()
    seen, custom = set(), []
    for block in PEM_BLOCK.findall(system):
        seen.add(ssl.PEM_cert_to_DER_cert(block.decode("ascii")))
    for name, data in files:
        ders = check(name, data, now)
        if ders is None:
            continue
        for der in ders:
            if der not in seen:
                seen.add(der)
                custom.append(ssl.DER_cert_to_PEM_cert(der))
    if not custom:
        return False
    directory = os.path.dirname(BUNDLE) or "."
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".bundle.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(system if system.endswith(b"\n") or not system else system + b"\n")
            f.write("".join(custom).encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, BUNDLE)
    except BaseException:
        os.unlink(temp)
        raise
    log(f"bundle written: {len(custom)} custom CAs")
    return True


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: entrypoint.py CMD [ARG...]")
    files = inputs() if os.path.isdir(CERTS_DIR) else []
    export = False
    if files:
        with open(SYSTEM, "rb") as f:
            system = f.read()
        key = fingerprint(files, system)
        try:
            with open(BUNDLE + ".sha256") as f:
                cached = f.read().strip() == key and os.path.isfile(BUNDLE)
        except OSError:
            cached = False
        if cached:
            log("certificates unchanged, skipping import")
            export = True
        elif build(files, system):
            with open(BUNDLE + ".sha256", "w") as f:
                f.write(key + "\n")
            export = True
    if export:
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ[name] = BUNDLE
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
