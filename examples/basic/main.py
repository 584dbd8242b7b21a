"""The smallest app vardr-init runs: discovered as `main:app`, probed by `vardr-init health`."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/")
def root() -> dict[str, str]:
    return {"message": "Hello from FastAPI, supervised by vardr-init"}
