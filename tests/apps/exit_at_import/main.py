"""Exits with status 0 while being imported, before uvicorn serves anything: uvicorn then exits 0
too, and only vardr-init can tell that a server finishing by itself is a failure.
EXIT_WITH=sys (the default) raises SystemExit(0); EXIT_WITH=os ends the process on the spot."""

import os
import sys

from fastapi import FastAPI

if os.environ.get("EXIT_WITH", "sys") == "os":
    os._exit(0)
sys.exit(0)

app = FastAPI()
