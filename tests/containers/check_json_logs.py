"""Checks a container's whole output under VARDR_JSON_LOGS=true (tests/containers/run.sh):
every non-empty line is a JSON object with `type` and `timestamp`; the access line of GET /boom
has status 500 and the path as fields; the traceback is inside one object; the app's warning
(quotes and a newline) is one object; `Started server process` appears once per worker.

Usage: check_json_logs.py LOGS WORKERS LABEL
"""

import json
import re
import sys

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\Z")


def main(path, workers, label):
    lines = [line for line in open(path, encoding="utf-8", errors="replace").read().splitlines()]
    events, bad = [], []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("type"), str)
            or not TIMESTAMP.match(str(event.get("timestamp", "")))
        ):
            bad.append(line)
            continue
        events.append(event)
    problems = []
    if bad:
        problems.append(f"{len(bad)} of {len(lines)} lines are not JSON events: {bad[:5]}")
    boom = [e for e in events if e.get("type") == "access" and e.get("path") == "/boom"]
    if not boom or boom[0].get("status") != 500 or boom[0].get("method") != "GET":
        problems.append(f"no access event for GET /boom with status 500: {boom}")
    failed = [e for e in events if "exception" in e]
    if len(failed) != 1 or not failed[0]["exception"].rstrip().endswith("RuntimeError: boom"):
        problems.append(f"not one object with the whole traceback: {failed}")
    if not any(e.get("logger") == "app" and e.get("message") == 'he said "hi"\nand left' for e in events):
        problems.append("the app's warning is not one object")
    started = sum(1 for e in events if str(e.get("message", "")).startswith("Started server process"))
    if started != workers:
        problems.append(f"{started} 'Started server process' events, not {workers}")
    if problems:
        for p in problems:
            print(f"FAIL {label}: {p}", file=sys.stderr)
        return 1
    kinds = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    written = sum(1 for line in lines if line.strip())
    print(f"{label}: {len(events)} of {written} non-empty lines are JSON events {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
