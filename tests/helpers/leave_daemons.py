"""Child for the clean-up tests: leaves two processes behind and exits with status argv[1].

One is a daemon (double fork, its own session) that would stop on SIGTERM; the other ignores
SIGTERM. Prints "left DAEMON_PID STUBBORN_PID" once both run, then exits at once.
"""
import os
import signal
import sys
import time


def leave(ignore_term):
    """Double-forks a process that sleeps; returns its pid (it is re-parented to the reaper)."""
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if ignore_term:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(write, f"{os.getpid()}\n".encode())
            # No inherited stdio: a pipe held open by a leftover would hide vardr-init's exit.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()
    return int(os.read(read, 64).split()[0])


daemon, stubborn = leave(False), leave(True)
print(f"left {daemon} {stubborn}", flush=True)
sys.exit(int(sys.argv[1]))
