"""The app of tests/json_logs.rs: logs the way apps do (basicConfig at import, a named logger, an
`extra=` field, a warning, an exception in a request), and prints nothing."""

import logging
import warnings

from fastapi import FastAPI

# Common in apps: with JSON logs its level still applies and its lines are JSON.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
log = logging.getLogger("app")
app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/warn")
def warn() -> dict[str, str]:
    log.warning('he said "hi"\nand left')
    return {}


@app.get("/info")
def info() -> dict[str, str]:
    log.info("order %s placed", 42, extra={"order_id": 42, "tags": ["a", "b"]})
    warnings.warn("this endpoint is deprecated", FutureWarning, stacklevel=1)
    return {}


@app.get("/boom")
def boom() -> dict[str, str]:
    raise RuntimeError("boom")
