#!/bin/sh
# The deps stages' one job: /opt/venv from /tmp/requirements.txt, then the venv and /app compiled
# to bytecode. pip --python installs into a venv that has no pip of its own. The optional
# `build-ca` secret is the CA bundle of a TLS-intercepting proxy between the builder and PyPI.
set -eu
if [ -s /run/secrets/build-ca ]; then export PIP_CERT=/run/secrets/build-ca; fi
python3 -m venv --without-pip /opt/venv
python3 -m pip --python /opt/venv/bin/python install --no-cache-dir \
    --disable-pip-version-check --no-compile -r /tmp/requirements.txt
python3 -m pip --python /opt/venv/bin/python check
/opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode checked-hash /opt/venv /app
