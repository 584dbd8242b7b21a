"""A lifespan whose shutdown never returns: only VARDR_STOP_TIMEOUT ends this server."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app: FastAPI):
    print("ready", flush=True)
    yield
    print("stopping", flush=True)
    await asyncio.Event().wait()


app = FastAPI(lifespan=lifespan)
