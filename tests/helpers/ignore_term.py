"""Child for the stop-timeout tests: ignores SIGTERM and keeps a grandchild in its process group.

Prints "ready PID GRANDCHILD_PID", then sleeps until killed.
"""
import os
import signal
import subprocess
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
# No inherited stdio: a pipe held open by a leftover grandchild would hide vardr-init's exit.
grandchild = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"ready {os.getpid()} {grandchild.pid}", flush=True)
while True:
    time.sleep(1)
