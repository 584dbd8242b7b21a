"""What Python's tomllib, read as fastapi-cli reads pyproject.toml, makes of each file named.

One JSON line per file: {"read": false, "error": "..."} when tomllib refuses it (TOMLDecodeError,
or UnicodeDecodeError, RecursionError, MemoryError for what it cannot take), else {"read": true,
"entrypoint": ...}: the string at tool.fastapi.entrypoint, null when there is none (or `tool`,
`tool.fastapi` is not a table), {"other": "repr"} when it is not a string.
"""

import json
import sys
import tomllib

for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError, MemoryError) as e:
        print(json.dumps({"read": False, "error": f"{type(e).__name__}: {e}"[:300]}))
        continue
    tool = data.get("tool")
    fastapi = tool.get("fastapi") if isinstance(tool, dict) else None
    entry = fastapi.get("entrypoint") if isinstance(fastapi, dict) else None
    if entry is not None and not isinstance(entry, str):
        entry = {"other": repr(entry)}
    print(json.dumps({"read": True, "entrypoint": entry}))
