"""Live trust (`VARDR_CERTS_WATCH=true`) against what users do today: restart the container.

Run through `bash bench/run.sh --only watch`, which passes the binary and the interpreters. Three
figures, the ways compared in each taking turns (round-robin, rotating which goes first), all on
one certificates layout: a Kubernetes projected volume (`ca.crt -> ..data/ca.crt`,
`..data -> ..<timestamp>`) swapped the way kubelet's AtomicWriter swaps it, to a new CA each time.

1. Swap to bundle: from `..data` renamed over to the bundle holding the new CA renamed into place
   (inotify on the bundle's directory: the instant of the rename, not a poll's), vardr-init as PID
   1 supervising `sleep`: watching, against stopping it (SIGTERM) right after the swap and
   starting it again. The restart pays none of a container runtime's own cost (a new sandbox, the
   image's layers, a readiness probe): a lower bound of what a restart costs.
2. What 100 rebuilds leave behind: VmRSS, RssAnon, VmHWM and open descriptors of PID 1 and of
   `vardr-watch`, before, after the first and after the last, the page cache dropped first.
3. Failed requests during a rotation: uvicorn with two workers serving bench/helpers/trust_app.py
   (its trust read once per worker, at import), a client opening a new connection every 10 ms from
   1 s before the swap until 5 s after the app is on the new trust: `VARDR_CERTS_RELOAD=hup`
   against a restart of vardr-init; `restart` with one worker beside them.

Nothing here asserts on a timing: --smoke runs each figure on tiny inputs so the suite cannot rot,
and checks only that each step happened (each new CA reached the bundle). A step that never
happens within a minute is an error, with the end of vardr-init's log.
"""
import argparse
import base64
import ctypes
import datetime
import functools
import json
import os
import platform
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import SYSTEM_BUNDLE, base_env, fmt_load, log, memory_of, percentile, pid1_child, ratio, report, stats, stop

HERE = Path(__file__).resolve().parent
# How long a step may take before the run stops with an error: a hang guard, not a target.
PATIENCE = 60
# The client's pace in the rotation figure: failures there are about downtime / INTERVAL.
INTERVAL = 0.010


# ---------------------------------------------------------------------------------------------
# The certificates: a projected volume, the CAs swapped into it, the bundle they land in


class Ca:
    """One of gen_cas.py's CAs: "bench CA NUMBER", its PEM file's bytes and its DER."""

    def __init__(self, path):
        self.number = int(re.search(r"(\d+)", path.name).group(1))
        self.pem = path.read_bytes()
        self.der = pem_ders(self.pem)[0]


PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def pem_ders(data):
    return [base64.b64decode(b"".join(body.split())) for body in PEM_BLOCK.findall(data)]


def bundle_holds(bundle, der):
    try:
        return der in pem_ders(bundle.read_bytes())
    except FileNotFoundError:
        return False


class Volume:
    """A Kubernetes projected volume (ConfigMap, Secret) in DIRECTORY, written as kubelet's
    AtomicWriter writes it: the payload in a new `..<timestamp>` directory, a `..data_tmp` symlink
    to it renamed over `..data`, the user-visible `ca.crt -> ..data/ca.crt`, then the old
    timestamp directory removed."""

    def __init__(self, directory):
        self.dir = directory
        self.generation = 0
        directory.mkdir(parents=True)

    def publish(self, ca):
        """Swaps CA in; returns the monotonic nanoseconds of the rename over `..data`."""
        self.generation += 1
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.") + f"{self.generation:09d}"
        payload = self.dir / stamp
        payload.mkdir(mode=0o755)
        (payload / "ca.crt").write_bytes(ca.pem)
        data = self.dir / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.dir / "..data_tmp"
        os.symlink(stamp, tmp)
        os.rename(tmp, data)
        swapped = time.monotonic_ns()
        link = self.dir / "ca.crt"
        if not link.is_symlink():
            os.symlink("..data/ca.crt", link)
        if old:
            shutil.rmtree(self.dir / old)
        return swapped


_libc = ctypes.CDLL(None, use_errno=True)
IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80


class BundleWatch:
    """When the bundle changes: inotify on its directory (renamed into place, or written and
    closed), read as the event arrives; the bundle is then read to see whether it holds the CA."""

    def __init__(self, bundle):
        self.bundle = bundle
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, str(bundle.parent).encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {bundle.parent}")
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)

    def drain(self):
        """Reads the events queued so far; whether the bundle's name is among them."""
        name, seen = self.bundle.name.encode(), False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            at = 0
            while at + 16 <= len(data):
                _, _, _, length = struct.unpack_from("iIII", data, at)
                seen |= data[at + 16:at + 16 + length].rstrip(b"\0") == name
                at += 16 + length

    def wait_for(self, ca, alive):
        """The monotonic nanoseconds at which the bundle was seen holding CA. ALIVE() raises if
        the vardr-init that should write it has gone."""
        deadline = time.monotonic() + PATIENCE
        while True:
            ready = self.poller.poll(10)
            seen_at = time.monotonic_ns()
            if ready and self.drain() and bundle_holds(self.bundle, ca.der):
                return seen_at
            alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bundle {self.bundle} never held bench CA {ca.number}")

    def close(self):
        os.close(self.fd)


def gen_cas(args, directory, count):
    subprocess.run([args.venv_python, str(HERE / "helpers/gen_cas.py"), str(directory), str(count)], check=True)
    return [Ca(path) for path in sorted(directory.iterdir())]


# ---------------------------------------------------------------------------------------------
# vardr-init as PID 1, and its processes


class Init:
    """vardr-init as PID 1 of a new PID namespace (`unshare -p -f --mount-proc`), with its stdout
    (the child's) and stderr appended to LOGS/NAME.out and .err. Returns once `unshare` runs: a
    caller timing the start waits for its bundle at once, and learns PID 1's PID when it asks."""

    def __init__(self, vardr, argv, env, logs, name):
        self.out, self.err = logs / f"{name}.out", logs / f"{name}.err"
        with open(self.out, "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", vardr, *argv], env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    @functools.cached_property
    def pid(self):
        return pid1_child(self.proc.pid)

    def stop(self):
        stop(self.proc, self.pid)

    def alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"vardr-init exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self):
        return "\n".join(self.err.read_text(errors="replace").splitlines()[-20:])

    def stdout(self):
        return self.out.read_text(errors="replace").splitlines()

    def logged(self, needle):
        return self.err.read_text(errors="replace").count(needle)

    def children(self):
        """PID 1's children: [(pid, comm, state)]."""
        out = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    stat = Path(f"/proc/{child}/stat").read_text()
                except FileNotFoundError:
                    continue
                out.append((int(child), stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]))
        return out

    def watcher(self, directory):
        """vardr-watch's PID, once its inotify watches DIRECTORY (read from /proc/PID/fdinfo): a
        swap before that would measure the start, not the watching."""
        inode = f"{os.stat(directory).st_ino:x}"
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            self.alive()
            for pid, comm, _ in self.children():
                if comm == "vardr-watch" and inode in inotify_inodes(pid):
                    return pid
            time.sleep(0.005)
        raise RuntimeError(f"vardr-watch never watched {directory}:\n{self.tail()}")

    def until(self, what, predicate):
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            self.alive()
            value = predicate()
            if value:
                return value
            time.sleep(0.005)
        raise RuntimeError(f"never happened: {what}\n{self.tail()}")


def inotify_inodes(pid):
    inodes = set()
    try:
        for info in Path(f"/proc/{pid}/fdinfo").iterdir():
            for line in info.read_text().splitlines():
                if line.startswith("inotify wd:"):
                    inodes.add(re.search(r"ino:([0-9a-f]+)", line).group(1))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return inodes


def descriptors(pid):
    """PID's open descriptors, each as its kind: a path, `pipe`, `socket`, `anon_inode:[pidfd]`..."""
    kinds = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        kinds.append(re.sub(r"^(pipe|socket):\[\d+\]$", r"\1", target))
    return sorted(kinds)


def way_paths(work, outputs, name, ca):
    """A way's certs volume (holding `ca`) and where its bundle goes."""
    volume = Volume(work / name)
    bundle = outputs / name / "bundle.pem"
    bundle.parent.mkdir()
    volume.publish(ca)
    return volume, bundle


def cert_env(volume, bundle, **extra):
    return base_env(VARDR_CERTS_DIR=volume.dir, VARDR_CA_BUNDLE=bundle, VARDR_SYSTEM_CA_BUNDLE=SYSTEM_BUNDLE,
                    VARDR_JSON_LOGS="true", **extra)


def drop_page_cache():
    """A binary written a moment ago has its whole file in the page cache, and the kernel then
    maps more of it around each fault: resident code that is not the binary's own doing."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError as e:
        log(f"could not drop the page cache ({e}): resident code may read high")
        return False


# ---------------------------------------------------------------------------------------------
# 1. swap to bundle


def swap_to_bundle(args, work, outputs, cas, swaps):
    """SWAPS swaps for each way, taking turns; each way on a volume and a bundle of its own, the
    child `sleep`. Returns the milliseconds from the swap to the bundle with the new CA."""
    ways = {
        "watch": {"VARDR_CERTS_WATCH": "true"},
        "watch, debounce 0.05 s": {"VARDR_CERTS_WATCH": "true", "VARDR_CERTS_DEBOUNCE": "0.05"},
        "restart": {},
    }
    running = {}
    samples = {name: [] for name in ways}
    parts = {"stop": [], "start": []}
    try:
        for index, (name, extra) in enumerate(ways.items()):
            volume, bundle = way_paths(work, outputs, f"swap-{index}", cas[0])
            watch = BundleWatch(bundle)
            env = cert_env(volume, bundle, VARDR_TLS_PROFILE="openssl", **extra)
            init = Init(args.vardr, ["--", "sleep", "1000"], env, work / "logs", f"swap-{index}")
            running[name] = {"volume": volume, "watch": watch, "env": env, "init": init, "index": index}
            init.until(f"{name}: the first bundle", lambda: bundle_holds(bundle, cas[0].der))
            if extra:
                init.watcher(volume.dir)
        names = list(ways)
        for swap in range(1, swaps + 1):
            shift = swap % len(names)
            for name in names[shift:] + names[:shift]:
                way = running[name]
                way["watch"].drain()
                swapped = way["volume"].publish(cas[swap])
                if name == "restart":
                    way["init"].stop()
                    stopped = time.monotonic_ns()
                    way["init"] = Init(args.vardr, ["--", "sleep", "1000"], way["env"], work / "logs",
                                       f"swap-{way['index']}")
                landed = way["watch"].wait_for(cas[swap], way["init"].alive)
                samples[name].append((landed - swapped) / 1e6)
                if name == "restart":
                    parts["stop"].append((stopped - swapped) / 1e6)
                    parts["start"].append((landed - stopped) / 1e6)
                # The watcher re-aims at the new timestamp directory after its pass.
                time.sleep(0.05)
        for name in ways:
            if name != "restart":
                rebuilt = running[name]["init"].logged('"action":"rebuilt"')
                if rebuilt != swaps:
                    raise RuntimeError(f"{name}: {rebuilt} rebuilds logged for {swaps} swaps")
    finally:
        for way in running.values():
            way["init"].stop()
            way["watch"].close()
    results = {name: {"ms": stats(values), "p95_ms": percentile(values, 95), "samples": values}
               for name, values in samples.items()}
    results["restart"]["parts_ms"] = {part: stats(values) for part, values in parts.items()}
    watch = results["watch"]["ms"]["median"]
    for name in results:
        results[name]["over_watch"] = ratio(results[name]["ms"]["median"], watch)
    log("swap to bundle, median: " + ", ".join(f"{name} {row['ms']['median']:.1f} ms" for name, row in results.items()))
    return {"swaps": swaps, "ways": results}


# ---------------------------------------------------------------------------------------------
# 2. what rebuilds leave behind


def rebuild_memory(args, work, outputs, cas, rebuilds, drop):
    """PID 1 (supervising `sleep`) and vardr-watch before and after REBUILDS swaps, each waited
    for until the bundle holds its CA; both read 0.5 s after the start (PID 1 drops its start-up
    code 100 ms after the child starts), 0.5 s after the first rebuild (what the first one faults
    in is not what the next 99 leave) and 0.5 s after the last."""
    volume = Volume(work / "rebuilds")
    bundle = outputs / "rebuilds" / "bundle.pem"
    bundle.parent.mkdir()
    volume.publish(cas[0])
    watch = BundleWatch(bundle)
    dropped = drop_page_cache() if drop else False
    init = Init(args.vardr, ["--", "sleep", "1000"],
                cert_env(volume, bundle, VARDR_TLS_PROFILE="openssl", VARDR_CERTS_WATCH="true"),
                work / "logs", "rebuilds")
    try:
        init.until("the first bundle", lambda: bundle_holds(bundle, cas[0].der))
        watcher = init.watcher(volume.dir)
        init.until("sleep and vardr-watch, PID 1's only children",
                   lambda: sorted(comm for _, comm, _ in init.children()) == ["sleep", "vardr-watch"])
        time.sleep(0.5)
        before = sample(init, watcher)
        for rebuild in range(1, rebuilds + 1):
            watch.drain()
            volume.publish(cas[rebuild])
            watch.wait_for(cas[rebuild], init.alive)
            if rebuild == 1:
                time.sleep(0.5)
                first = sample(init, watcher)
        time.sleep(0.5)
        after = sample(init, watcher)
        rebuilt = init.logged('"action":"rebuilt"')
    finally:
        init.stop()
        watch.close()
    if rebuilt != rebuilds:
        raise RuntimeError(f"{rebuilt} rebuilds logged for {rebuilds} swaps")
    log(f"after {rebuilds} rebuilds: PID 1 VmRSS {before['pid1']['VmRSS']} -> {after['pid1']['VmRSS']} KiB, "
        f"vardr-watch {before['vardr-watch']['VmRSS']} -> {after['vardr-watch']['VmRSS']} KiB")
    return {"rebuilds": rebuilds, "rebuilt_logged": rebuilt, "page_cache_dropped": dropped,
            "before": before, "after_first": first, "after": after}


def sample(init, watcher):
    out = {}
    for name, pid in (("pid1", init.pid), ("vardr-watch", watcher)):
        out[name] = memory_of(pid)
        out[name]["fds"] = descriptors(pid)
    out["children"] = sorted(f"{comm} ({state})" for _, comm, state in init.children())
    return out


# ---------------------------------------------------------------------------------------------
# 3. failed requests during a rotation


class Client(threading.Thread):
    """GET / on a new connection every INTERVAL seconds (a slot missed while a request hangs is
    skipped, not made up): records (sent, ok, the body or why it failed), sent in monotonic ns."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.records = []
        self.stopping = threading.Event()

    def run(self):
        next_at = time.monotonic()
        while not self.stopping.is_set():
            sent = time.monotonic_ns()
            self.records.append((sent, *self.get()))
            next_at += INTERVAL
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            else:
                next_at = time.monotonic()

    def get(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        except OSError as e:
            return False, type(e).__name__
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "nothing"
        return (True, body.decode()) if status == "200" else (False, f"status {status}")

    def finish(self):
        self.stopping.set()
        self.join()
        return self.records


def trust_of(body):
    """The bench CAs in the answering worker's trust, from trust_app.py's `PID CAS`."""
    return body.split(" ", 1)[1]


def get_once(port):
    try:
        return Client(port).get()
    except Exception as e:  # noqa: BLE001: a probe; the caller retries
        return False, repr(e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rotation(args, work, outputs, cas, rounds, before_s, after_s):
    """ROUNDS swaps for each way, taking turns, with the client running from BEFORE_S seconds
    before the swap until AFTER_S seconds after the app is on the new trust (hup: the old workers
    have ended; a restart: the first answer)."""
    app_python_bin = str(Path(args.app_python).parent)
    ways = {
        "hup, 2 workers": {"VARDR_CERTS_WATCH": "true", "VARDR_CERTS_RELOAD": "hup", "WORKERS": "2"},
        "restart vardr-init, 2 workers": {"WORKERS": "2"},
        "watch + restart, 1 worker": {"VARDR_CERTS_WATCH": "true", "VARDR_CERTS_RELOAD": "restart", "WORKERS": "1"},
    }
    running = {}
    samples = {name: [] for name in ways}
    try:
        for index, (name, extra) in enumerate(ways.items()):
            volume, bundle = way_paths(work, outputs, f"app-{index}", cas[0])
            port = free_port()
            env = cert_env(volume, bundle, VARDR_APP_DIR=HERE / "helpers", APP_MODULE="trust_app:app",
                           HOST="127.0.0.1", PORT=port, ACCESS_LOG="", **extra)
            env["PATH"] = f"{app_python_bin}:/usr/bin:/bin"
            way = {"volume": volume, "watch": BundleWatch(bundle), "env": env, "port": port, "index": index,
                   "workers": int(extra["WORKERS"]), "init": None}
            running[name] = way
            start_app(args, work, way, cas[0])
            if "VARDR_CERTS_WATCH" in extra:
                way["init"].watcher(volume.dir)
        names = list(ways)
        for round_index in range(1, rounds + 1):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(rotate(args, work, name, running[name], cas[round_index], before_s, after_s))
    finally:
        for way in running.values():
            if way["init"]:
                way["init"].stop()
            way["watch"].close()
    results = {}
    for name, rows in samples.items():
        results[name] = {
            "rounds": rows,
            "failed": sum(row["failed"] for row in rows),
            "requests": sum(row["requests"] for row in rows),
            "failed_per_round": stats([row["failed"] for row in rows]),
            "longest_gap_ms": stats([row["longest_gap_ms"] for row in rows]),
            **{key: stats([row[key] for row in rows if row[key] is not None] or [float("nan")])
               for key in ("swap_to_bundle_ms", "swap_to_new_trust_ms", "swap_to_last_old_trust_ms")},
        }
    log("failed requests per rotation, median: " + ", ".join(
        f"{name} {row['failed_per_round']['median']:.0f}" for name, row in results.items()))
    return {"interval_ms": INTERVAL * 1000, "before_s": before_s, "after_s": after_s, "ways": results}


def start_app(args, work, way, ca):
    """Starts vardr-init with the default command; returns once the app answers on CA's trust."""
    init = Init(args.vardr, [], way["env"], work / "logs", f"app-{way['index']}")
    way["init"] = init
    init.until("the bundle", lambda: bundle_holds(way["watch"].bundle, ca.der))
    answer = init.until("the app's first answer", lambda: (lambda r: r[0] and r)(get_once(way["port"])))
    if trust_of(answer[1]) != str(ca.number):
        raise RuntimeError(f"the app trusts bench CA {trust_of(answer[1])}, not {ca.number}")


def live_workers(lines):
    """The worker PIDs that said `ready` and not yet `stopped`."""
    ready = [line.split()[1] for line in lines if line.startswith("ready ")]
    stopped = {line.split()[1] for line in lines if line.startswith("stopped ")}
    return [pid for pid in ready if pid not in stopped]


def rotate(args, work, name, way, ca, before_s, after_s):
    """One rotation of WAY onto CA, the client running throughout: its figures."""
    init = way["init"]
    old = set(live_workers(init.stdout()))
    client = Client(way["port"])
    client.start()
    time.sleep(before_s)
    way["watch"].drain()
    swapped = way["volume"].publish(ca)
    if name.startswith("restart vardr-init"):
        init.stop()
        init = Init(args.vardr, [], way["env"], work / "logs", f"app-{way['index']}")
        way["init"] = init
    landed = way["watch"].wait_for(ca, init.alive)
    new = str(ca.number)
    if name.startswith("hup"):
        # On the new trust once every old worker has ended and as many new ones are up.
        init.until("the old workers' end", lambda: not old & set(live_workers(init.stdout()))
                   and len(live_workers(init.stdout())) >= way["workers"])
    else:
        init.until("an answer on the new trust",
                   lambda: any(ok and trust_of(body) == new for _, ok, body in client.records[-20:]))
    done = time.monotonic_ns()
    time.sleep(after_s)
    records = client.finish()
    answered = [sent for sent, ok, _ in records if ok]
    gaps = [(b - a) / 1e6 for a, b in zip(answered, answered[1:])]
    first_new = next((sent for sent, ok, body in records if ok and trust_of(body) == new), None)
    last_old = max((sent for sent, ok, body in records if ok and trust_of(body) != new and sent > swapped),
                   default=None)
    # Each failure: when it was sent, ms from the swap, and why ("status nothing": the connection
    # was closed without an answer).
    failures = [[round((sent - swapped) / 1e6), why] for sent, ok, why in records if not ok]
    row = {
        "requests": len(records),
        "failed": len(failures),
        "failures": failures,
        "failed_span_ms": failures[-1][0] - failures[0][0] if failures else 0,
        "longest_gap_ms": max(gaps, default=0),
        "swap_to_bundle_ms": (landed - swapped) / 1e6,
        "swap_to_new_trust_ms": (first_new - swapped) / 1e6 if first_new else None,
        "swap_to_last_old_trust_ms": (last_old - swapped) / 1e6 if last_old else None,
        "swap_to_done_ms": (done - swapped) / 1e6,
    }
    log(f"{name}: {row['failed']} of {row['requests']} requests failed; swap to new trust "
        f"{row['swap_to_new_trust_ms'] or 0:.0f} ms, longest gap {row['longest_gap_ms']:.0f} ms")
    return row


# ---------------------------------------------------------------------------------------------
# Rendering


def fmt(s, digits=0):
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def shown_fds(kinds):
    """The bench's own log files by name alone (`rebuilds.err`), not their temporary paths."""
    return [Path(k).name if k.startswith("/") and not k.startswith("/dev/") else k for k in kinds]


def render(r):
    meta, w = r["meta"], r["watch"]
    lines = [f"Measured {meta['date']} on {meta['machine']}, load average {fmt_load(meta['load_average_at_start'])} "
             f"at start, {fmt_load(meta['load_average_at_end'])} at end; `{meta['command']}`; vardr-init = "
             f"`{meta['vardr']}`; the app: uvicorn {meta['uvicorn']} on Python {meta['app_python']}. "
             "Medians (min-max); ratios between medians of this one run.\n"]
    s = w["swap"]
    lines.append(f"**1. Swap to bundle**: a Kubernetes `..data` swap until the bundle holding the new CA is renamed "
                 f"into place, ms, {s['swaps']} swaps of each, taking turns; vardr-init as PID 1 supervising `sleep`; "
                 "restart = SIGTERM to vardr-init right after the swap, then started again:\n")
    lines.append("| way | median | p95 | min-max | / watch |")
    lines.append("|---|---|---|---|---|")
    for name, row in s["ways"].items():
        lines.append(f"| {name} | {row['ms']['median']:.1f} | {row['p95_ms']:.1f} | "
                     f"{row['ms']['min']:.1f}-{row['ms']['max']:.1f} | {row['over_watch']:.2f}x |")
    parts = s["ways"]["restart"]["parts_ms"]
    lines.append(f"\nThe restart's parts: swap to vardr-init gone {parts['stop']['median']:.1f} ms, its new start "
                 f"to the bundle {parts['start']['median']:.1f} ms (medians).")
    m = w["memory"]
    lines.append(f"\n**2. Before and after {m['rebuilds']} rebuilds** (each swap waited for), vardr-init as PID 1 "
                 f"supervising `sleep`, KiB; page cache dropped first: {'yes' if m['page_cache_dropped'] else 'no'}:\n")
    n = m["rebuilds"]
    lines.append(f"| process | figure | before | after 1 | after {n} | after {n} - before | after {n} - after 1 |")
    lines.append("|---|---|---|---|---|---|---|")
    for process, label in (("pid1", "PID 1 (vardr-init)"), ("vardr-watch", "vardr-watch")):
        b, f, a = m["before"][process], m["after_first"][process], m["after"][process]
        for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            lines.append(f"| {label} | {key} | {b[key]} | {f[key]} | {a[key]} | {a[key] - b[key]:+d} | "
                         f"{a[key] - f[key]:+d} |")
        b, f, a = len(b["fds"]), len(f["fds"]), len(a["fds"])
        lines.append(f"| {label} | open descriptors | {b} | {f} | {a} | {a - b:+d} | {a - f:+d} |")
    lines.append(f"\nPID 1's children after: {', '.join(m['after']['children'])}; rebuilds logged: {m['rebuilt_logged']}. "
                 f"PID 1's descriptors after: {', '.join(shown_fds(m['after']['pid1']['fds']))}; vardr-watch's: "
                 f"{', '.join(shown_fds(m['after']['vardr-watch']['fds']))}.")
    t = w["rotation"]
    lines.append(f"\n**3. Failed requests during a rotation**: a new connection every {t['interval_ms']:.0f} ms to "
                 f"uvicorn serving bench/helpers/trust_app.py, from {t['before_s']:g} s before the swap until "
                 f"{t['after_s']:g} s after the app is on the new trust; rounds of each: "
                 f"{len(next(iter(t['ways'].values()))['rounds'])}, taking turns; times from the swap in ms:\n")
    lines.append("| way | failed / requests (all rounds) | failed per round | longest gap between answers | "
                 "to bundle | to first answer on the new trust | to last answer on the old trust |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, row in t["ways"].items():
        lines.append(f"| {name} | {row['failed']} / {row['requests']} | {fmt(row['failed_per_round'])} | "
                     f"{fmt(row['longest_gap_ms'])} | {fmt(row['swap_to_bundle_ms'])} | "
                     f"{fmt(row['swap_to_new_trust_ms'])} | {fmt(row['swap_to_last_old_trust_ms'])} |")
    lines.append("")
    empty = False
    for name, row in t["ways"].items():
        kinds = {}
        for round_ in row["rounds"]:
            for _, why in round_["failures"]:
                kinds[why] = kinds.get(why, 0) + 1
        if kinds:
            lines.append(f"- {name}, the failures: " + ", ".join(f"{why} {n}" for why, n in sorted(kinds.items()))
                         + ("" if row["failed"] > 5 else " (ms from the swap: " + ", ".join(
                             str(ms) for round_ in row["rounds"] for ms, _ in round_["failures"]) + ")"))
        empty |= "status nothing" in kinds
    if empty:
        lines.append('\n"status nothing": the connection was accepted, then closed without an answer.')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def app_versions(python):
    out = subprocess.run([python, "-c", "import platform, uvicorn; print(platform.python_version(), uvicorn.__version__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vardr", required=True)
    parser.add_argument("--venv-python", required=True, help="a Python with cryptography (gen_cas.py)")
    parser.add_argument("--app-python", required=True, help="a venv's Python with uvicorn")
    parser.add_argument("--runs", type=int, help="swaps in figure 1 (default 20)")
    parser.add_argument("--rebuilds", type=int, help="rebuilds in figure 2 (default 100)")
    parser.add_argument("--rounds", type=int, help="rotations of each way in figure 3 (default 10)")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    parser.add_argument("--smoke", action="store_true", help="each figure on tiny inputs; drops no page cache")
    parser.add_argument("--command", default="bash bench/run.sh --only watch")
    args = parser.parse_args()
    smoke = args.smoke
    swaps = args.runs or (2 if smoke else 20)
    rebuilds = args.rebuilds or (3 if smoke else 100)
    rounds = args.rounds or (1 if smoke else 10)
    before_s, after_s = (0.2, 0.8) if smoke else (1.0, 5.0)
    python_version, uvicorn_version = app_versions(args.app_python)
    work = Path(tempfile.mkdtemp(prefix="vardr-bench-watch-"))
    # Bundles on tmpfs, as in bench.py (a hardened container's `--tmpfs /tmp`); the volumes on disk.
    outputs = Path(tempfile.mkdtemp(prefix="vardr-bench-watch-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        (work / "logs").mkdir()
        cas = gen_cas(args, work / "cas", max(swaps, rebuilds, rounds) + 1)
        log(f"work directory {work}; {len(cas)} CAs generated")
        shown = os.path.relpath(args.vardr, HERE.parent) if args.vardr.startswith(str(HERE.parent)) else args.vardr
        r = {"meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
            "load_average_at_start": os.getloadavg(),
            "command": args.command, "smoke": smoke, "vardr": shown,
            "app_python": python_version, "uvicorn": uvicorn_version, "system_bundle": SYSTEM_BUNDLE,
        }, "watch": {}}
        # Memory first, right after the page cache is dropped.
        r["watch"]["memory"] = rebuild_memory(args, work, outputs, cas, rebuilds, drop=not smoke)
        r["watch"]["swap"] = swap_to_bundle(args, work, outputs, cas, swaps)
        r["watch"]["rotation"] = rotation(args, work, outputs, cas, rounds, before_s, after_s)
        r["meta"]["load_average_at_end"] = os.getloadavg()
    except BaseException:
        log(f"logs kept in {work / 'logs'}")
        shutil.rmtree(outputs, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(outputs, ignore_errors=True)
    report(render(r), r, args.json, smoke)


if __name__ == "__main__":
    sys.exit(main())
