"""The app for tests/certs_watch.rs: a client of an HTTPS upstream whose TLS context is built once
per worker, at import, the way long-lived clients are (an `httpx.Client` or a `requests.Session`
made at start-up). Its trust is what `SSL_CERT_FILE` held when the worker started: a rebuilt
bundle reaches it only through a new worker (`VARDR_CERTS_RELOAD=hup` or `restart`).

`WATCH_UPSTREAM` is the upstream's URL. Says on stdout when each worker's lifespan starts and
ends, as tests/apps/service does, one write a line."""

import http.client
import os
import ssl
import urllib.parse
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

# Built once, at import: reads SSL_CERT_FILE now, never again.
CONTEXT = ssl.create_default_context()
UPSTREAM = urllib.parse.urlsplit(os.environ["WATCH_UPSTREAM"])


def say(line: str) -> None:
    """One line on stdout in one write: the workers share the pipe, and print() writes the line
    and its newline apart, so two workers' lines can interleave."""
    os.write(1, f"{line}\n".encode())


@asynccontextmanager
async def lifespan(app: FastAPI):
    say(f"ready {os.getpid()}")
    yield
    say(f"stopped {os.getpid()}")


app = FastAPI(lifespan=lifespan)


@app.get("/health")
def health() -> dict[str, object]:
    """Does not call the upstream: serves whatever the trust."""
    return {"status": "ok", "pid": os.getpid()}


@app.get("/upstream")
def upstream() -> Response:
    """One GET to the upstream over a new connection with the import-time context: 200 with the
    upstream's body, or 502 with the error (a certificate the context does not trust)."""
    connection = http.client.HTTPSConnection(
        UPSTREAM.hostname, UPSTREAM.port, context=CONTEXT, timeout=5
    )
    try:
        connection.request("GET", "/")
        body = connection.getresponse().read().decode()
    except OSError as error:  # ssl.SSLError among them
        return Response(f"{type(error).__name__}: {error}", status_code=502)
    finally:
        connection.close()
    return Response(f"{os.getpid()} {body}", status_code=200)
