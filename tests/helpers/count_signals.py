"""Child for the signal-storm tests: count every signal of the numbers given, exactly.

The signals are blocked and taken one at a time with sigwaitinfo, so real-time signals (which
queue) are counted one by one, never merged as Python-level handlers could merge them.
Prints "ready PID" once they are blocked. On SIGTERM (or the signal given with --report N)
prints "counted N1 N2 ..." (one count per signal number given, in order) and exits 0. With
--exit-after SECONDS CODE it exits with CODE after SECONDS instead, whatever arrives meanwhile.

The kernel hands out pending signals lowest number first, standard before real-time: to count
every real-time signal N sent before the report, report on a higher real-time signal, not SIGTERM.
"""
import os
import signal
import sys
import time

args = sys.argv[1:]
exit_after = None
report = signal.SIGTERM
if args[:1] == ["--report"]:
    report = int(args[1])
    args = args[2:]
if args[:1] == ["--exit-after"]:
    exit_after = (time.monotonic() + float(args[1]), int(args[2]))
    args = args[3:]
numbers = [int(arg) for arg in args]
waited = set(numbers) | {report}
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
    if info.si_signo == report and exit_after is None:
        print("counted " + " ".join(str(counts[n]) for n in numbers), flush=True)
        sys.exit(0)
    if info.si_signo in counts:
        counts[info.si_signo] += 1
