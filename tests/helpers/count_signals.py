"""Child for the signal-storm tests: count every signal of the numbers given, exactly.

The signals are blocked and taken one at a time with sigwaitinfo, so real-time signals (which
queue) are counted one by one, never merged as Python-level handlers could merge them.
Prints "ready PID" once they are blocked. On SIGTERM prints "counted N1 N2 ..." (one count per
signal number given, in order) and exits 0. With --exit-after SECONDS CODE it exits with CODE
after SECONDS instead, whatever arrives meanwhile.
"""
import os
import signal
import sys
import time

args = sys.argv[1:]
exit_after = None
if args[:1] == ["--exit-after"]:
    exit_after = (time.monotonic() + float(args[1]), int(args[2]))
    args = args[3:]
numbers = [int(arg) for arg in args]
waited = set(numbers) | {signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, waited)
counts = dict.fromkeys(numbers, 0)
print(f"ready {os.getpid()}", flush=True)
while True:
    if exit_after is None:
        info = signal.sigwaitinfo(waited)
    else:
        left = exit_after[0] - time.monotonic()
        if left <= 0:
            os._exit(exit_after[1])
        info = signal.sigtimedwait(waited, left)
        if info is None:
            continue
    if info.si_signo == signal.SIGTERM and exit_after is None:
        print("counted " + " ".join(str(counts[n]) for n in numbers), flush=True)
        sys.exit(0)
    if info.si_signo in counts:
        counts[info.si_signo] += 1
