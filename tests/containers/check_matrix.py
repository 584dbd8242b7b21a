"""Checks the client matrix's verdicts (tests/helpers/client_matrix.py) from one container run.

Usage: check_matrix.py VERDICTS_JSON EXPECTED LABEL
EXPECTED is the verdict every one of the 13 rows must have: trusted or refused. Prints one line
(and the rows that differ); exits 1 unless all 13 rows are EXPECTED.
"""

import json
import sys

CLIENTS = 13
path, expected, label = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    lines = [line for line in f.read().splitlines() if line.strip()]
try:
    verdicts = json.loads(lines[-1])
except (IndexError, ValueError) as error:
    sys.exit(f"{label}: no verdicts in {path} ({error}): {lines!r}")
wrong = {client: verdict for client, verdict in verdicts.items() if verdict != expected}
same = len(verdicts) - len(wrong)
print(f"{label}: {same}/{len(verdicts)} {expected}")
for client, verdict in wrong.items():
    print(f"  ! {client}: {verdict}")
if len(verdicts) != CLIENTS or wrong:
    sys.exit(1)
