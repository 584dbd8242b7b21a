"""The test service for tests/app.rs: says on stdout when each worker's lifespan starts and ends,
and has one endpoint per behaviour under test."""

import logging
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response


@asynccontextmanager
async def lifespan(app: FastAPI):
    print(f"ready {os.getpid()}", flush=True)
    yield
    print(f"stopped {os.getpid()}", flush=True)


app = FastAPI(lifespan=lifespan)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/root-path")
def root_path(request: Request) -> str:
    return request.scope["root_path"]


@app.get("/log-level")
def log_level() -> str:
    return logging.getLevelName(logging.getLogger("uvicorn.error").getEffectiveLevel())


@app.get("/status/{code}")
def status(code: int) -> Response:
    return Response(status_code=code)


@app.get("/double-fork")
def double_fork() -> dict[str, int]:
    """Leaves a short-lived orphan behind: the grandchild outlives its parent and is re-parented
    to PID 1, which must reap it."""
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(0.1)
        os._exit(0)
    os.waitpid(child, 0)
    return {"child": child}
