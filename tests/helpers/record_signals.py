"""Child for the forwarding test: handle each signal number given, report it, exit once all came.

Prints "ready PID" once the handlers are installed, then "got N" for each signal N received.
"""
import os
import signal
import sys
import time

expected = {int(arg) for arg in sys.argv[1:]}
received = set()


def handler(signum, _frame):
    received.add(signum)
    print(f"got {signum}", flush=True)


for signum in expected:
    signal.signal(signum, handler)
print(f"ready {os.getpid()}", flush=True)
while not expected <= received:
    time.sleep(0.01)
