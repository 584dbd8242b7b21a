"""An app that calls out over HTTPS, to show a custom CA in /certs reaching Python clients.

httpx verifies with the file named by SSL_CERT_FILE when it is set (certifi's bundle otherwise),
and vardr-init points SSL_CERT_FILE at the merged bundle.
"""

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/upstream")
def upstream(url: str):
    """GET `url` with default verification: its status, or 502 with why it failed (TLS included)."""
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        return JSONResponse(status_code=502, content={"error": str(exc)})
    return {"status": response.status_code}
