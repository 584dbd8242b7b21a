"""A pre-start "migration" for the container tests (PRE_START_PATH=/app/migrate.py): one HTTPS
call to MIGRATE_URL (it needs the CA from /certs), then /tmp/migrated written. Exits 3 when the
call fails, as a migration that cannot reach its database would."""

import os
import sys
import urllib.request

try:
    status = urllib.request.urlopen(os.environ["MIGRATE_URL"], timeout=10).status
except Exception as e:  # noqa: BLE001 - any failure is the migration failing
    print(f"migration failed: {e}", file=sys.stderr)
    sys.exit(3)
with open("/tmp/migrated", "w") as f:
    f.write(f"migrated over TLS: {status}")
