"""Child for the "signals go to the child, not its group" test.

Starts a grandchild in its own process group that reports SIGUSR1 too. Prints "ready" once both
handle SIGUSR1; "child got SIGUSR1" on SIGUSR1; on SIGTERM stops the grandchild, prints "done"
and exits 0. A "grandchild got SIGUSR1" line means a forwarded signal hit the whole group.
"""
import os
import signal
import subprocess
import sys
import time

GRANDCHILD = """
import signal, time
signal.signal(signal.SIGUSR1, lambda *_: print("grandchild got SIGUSR1", flush=True))
print("grandchild ready", flush=True)
time.sleep(60)
"""
grandchild = subprocess.Popen([sys.executable, "-c", GRANDCHILD], stdout=subprocess.PIPE, text=True)
assert os.getpgid(grandchild.pid) == os.getpgrp()
assert grandchild.stdout.readline().strip() == "grandchild ready"


def relay():
    for line in grandchild.stdout:
        print(line.strip(), flush=True)


def on_term(*_):
    grandchild.kill()
    grandchild.wait()
    print("done", flush=True)
    os._exit(0)


signal.signal(signal.SIGUSR1, lambda *_: print("child got SIGUSR1", flush=True))
signal.signal(signal.SIGTERM, on_term)
import threading  # noqa: E402  (after the handlers: the relay thread must not race them)

threading.Thread(target=relay, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
