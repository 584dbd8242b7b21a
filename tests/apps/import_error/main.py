"""Fails while being imported, as an app with a bug or a missing setting does."""

from fastapi import FastAPI

raise RuntimeError("this app fails at import")

app = FastAPI()
