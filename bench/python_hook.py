"""The Python hook's cost on a Python start (`VARDR_PYTHON_HOOK`), side by side with no hook.

Run through `bash bench/run.sh --only python`, which passes the binary, the measure helper and the
test venv's interpreter (the real one, with certifi; never a pyenv shim). The bundle and the hook
are made once by `vardr-init certs` on tmpfs; then each figure's ways take turns (round-robin,
rotating which goes first), each run timed by the measure helper (fork, exec, wait4):

1. `python -c pass`: no hook, the hook (PYTHONPATH=<bundle>.python), and an eager variant of the
   hook that imports certifi at start instead of when the app does (why the hook waits).
2. `python -c "import certifi; certifi.where()"`: no hook, the hook (certifi patched on import).
3. `python -c "import logging; logging.warning('w')"`: no hook, the hook, and the hook as
   VARDR_JSON_LOGS=true writes it (a JSON handler on the root logger from logging's import on).
4. `vardr-init -- python -c pass`, the bundle cached: VARDR_PYTHON_HOOK=false against the default
   (the worker checks the hook's file, Python runs it).

Medians and ratios to the no-hook way; nothing asserted. --smoke runs each way twice.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import Runner, base_env, fmt_load, log, ratio

HERE = Path(__file__).resolve().parent
def make_ca(directory):
    """One CA file for the bundle, made by openssl (the bench needs a bundle, not a particular CA)."""
    directory.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "/dev/null", "-out", str(directory / "ca.pem"), "-subj", "/CN=vardr bench hook CA",
         "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vardr", required=True)
    parser.add_argument("--measure", required=True)
    parser.add_argument("--app-python", required=True, help="a venv's Python with certifi")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--command", default="bash bench/run.sh --only python")
    args = parser.parse_args()
    runs = 2 if args.smoke else args.runs
    runner = Runner(args.measure)
    python = args.app_python
    work = Path(tempfile.mkdtemp(prefix="vardr-bench-hook-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        make_ca(work / "certs")
        bundle = work / "out" / "bundle.pem"
        bundle.parent.mkdir()
        vardr_env = base_env(VARDR_CERTS_DIR=work / "certs", VARDR_CA_BUNDLE=bundle,
                             VARDR_TLS_PROFILE="python3.13")
        subprocess.run([args.vardr, "certs"], env=vardr_env, check=True, capture_output=True)
        hook = Path(f"{bundle}.python")
        text = (hook / "sitecustomize.py").read_text()
        eager = work / "eager"
        eager.mkdir()
        insert = "        sys.meta_path.insert(0, Finder())\n"
        assert insert in text, "the hook's file changed: update the eager variant"
        (eager / "sitecustomize.py").write_text(text.replace(insert, insert + "        import certifi\n"))
        # The hook as VARDR_JSON_LOGS=true writes it.
        json_hook = work / "json"
        json_hook.mkdir()
        assert "JSON_LOGS = False\n" in text, "the hook's file changed: update the JSON variant"
        (json_hook / "sitecustomize.py").write_text(text.replace("JSON_LOGS = False\n", "JSON_LOGS = True\n"))
        # PYTHONDONTWRITEBYTECODE=1, as the images set it: every start compiles nothing it wrote.
        plain = base_env(PYTHONDONTWRITEBYTECODE=1)
        hooked = base_env(PYTHONDONTWRITEBYTECODE=1, PYTHONPATH=hook)
        eagerly = base_env(PYTHONDONTWRITEBYTECODE=1, PYTHONPATH=eager)
        # The hook's file compiled once into its own __pycache__, as a user's venv would have it.
        subprocess.run([python, "-c", "pass"], env=base_env(PYTHONPATH=hook), check=True)
        shutil.copytree(hook / "__pycache__", eager / "__pycache__", dirs_exist_ok=True)
        subprocess.run([python, "-c", "pass"], env=base_env(PYTHONPATH=eager), check=True)
        subprocess.run([python, "-c", "pass"], env=base_env(PYTHONPATH=json_hook), check=True)
        jsoned = base_env(PYTHONDONTWRITEBYTECODE=1, PYTHONPATH=json_hook)
        where = "import certifi; certifi.where()"
        figures = {}
        log(f"1. python -c pass, {runs} runs each")
        figures["pass"] = runner.alternate({
            "no hook": ([python, "-c", "pass"], plain, None),
            "hook": ([python, "-c", "pass"], hooked, None),
            "eager hook": ([python, "-c", "pass"], eagerly, None),
        }, runs)
        log(f"2. python -c '{where}', {runs} runs each")
        figures["certifi"] = runner.alternate({
            "no hook": ([python, "-c", where], plain, None),
            "hook": ([python, "-c", where], hooked, None),
        }, runs)
        logged = "import logging; logging.warning('w')"
        log(f"3. python -c \"{logged}\", {runs} runs each")
        figures["logging"] = runner.alternate({
            "no hook": ([python, "-c", logged], plain, None),
            "hook": ([python, "-c", logged], hooked, None),
            "JSON logs hook": ([python, "-c", logged], jsoned, None),
        }, runs)
        log(f"4. vardr-init -- python -c pass (bundle cached), {runs} runs each")
        figures["vardr"] = runner.alternate({
            "no hook": ([args.vardr, "--", python, "-c", "pass"],
                        {**vardr_env, "VARDR_PYTHON_HOOK": "false", "PYTHONDONTWRITEBYTECODE": "1"}, None),
            "hook": ([args.vardr, "--", python, "-c", "pass"],
                     {**vardr_env, "PYTHONDONTWRITEBYTECODE": "1"}, None),
        }, runs)
        version = subprocess.run([python, "-c", "import sys, certifi; print(sys.version.split()[0], certifi.__version__)"],
                                 capture_output=True, text=True, check=True).stdout.split()
        r = {"meta": {"command": args.command, "smoke": args.smoke, "runs": runs, "python": version[0],
                      "certifi": version[1], "load_average_at_end": os.getloadavg()},
             "python_hook": figures}
        lines = [f"The Python hook's cost ({args.command}; Python {version[0]}, certifi {version[1]}, "
                 f"{runs} runs each, load {fmt_load(os.getloadavg())}):", "",
                 "| start | way | median (ms) | min (ms) | ratio to no hook (median) |", "|---|---|---|---|---|"]
        titles = {"pass": "`python -c pass`", "certifi": f"`python -c \"{where}\"`",
                  "vardr": "`vardr-init -- python -c pass` (cached)",
                  "logging": f"`python -c \"{logged}\"`"}
        for key, ways in figures.items():
            base = ways["no hook"]["time_ms"]["median"]
            for way, f in ways.items():
                t = f["time_ms"]
                x = ratio(t["median"], base)
                lines.append(f"| {titles[key]} | {way} | {t['median']:.2f} | {t['min']:.2f} | {x:.3f}x |")
        print("\n".join(lines))
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
