"""The container tests' app, mounted read-only at /app over the image's own.

/upstream is examples/with-deps' endpoint (httpx, default verification, so it trusts what
SSL_CERT_FILE names). The rest report what only the inside of the container can see: who PID 1
is, which processes are zombies, and a double fork that leaves an orphan for PID 1 to reap.
"""

import os
import time

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/upstream")
def upstream(url: str):
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        return JSONResponse(status_code=502, content={"error": str(exc)})
    return {"status": response.status_code, "body": response.text}


@app.get("/pid1")
def pid1() -> dict:
    with open("/proc/1/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    with open("/proc/1/comm") as f:
        comm = f.read().strip()
    return {"comm": comm, "argv": argv, "me": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
            "ssl_cert_file": os.environ.get("SSL_CERT_FILE")}


@app.get("/double-fork")
def double_fork() -> dict:
    """Fork a child that forks a grandchild and exits at once: the grandchild is orphaned,
    re-parented to PID 1, and exits 0.2 s later. Only PID 1 can reap it."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            os.close(read_end)
            os.close(write_end)
            time.sleep(0.2)
            os._exit(0)
        os.write(write_end, str(grandchild).encode())
        os._exit(0)
    os.close(write_end)
    grandchild = int(os.read(read_end, 32))
    os.close(read_end)
    os.waitpid(child, 0)
    return {"orphan": grandchild}


@app.get("/processes")
def processes() -> dict:
    """Every process in the container's PID namespace: pid -> [state, ppid, comm]."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            found[name] = [state, int(ppid), comm]
    return found
