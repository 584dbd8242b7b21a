"""The app of bench/watch.py's rotation figure: a bare ASGI app (no framework: the figure is about
the workers, not the routing) whose TLS trust is built once per worker, at import, the way a
long-lived client's is (an httpx.Client or a requests.Session made at start-up): a rebuilt bundle
reaches it only through a new worker.

Every request gets `PID CAS`: the worker's PID and the numbers of the bench CAs (gen_cas.py's
"bench CA N") its trust holds, so the client can tell the old trust from the new. Says on stdout
when each worker's lifespan starts and ends, as tests/apps/service does."""

import os
import ssl

# Built once, at import: reads SSL_CERT_FILE now, never again.
CONTEXT = ssl.create_default_context()
CAS = sorted(
    int(value.removeprefix("bench CA "))
    for cert in CONTEXT.get_ca_certs()
    for rdn in cert["subject"]
    for key, value in rdn
    if key == "commonName" and value.startswith("bench CA ")
)
BODY = f"{os.getpid()} {','.join(map(str, CAS)) or '-'}".encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                print(f"ready {os.getpid()}", flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print(f"stopped {os.getpid()}", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
