"""The client matrix (tests/helpers/client_matrix.py) inside a uvicorn worker, for tests/clients.rs:
GET /matrix runs every client in this process, against the peers whose ports are in
VARDR_TEST_MATRIX_PORTS (tls_servers.py's `ready` JSON), and answers the verdicts."""

import json
import os
import sys
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "helpers"))
import client_matrix  # noqa: E402  (found through the line above)

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/matrix")
def matrix() -> dict[str, str]:
    # A plain (sync) endpoint: it runs in a worker thread, where the async clients get their own
    # event loops.
    return client_matrix.run(json.loads(os.environ["VARDR_TEST_MATRIX_PORTS"]))
