"""Compares vardr-init's verdicts in an image with handshakes through the image's own Python.

Usage: check_verdicts.py PLAN_JSON OUTCOMES_JSON VARIANT
PLAN_JSON is `vardr-init --dry-run --json` run in the image with the corpus at /certs (the
runtime found on its own); OUTCOMES_JSON is tests/helpers/verify_shapes.py run in the same image.
Prints the table and exits 1 on any disagreement, or if the runtime found is not the image's.
"""

import json
import sys

plan = json.load(open(sys.argv[1]))
outcomes = json.load(open(sys.argv[2]))
variant = sys.argv[3]
runtime = outcomes.pop("_runtime")
minor = ".".join(runtime.split()[0].split(".")[:2])
found = plan["certificates"]["runtime"]
print(f"{variant}: the image's Python is {runtime}; vardr-init judged for {found['profile']} ({found['source']})")
problems = []
if found["profile"] != "python" + minor:
    problems.append(f"vardr-init found {found['profile']}, the image runs Python {minor}")
for name, outcome in sorted(outcomes.items()):
    verdict = plan["certificates"]["results"][name + ".pem"]
    agree = (outcome == "ok") == (verdict == "SUCCESS")
    print(f"  {' ' if agree else '!'} {name:<30} {outcome[:50]:<50} | {verdict[:70]}")
    if not agree:
        problems.append(f"{name}: runtime {outcome!r}, vardr-init {verdict!r}")
if problems:
    print(f"{variant}: {len(problems)} disagreements:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"{variant}: {len(outcomes)} shapes, 0 disagreements")
