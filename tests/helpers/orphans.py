"""Child for the reaping tests: make COUNT orphans by double fork, check who adopts and reaps them.

Each grandchild waits until its parent has exited, reports its new parent PID, and exits, leaving
a zombie for whoever adopted it. The adopter must be vardr-init: PID 1 in a PID namespace, or our
parent when vardr-init runs as a child subreaper. Prints one line:
    orphans=N adopted=M zombies=Z
where adopted counts orphans whose new parent was vardr-init, and zombies counts vardr-init's
children still unreaped after up to 10 s.
"""
import os
import sys
import time

count = int(sys.argv[1])
adopter = os.getppid()  # vardr-init, as PID 1 or as subreaper
read_end, write_end = os.pipe()

for i in range(count):
    if os.fork() == 0:
        middle = os.getpid()
        if os.fork() == 0:
            os.close(read_end)
            while os.getppid() == middle:
                time.sleep(0.001)
            os.write(write_end, f"{os.getppid()}\n".encode())
            if i % 2:
                time.sleep(0.05)  # some die later, spread over the reaping loop
            os._exit(0)
        os._exit(0)
    os.wait()
os.close(write_end)

with os.fdopen(read_end) as reports:
    parents = [int(line) for line in reports]  # EOF once every grandchild has exited


def zombies_of(parent):
    found = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue  # exited (and reaped) while we looked
        if fields["State"].strip().startswith("Z") and int(fields["PPid"]) == parent:
            found += 1
    return found


deadline = time.monotonic() + 10
zombies = zombies_of(adopter)
while zombies and time.monotonic() < deadline:
    time.sleep(0.05)
    zombies = zombies_of(adopter)
adopted = sum(parent == adopter for parent in parents)
print(f"orphans={len(parents)} adopted={adopted} zombies={zombies}", flush=True)
