#!/bin/sh
# harden-slim.sh: runs once in a python:3.X-slim stage, as root, before the venv is copied in.
#   - a non-root user with distroless' ids (nonroot, 65532:65532, home /home/nonroot);
#   - no pip, setuptools or wheel in the system interpreter (the app's packages are in /opt/venv,
#     installed by the build, never by the running image), no ensurepip, no IDLE, no tests;
#   - no apt lists or caches; no setuid/setgid bits anywhere;
#   - the standard library's bytecode compiled now (checked-hash), since the image runs with
#     PYTHONDONTWRITEBYTECODE=1 on a read-only root.
# The shell and coreutils stay: this is the slim variant, not the distroless one.
set -eu
py=$(readlink -f /usr/local/bin/python3)
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stdlib=/usr/local/lib/python$ver

groupadd -K GID_MAX=65532 --gid 65532 nonroot
useradd -K UID_MAX=65532 --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot

find "$stdlib/site-packages" -mindepth 1 -maxdepth 1 ! -name README.txt -exec rm -rf {} +
rm -f /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/bin/idle* /usr/local/bin/pydoc* \
    /usr/local/bin/2to3* /usr/local/bin/python*-config
find "$stdlib" -depth -type d \( -name test -o -name tests -o -name idle_test \) -exec rm -rf {} +
rm -rf "$stdlib/idlelib" "$stdlib/tkinter" "$stdlib/turtledemo" "$stdlib/ensurepip" \
    "$stdlib"/lib-dynload/_tkinter*

rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /root/.cache
find / -xdev -type f -perm /6000 -exec chmod a-s {} +

find "$stdlib" -name '*.pyc' -delete
"$py" -m compileall -q -j 0 --invalidation-mode checked-hash "$stdlib"
