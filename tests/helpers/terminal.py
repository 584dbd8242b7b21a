"""Child for the TTY test: reports whether it owns the terminal's foreground, then waits for ^C.

Prints "foreground=True|False ready" and, when SIGINT arrives, "got SIGINT" and exits 0.
"""
import os
import signal
import sys
import time


def on_interrupt(_signum, _frame):
    print("got SIGINT", flush=True)
    os._exit(0)


signal.signal(signal.SIGINT, on_interrupt)
foreground = os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
print(f"foreground={foreground} ready", flush=True)
time.sleep(30)
sys.exit(1)
