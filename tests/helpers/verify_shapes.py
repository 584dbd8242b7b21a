"""The runtime's own verdict on CA certificates: a real TLS handshake through this Python.

Reads a JSON list of cases on stdin, each {"name", "cafile", "cert", "key", "host"}. For each,
a TLS server on 127.0.0.1 presents `cert` (the chain, leaf first) with `key`; a client built by
`ssl.create_default_context(cafile=...)`, the default settings an app gets, connects with
`server_hostname=host`. Prints one JSON object: name -> "ok", "load: ERROR" (the cafile would not
load) or "verify: ERROR" (the handshake failed). Prints the runtime's version and OpenSSL first,
under the key "_runtime".
"""

import json
import socket
import ssl
import sys
import threading


def serve(server_ctx, listener):
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    try:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)
    except (OSError, ssl.SSLError):
        pass


def handshake(case):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.set_ciphers("ALL:@SECLEVEL=0")
    server_ctx.load_cert_chain(case["cert"], case["key"])
    try:
        client_ctx = ssl.create_default_context(cafile=case["cafile"])
    except (ssl.SSLError, OSError) as error:
        return "load: " + str(error)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    thread = threading.Thread(target=serve, args=(server_ctx, listener), daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=case["host"]) as tls:
                tls.sendall(b"x")
        return "ok"
    except ssl.SSLCertVerificationError as error:
        return "verify: " + (error.verify_message or str(error))
    except (ssl.SSLError, OSError) as error:
        return "verify: " + str(error)
    finally:
        listener.close()
        thread.join(10)


def main():
    cases = json.load(sys.stdin)
    out = {"_runtime": "%d.%d.%d %s" % (sys.version_info[:3] + (ssl.OPENSSL_VERSION,))}
    for case in cases:
        out[case["name"]] = handshake(case)
    json.dump(out, sys.stdout)


main()
