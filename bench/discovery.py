"""Start-up cost of app discovery in a worker: `vardr-init --dry-run` timed side by side for two
or more builds, alternating runs, on three apps: one found by discovery (main.py), one named by
`[tool.fastapi] entrypoint` in a pyproject.toml, and one named by APP_MODULE (no worker).

    python3 bench/discovery.py --vardr OLD_BINARY --vardr NEW_BINARY [--runs 1000]

Prints a Markdown table: median wall time per run in ms, and each build's ratio to the first.
Wall times include starting the process from Python (the same for every build); compare ratios
within one run.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time

MAIN = 'from fastapi import FastAPI\n\napp = FastAPI()\n\n@app.get("/health")\ndef health():\n    return {"status": "ok"}\n'
PYPROJECT = """[project]
name = "svc"
version = "1.0.0"
requires-python = ">=3.11"
dependencies = ["fastapi>=0.110", "uvicorn[standard]>=0.29", "httpx"]

[project.optional-dependencies]
dev = ["pytest", "ruff"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.fastapi]
entrypoint = "main:app"

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "I"]
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vardr", action="append", required=True)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found, named = os.path.join(tmp, "found"), os.path.join(tmp, "named")
        for d in (found, named):
            os.mkdir(d)
            with open(os.path.join(d, "main.py"), "w") as f:
                f.write(MAIN)
        with open(os.path.join(named, "pyproject.toml"), "w") as f:
            f.write(PYPROJECT)
        base = {
            "PATH": "/usr/bin:/bin",
            "VARDR_CERTS_DIR": os.path.join(tmp, "no-certs"),
            "VARDR_CA_BUNDLE": os.path.join(tmp, "bundle.pem"),
        }
        cases = [
            ("discovery (main.py)", dict(base, VARDR_APP_DIR=found)),
            ("pyproject.toml entrypoint", dict(base, VARDR_APP_DIR=named)),
            ("APP_MODULE=main:app (no worker)", dict(base, VARDR_APP_DIR=found, APP_MODULE="main:app")),
        ]
        print("| app | " + " | ".join(f"`{b}`, ms" for b in args.vardr) + " |")
        print("|---|" + "---|" * len(args.vardr))
        for name, env in cases:
            times = {b: [] for b in args.vardr}
            for i in range(args.runs):
                order = args.vardr if i % 2 == 0 else list(reversed(args.vardr))
                for b in order:
                    start = time.perf_counter()
                    done = subprocess.run([b, "--dry-run"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                    times[b].append(time.perf_counter() - start)
                    if done.returncode != 0:
                        raise SystemExit(f"{b} --dry-run ({name}): exit {done.returncode}")
            medians = [statistics.median(times[b]) * 1000 for b in args.vardr]
            cells = [f"{m:.3f} ({m / medians[0]:.2f}x)" for m in medians]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
