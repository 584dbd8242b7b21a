"""vardr-init against what users would pick instead, on the same work, in one session.

Run through bench/run.sh, which installs the peers and passes their paths. Every timed figure is
the median of repeated runs with min and max; the commands compared in one figure run alternately
(round-robin, rotating which goes first), so a busy moment of the machine hits all of them alike,
and ratios are taken between those medians. Nothing here asserts on a timing: --smoke runs every
step once or twice on small inputs so the suite cannot rot, and checks only that each step ran.

`--only pid1` measures only the three figures of moving the certificate pass out of PID 1, each
against tini-static and for one or more vardr-init binaries side by side (old and new build in one
run): PID 1's VmRSS supervising `sleep` after a 1000-CA pass, the cached 10-CA start, the size.

Wall time, peak RSS and CPU time of one run come from the same process, measured by bench/helpers/measure.c:
fork, exec, wait4, whose rusage holds the child's peak RSS (the kernel folds in the largest
waited-for descendant, so for an init running /bin/true it is max(init, true)).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def stats(values, scale=1.0):
    values = [v * scale for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class Runner:
    """Runs commands through the `measure` helper (fork, exec, wait4 in a small static C parent),
    which reports wall time, peak RSS and CPU time, with stdin, stdout and stderr on /dev/null."""

    def __init__(self, measure):
        self.measure = measure

    def once(self, argv, env):
        out = subprocess.run([self.measure, *argv], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            # Once more without the helper, for the command's own words.
            again = subprocess.run(argv, env=env, capture_output=True, text=True)
            raise RuntimeError(f"{argv} failed (exit {out.returncode}); run again: exit {again.returncode}\n"
                               f"{again.stdout[-2000:]}{again.stderr[-2000:]}")
        elapsed_ns, peak_kib, cpu_us = out.stdout.split()
        return int(elapsed_ns) / 1e9, int(peak_kib), int(cpu_us) / 1e6

    def alternate(self, commands, runs, warmup=1):
        """commands: {name: (argv, env, prepare or None)} -> {name: {"time_ms": ..., "rss_kib": ..., "cpu_ms": ...}}."""
        names = list(commands)
        times = {name: [] for name in names}
        rss = {name: [] for name in names}
        cpu = {name: [] for name in names}
        for round_index in range(warmup + runs):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                argv, env, prepare = commands[name]
                if prepare:
                    prepare()
                elapsed, peak, cpu_time = self.once(argv, env)
                if round_index >= warmup:
                    times[name].append(elapsed)
                    rss[name].append(peak)
                    cpu[name].append(cpu_time)
        return {name: {"time_ms": stats(times[name], 1000), "rss_kib": stats(rss[name]), "cpu_ms": stats(cpu[name], 1000)}
                for name in names}


def base_env(**extra):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def remove(path):
    return lambda: Path(path).unlink(missing_ok=True)


def ratio(a, b):
    return a / b if b else None


# ---------------------------------------------------------------------------------------------
# 1. start overhead


def start_overhead(args, runner, work, outputs, cert_dirs, cases, vardrs=None, peers=True, child="/bin/true"):
    """`INIT -- /bin/true` for each case (label, custom CAs, state). VARDRS ({name: binary}, by
    default the one vardr-init) each get a bundle directory of their own, so two builds measured
    side by side never invalidate each other's cache; PEERS adds tini, dumb-init and the Python
    entrypoint to tini-static and the bare /bin/true that are always there. CHILD is what each
    vardr-init starts (a copy of /bin/true named like a Python, to time the runtime detection)."""
    vardrs = vardrs or {"vardr-init": args.vardr}
    results = {}
    for case_index, (label, count, state) in enumerate(cases):
        certs = cert_dirs.get(count, work / "no-certs")
        changed = state == "changed"
        commands = {"bare /bin/true": (["/bin/true"], base_env(), None)}
        if peers:
            commands["tini"] = ([args.tini, "-s", "--", "/bin/true"], base_env(), None)
        # -s: off PID 1 vardr-init registers as child subreaper too, so both make that call.
        commands["tini-static"] = ([args.tini_static, "-s", "--", "/bin/true"], base_env(), None)
        if peers:
            commands["dumb-init"] = ([args.dumb_init, "/bin/true"], base_env(), None)
        bundle_dirs = {}
        for vardr_index, (name, binary) in enumerate(vardrs.items()):
            bundle_dirs[name] = fresh_dir(outputs / f"start-{case_index}-vardr-{vardr_index}")
            env = base_env(VARDR_CERTS_DIR=certs, VARDR_CA_BUNDLE=bundle_dirs[name] / "bundle.pem",
                           VARDR_SYSTEM_CA_BUNDLE=SYSTEM_BUNDLE)
            # "changed": nothing left of the last run, wherever a build keeps its cache record.
            commands[name] = ([binary, "--", child], env, clear(bundle_dirs[name]) if changed else None)
        if peers:
            py_bundle = outputs / f"start-python-{label}.pem"
            py_env = base_env(VARDR_CERTS_DIR=certs, VARDR_CA_BUNDLE=py_bundle, VARDR_SYSTEM_CA_BUNDLE=SYSTEM_BUNDLE)
            commands["python entrypoint"] = ([args.python, str(HERE / "baselines/entrypoint.py"), "/bin/true"],
                                             py_env, remove(f"{py_bundle}.sha256") if changed else None)
        before = {}
        if state == "cached":
            # The cache is made here; every timed run must then hit it: nothing written.
            for name in vardrs:
                runner.once(*commands[name][:2])
                before[name] = snapshot(bundle_dirs[name])
        runs = args.runs if count < 1000 else max(1, args.runs // 2)
        measured = runner.alternate(commands, runs, warmup=1)
        for name, files in before.items():
            if snapshot(bundle_dirs[name]) != files:
                raise RuntimeError(f"{label}: {name} wrote to {bundle_dirs[name]} on a cached start: not a cache hit")
        tini_static = measured["tini-static"]["time_ms"]["median"]
        results[label] = {
            "custom_cas": count,
            "state": state,
            "commands": measured,
            "binaries": dict(vardrs),
            "over_tini_static": {name: ratio(measured[name]["time_ms"]["median"], tini_static) for name in vardrs},
        }
        if peers:
            vardr = measured["vardr-init"]["time_ms"]["median"]
            results[label].update({
                "vardr_minus_tini_ms": vardr - measured["tini"]["time_ms"]["median"],
                "python_over_vardr": ratio(measured["python entrypoint"]["time_ms"]["median"], vardr),
                "vardr_over_tini": ratio(vardr, measured["tini"]["time_ms"]["median"]),
                "vardr_over_tini_static": ratio(vardr, tini_static),
            })
            log(f"start {label}: vardr {vardr:.2f} ms, tini {measured['tini']['time_ms']['median']:.2f} ms, "
                f"tini-static {tini_static:.2f} ms, python {measured['python entrypoint']['time_ms']['median']:.1f} ms")
        else:
            log(f"start {label}: tini-static -s {tini_static:.2f} ms, " + ", ".join(
                f"{name} {measured[name]['time_ms']['median']:.2f} ms" for name in vardrs))
    return results


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def clear(directory):
    """A prepare step: empties DIRECTORY (the bundle, its cache record, the Python hook's
    directory, anything else)."""
    def run():
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return run


def snapshot(directory):
    """What a cache hit must leave alone: each file's name, inode, size and mtime."""
    return {entry.name: (st.st_ino, st.st_size, st.st_mtime_ns)
            for entry in sorted(directory.iterdir()) for st in [entry.stat()]}


# ---------------------------------------------------------------------------------------------
# 2. `vardr-init certs` scaling, and update-ca-certificates on the same CAs


def certs_scaling(args, runner, work, outputs, cert_dirs, counts):
    """`vardr-init certs` cold (no cache record) and cached, bundle on tmpfs, and once more for
    the middle count with the bundle on the local disk, where the two fsyncs cost real time."""
    results = {}
    rows = [(str(count), count, outputs) for count in counts]
    rows.append((f"{counts[0]} on disk", counts[0], work))
    for key, count, directory in rows:
        bundle = directory / f"scaling-{count}.pem"
        env = base_env(VARDR_CERTS_DIR=cert_dirs[count], VARDR_CA_BUNDLE=bundle,
                       VARDR_SYSTEM_CA_BUNDLE=SYSTEM_BUNDLE)
        argv = [args.vardr, "certs"]
        runs = args.runs if count <= 1000 else max(1, args.runs // 2)
        measured = runner.alternate({"cold": (argv, env, remove(f"{bundle}.sha256")),
                                     "cached": (argv, env, None)}, runs, warmup=1)
        measured["custom_cas"] = count
        measured["bundle_filesystem"] = fs_type(directory)
        results[key] = measured
        log(f"certs {key}: cold {measured['cold']['time_ms']['median']:.1f} ms "
            f"{measured['cold']['rss_kib']['median']} KiB, cached {measured['cached']['time_ms']['median']:.1f} ms")
    small, large = str(counts[0]), str(counts[-1])
    results["scaling"] = {
        kind: {
            "time_ratio": ratio(results[large][kind]["time_ms"]["median"], results[small][kind]["time_ms"]["median"]),
            "count_ratio": counts[-1] / counts[0],
            "us_per_ca_small": 1000 * results[small][kind]["time_ms"]["median"] / counts[0],
            "us_per_ca_large": 1000 * results[large][kind]["time_ms"]["median"] / counts[-1],
            # The marginal cost per CA between the two sizes: fixed costs (the system bundle,
            # process start) cancel out.
            "marginal_us_per_ca": 1000 * (results[large][kind]["time_ms"]["median"]
                                          - results[small][kind]["time_ms"]["median"]) / (counts[-1] - counts[0]),
            "rss_ratio": ratio(results[large][kind]["rss_kib"]["median"], results[small][kind]["rss_kib"]["median"]),
        }
        for kind in ("cold", "cached")
    }
    return results


def fs_type(path):
    out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(path)], capture_output=True, text=True).stdout
    return (out.split() or ["unknown"])[0]


def sandbox_update(work, cert_dir, then):
    """update-ca-certificates --fresh in bwrap: a private mount namespace where /etc/ssl/certs and
    the hooks directory are tmpfs and /etc/ca-certificates.conf is a copy, so the host's /etc/ssl
    is never touched; CERT_DIR is mounted as /usr/local/share/ca-certificates; THEN runs after."""
    # Only existing paths are mount points: with / bound read-write, bwrap would create missing
    # ones on the host.
    hooks = ["--tmpfs", "/etc/ca-certificates/update.d"] if os.path.isdir("/etc/ca-certificates/update.d") else []
    return ["/usr/bin/bwrap", "--dev-bind", "/", "/", "--tmpfs", "/etc/ssl/certs", *hooks,
            "--bind", str(work / "ca-certificates.conf"), "/etc/ca-certificates.conf",
            "--ro-bind", str(cert_dir), "/usr/local/share/ca-certificates",
            "--", "/bin/sh", "-c", f"/usr/sbin/update-ca-certificates --fresh >/dev/null && {then}"]


def mozilla_bundle(work, count_in=None):
    """The bundle update-ca-certificates builds from the distribution's CAs alone (the host may
    have local CAs of its own in its bundle): the system bundle of this comparison."""
    shutil.copy("/etc/ca-certificates.conf", work / "ca-certificates.conf")
    (work / "empty").mkdir(exist_ok=True)
    out = work / "mozilla.pem"
    subprocess.run(sandbox_update(work, work / "empty", f"cat /etc/ssl/certs/ca-certificates.crt > {out}"),
                   check=True)
    return out


def check_update_ca_bundle(work, cert_dir, expected):
    """The sandboxed update-ca-certificates really builds a bundle with the custom CAs in it."""
    out = subprocess.run(sandbox_update(work, cert_dir, "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt"),
                         capture_output=True, text=True, check=True)
    if int(out.stdout) != expected:
        raise RuntimeError(f"sandboxed update-ca-certificates built {out.stdout.strip()} certificates, expected {expected}")


def update_ca_certificates(args, runner, work, cert_dirs, counts, runs):
    """Debian's update-ca-certificates --fresh against `vardr-init certs` (cold: no cache record),
    the same custom CAs on top of the same distribution CAs, both inside bwrap, writing to tmpfs;
    `bwrap /bin/true` is the floor both pay."""
    mozilla = mozilla_bundle(work)
    system_count = mozilla.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
    results = {}
    for count in counts:
        check_update_ca_bundle(work, cert_dirs[count], system_count + count)
        scratch = work / "sandbox-tmpfs"
        scratch.mkdir(exist_ok=True)
        sandbox = ["/usr/bin/bwrap", "--dev-bind", "/", "/", "--tmpfs", str(scratch), "--"]
        env = base_env(VARDR_CERTS_DIR=cert_dirs[count], VARDR_CA_BUNDLE=scratch / "bundle.pem",
                       VARDR_SYSTEM_CA_BUNDLE=mozilla)
        measured = runner.alternate({
            "bwrap /bin/true": (sandbox + ["/bin/true"], base_env(), None),
            "vardr-init certs": (sandbox + [args.vardr, "certs"], env, None),
            "update-ca-certificates": (sandbox_update(work, cert_dirs[count], "true"), base_env(), None),
        }, runs, warmup=1)
        floor = measured["bwrap /bin/true"]["time_ms"]["median"]
        v = measured["vardr-init certs"]["time_ms"]["median"] - floor
        u = measured["update-ca-certificates"]["time_ms"]["median"] - floor
        measured["custom_cas"] = count
        measured["system_certificates"] = system_count
        measured["net_ms"] = {"vardr-init certs": v, "update-ca-certificates": u}
        measured["update_over_vardr_net"] = ratio(u, v)
        results[str(count)] = measured
        log(f"update-ca-certificates {count}: {u:.0f} ms vs vardr-init certs {v:.1f} ms (net of bwrap)")
    return results


# ---------------------------------------------------------------------------------------------
# 3. memory while supervising


def pid1_child(unshare_pid):
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
    for _ in range(1000):
        listed = children.read_text().split()
        if listed:
            return int(listed[0])
        time.sleep(0.005)
    raise RuntimeError("the init did not start")


def memory_of(pid):
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    kib = lambda key: int(status[key].split()[0])  # noqa: E731
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0])
    return {"VmRSS": kib("VmRSS"), "VmHWM": kib("VmHWM"), "RssAnon": kib("RssAnon"),
            "RssFile": kib("RssFile"), "Private": rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
            "Pss": rollup.get("Pss", 0)}


def supervising_memory(args, work, outputs, cert_dirs, count, runs, vardrs=None, peers=True):
    """Own memory of each init as PID 1 of a new PID namespace while it supervises `sleep`: read
    once PID 1's only child is `sleep` (a build that parses in a worker process has reaped it by
    then) and has settled for half a second. Each of VARDRS ({name: binary}, by default the one
    vardr-init) runs without certificates and after a full pass over COUNT CAs (a fresh bundle
    directory each run: no cache, wherever a build keeps it; the bundle is checked to hold them);
    tini-static always, dumb-init with PEERS."""
    vardrs = vardrs or {"vardr-init": args.vardr}
    expected = Path(SYSTEM_BUNDLE).read_bytes().count(b"-----BEGIN CERTIFICATE-----") + count
    variants = {}
    for name, binary in vardrs.items():
        variants[f"{name}, no certs"] = ([binary, "--"], work / "no-certs", None)
        variants[f"{name}, after {count} CAs"] = ([binary, "--"], cert_dirs[count], expected)
    variants["tini-static"] = ([args.tini_static, "--"], None, None)
    if peers:
        variants["dumb-init"] = ([args.dumb_init], None, None)
    samples = {name: [] for name in variants}
    for run in range(runs):
        # Rotate which goes first, as Runner.alternate does.
        names = list(variants)
        names = names[run % len(names):] + names[:run % len(names)]
        for index, name in enumerate(names):
            init, certs, certificates = variants[name]
            env = base_env()
            if certs is not None:
                bundle = fresh_dir(outputs / f"supervise-{run}-{index}") / "bundle.pem"
                env = base_env(VARDR_CERTS_DIR=certs, VARDR_CA_BUNDLE=bundle, VARDR_SYSTEM_CA_BUNDLE=SYSTEM_BUNDLE)
            proc = subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", *init, "sleep", "1000"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pid = pid1_child(proc.pid)
            try:
                child = only_child(pid, "sleep")
                time.sleep(0.5)
                samples[name].append(memory_of(pid))
                if certificates is not None:
                    found = bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
                    exported = f"SSL_CERT_FILE={bundle}".encode() in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                    if found != certificates or not exported:
                        raise RuntimeError(f"{name}: the bundle holds {found} certificates, expected {certificates}; "
                                           f"SSL_CERT_FILE exported to the child: {exported}")
            finally:
                stop(proc, pid)
    results = {}
    for name, rows in samples.items():
        results[name] = {key: stats([row[key] for row in rows]) for key in rows[0]}
    tini = results["tini-static"]
    over = {name: {key: ratio(results[name][key]["median"], tini[key]["median"]) for key in ("VmRSS", "VmHWM")}
            for name in results if name != "tini-static"}
    log("supervising VmRSS: " + ", ".join(f"{name} {row['VmRSS']['median']:.0f} KiB" for name, row in results.items()))
    return {"custom_cas": count, "binaries": dict(vardrs), "inits": results, "over_tini_static": over}


def only_child(pid, comm):
    """Waits until PID's one child is COMM (after its exec, with no other child beside it)."""
    children = []
    for _ in range(2000):
        try:
            children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            raise RuntimeError(f"PID 1 (pid {pid}) exited before {comm} was its only child") from None
        names = []
        for child in children:
            try:
                names.append(Path(f"/proc/{child}/comm").read_text().strip())
            except (FileNotFoundError, ProcessLookupError):  # gone meanwhile (ESRCH mid-read)
                names.append(None)
        if names == [comm]:
            return children[0]
        time.sleep(0.005)
    raise RuntimeError(f"PID 1 (pid {pid}) never had {comm} as its only child: children {children}")


def stop(proc, pid):
    """SIGTERM to PID (PID 1 of the namespace), which forwards it; SIGKILL, which ends the whole
    namespace, if it lingers; then the unshare process ends too."""
    try:
        os.kill(pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        proc.wait()
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------------------------------------
# 4. health probe


def health(args, runner, runs):
    server = subprocess.Popen([args.python, "-c", HEALTH_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/health"
        probe = ("import sys, urllib.request; "
                 "sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=3).status < 300 else 1)")
        measured = runner.alternate({
            "vardr-init health": ([args.vardr, "health", "--url", url], base_env(), None),
            "python urllib": ([args.python, "-c", probe, url], base_env(), None),
        }, runs, warmup=2)
    finally:
        server.terminate()
        server.wait()
    v, p = measured["vardr-init health"], measured["python urllib"]
    measured["python_over_vardr_time"] = ratio(p["time_ms"]["median"], v["time_ms"]["median"])
    measured["python_over_vardr_rss"] = ratio(p["rss_kib"]["median"], v["rss_kib"]["median"])
    log(f"health: vardr {v['time_ms']['median']:.2f} ms, python {p['time_ms']['median']:.1f} ms")
    return measured


HEALTH_SERVER = r"""
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"status":"ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


# ---------------------------------------------------------------------------------------------
# 5. signal forwarding latency


def signal_latency(args, sigchild, count):
    """SIGUSR1 sent to PID 1 (of a fresh PID namespace) until the child's handler runs, as
    CLOCK_MONOTONIC in both; `direct` signals the child itself, with no init: the floor."""
    inits = {
        "direct (no init)": None,
        "tini": [args.tini_static, "--"],
        "dumb-init": [args.dumb_init],
        "vardr-init": [args.vardr, "--"],
    }
    samples = {name: [] for name in inits}
    procs = {}
    try:
        for name, init in inits.items():
            argv = [str(sigchild)] if init is None else ["unshare", "-p", "-f", "--mount-proc", *init, str(sigchild)]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    env=base_env(VARDR_CERTS_DIR="/nonexistent"))
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"{name}: the signal child did not start")
            target = proc.pid if init is None else pid1_child(proc.pid)
            procs[name] = (proc, target)
        # Alternate one signal at a time across the inits.
        for _ in range(count):
            for name, (proc, target) in procs.items():
                sent = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                os.kill(target, signal.SIGUSR1)
                received = int(proc.stdout.readline())
                samples[name].append((received - sent) / 1000)
                time.sleep(0.0005)
    finally:
        for proc, target in procs.values():
            os.kill(target, signal.SIGTERM)
            proc.wait()
    results = {name: {"p50_us": percentile(v, 50), "p99_us": percentile(v, 99), "min_us": min(v),
                      "max_us": max(v), "n": len(v)} for name, v in samples.items()}
    log("signal latency p50: " + ", ".join(f"{n} {r['p50_us']:.0f} us" for n, r in results.items()))
    return results


# ---------------------------------------------------------------------------------------------
# 6. zombie reaping


def reaping(args, orphans, count, runs):
    inits = {
        "tini": [args.tini_static, "--"],
        "dumb-init": [args.dumb_init],
        "vardr-init": [args.vardr, "--"],
    }
    samples = {name: [] for name in inits}
    for _ in range(runs):
        for name, init in inits.items():
            out = subprocess.run(["unshare", "-p", "-f", "--mount-proc", *init, str(orphans), str(count)],
                                 capture_output=True, text=True, env=base_env(VARDR_CERTS_DIR="/nonexistent"),
                                 check=True, timeout=600)
            match = re.search(r"reaped_ms=([\d.]+)", out.stdout)
            samples[name].append(float(match.group(1)))
    results = {}
    for name, values in samples.items():
        s = stats(values)
        results[name] = {"reap_ms": s, "orphans_per_s": count / (s["median"] / 1000)}
    log("reaping: " + ", ".join(f"{n} {r['reap_ms']['median']:.0f} ms" for n, r in results.items()))
    return {"orphans": count, "inits": results}


# ---------------------------------------------------------------------------------------------
# 7. binary size


def sizes(args, vardrs=None, peers=True):
    def describe(path):
        out = subprocess.run(["file", "-b", "-L", path], capture_output=True, text=True).stdout.strip()
        # Recorded relative to the repository when inside it: results name no machine's paths.
        shown = os.path.relpath(path, HERE.parent) if str(Path(path).resolve()).startswith(str(HERE.parent)) else path
        return {"path": shown, "bytes": os.path.getsize(path), "static": "statically linked" in out or "static-pie" in out,
                "stripped": ", stripped" in out, "file": out}
    vardrs = vardrs or {"vardr-init": args.vardr}
    out = {name: describe(binary) for name, binary in vardrs.items()}
    out["tini-static"] = describe(args.tini_static)
    if peers:
        out["tini"] = describe(args.tini)
        out["dumb-init"] = describe(args.dumb_init)
    return out


# ---------------------------------------------------------------------------------------------
# Rendering


def fmt_ms(s, digits=1):
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def render_markdown(r):
    lines = []
    meta = r["meta"]
    lines.append(f"Measured {meta['date']} on {meta['machine']}; `{meta['command']}`. Times are medians "
                 "(min-max) of alternating runs in one session; ratios are between medians.\n")
    lines.append("**1. Start overhead**: `INIT -- /bin/true`, wall time in ms, with the custom CAs shown "
                 f"plus Debian's system bundle ({meta['system_certificates']} certificates). "
                 f"Bundles on {meta['bundle_filesystem']}. \"changed\" = no cache record (a full pass: read, validate, merge, write, fsync, verify); "
                 "\"cached\" = inputs hashed, bundle reused.\n")
    lines.append("| case | bare /bin/true | tini | tini-static | dumb-init | vardr-init | Python entrypoint | Python / vardr-init "
                 "| vardr-init - tini | vardr-init / tini-static |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for label, case in r["start"].items():
        c = case["commands"]
        digits = 2 if case["custom_cas"] < 1000 else 1
        lines.append(f"| {label} | {fmt_ms(c['bare /bin/true']['time_ms'], 2)} | {fmt_ms(c['tini']['time_ms'], 2)} | "
                     f"{fmt_ms(c['tini-static']['time_ms'], 2)} | "
                     f"{fmt_ms(c['dumb-init']['time_ms'], 2)} | {fmt_ms(c['vardr-init']['time_ms'], digits)} | "
                     f"{fmt_ms(c['python entrypoint']['time_ms'], 0)} | {case['python_over_vardr']:.0f}x | "
                     f"{case['vardr_minus_tini_ms']:+.2f} ms | {case['vardr_over_tini_static']:.2f}x |")
    lines.append("")
    lines.append("**2. `vardr-init certs`**, time in ms and peak RSS in KiB; \"cold\" = no cache record, "
                 "\"cached\" = reused; the bundle on tmpfs unless said:\n")
    lines.append("| custom CAs | cold: time | cold: peak RSS | cached: time | cached: peak RSS |")
    lines.append("|---|---|---|---|---|")
    for key, row in r["certs"].items():
        if key == "scaling":
            continue
        lines.append(f"| {row['custom_cas']}, bundle on {row['bundle_filesystem']} | {fmt_ms(row['cold']['time_ms'])} | {fmt_ms(row['cold']['rss_kib'], 0)} | "
                     f"{fmt_ms(row['cached']['time_ms'])} | {fmt_ms(row['cached']['rss_kib'], 0)} |")
    if "scaling" in r["certs"]:
        s = r["certs"]["scaling"]
        lines.append(f"\nScaling, {s['cold']['count_ratio']:.0f}x the CAs: cold {s['cold']['time_ratio']:.1f}x the time "
                     f"({s['cold']['marginal_us_per_ca']:.1f} us per extra CA), cached {s['cached']['time_ratio']:.1f}x "
                     f"({s['cached']['marginal_us_per_ca']:.1f} us per extra CA); cold peak RSS "
                     f"{s['cold']['rss_ratio']:.1f}x.")
    if r.get("update_ca_certificates"):
        lines.append("\n**`update-ca-certificates --fresh` vs `vardr-init certs`** (cold), the same custom CAs on "
                     "the same Mozilla set, both in a bwrap sandbox (tmpfs outputs), ms net of `bwrap /bin/true`:\n")
        lines.append("| custom CAs | bwrap /bin/true | vardr-init certs | update-ca-certificates | ratio |")
        lines.append("|---|---|---|---|---|")
        for row in r["update_ca_certificates"].values():
            lines.append(f"| {row['custom_cas']} | {fmt_ms(row['bwrap /bin/true']['time_ms'])} | "
                         f"{row['net_ms']['vardr-init certs']:.1f} | {row['net_ms']['update-ca-certificates']:.0f} | "
                         f"{row['update_over_vardr_net']:.0f}x |")
    m = r["supervising"]
    lines.append("\n**3. Memory while supervising** `sleep`, as PID 1 of a new PID namespace, KiB (medians); "
                 "VmRSS = RssFile (the binary's pages, shared and reclaimable) + RssAnon:\n")
    lines.append(memory_table(m))
    h = r["health"]
    lines.append("\n**4. Health probe** against the same local HTTP server:\n")
    lines.append("| metric | vardr-init health | python3 urllib | Python / vardr-init |")
    lines.append("|---|---|---|---|")
    lines.append(f"| wall time, ms | {fmt_ms(h['vardr-init health']['time_ms'], 2)} | {fmt_ms(h['python urllib']['time_ms'], 1)} | "
                 f"{h['python_over_vardr_time']:.0f}x |")
    lines.append(f"| peak RSS, KiB | {fmt_ms(h['vardr-init health']['rss_kib'], 0)} | {fmt_ms(h['python urllib']['rss_kib'], 0)} | "
                 f"{h['python_over_vardr_rss']:.0f}x |")
    s = r["signals"]
    lines.append("\n**5. Signal forwarding latency**, SIGUSR1 sent to PID 1 until the child's handler runs, us:\n")
    lines.append("| init | p50 | p99 | min | max | signals |")
    lines.append("|---|---|---|---|---|---|")
    for name, row in s.items():
        lines.append(f"| {name} | {row['p50_us']:.0f} | {row['p99_us']:.0f} | {row['min_us']:.0f} | {row['max_us']:.0f} | {row['n']} |")
    z = r["reaping"]
    lines.append(f"\n**6. Reaping** {z['orphans']} orphans that exit at once, as PID 1, until the last is reaped:\n")
    lines.append("| init | time, ms | orphans/s |")
    lines.append("|---|---|---|")
    for name, row in z["inits"].items():
        lines.append(f"| {name} | {fmt_ms(row['reap_ms'], 0)} | {row['orphans_per_s']:.0f} |")
    b = r["sizes"]
    lines.append("\n**7. Binary size**:\n")
    lines.append("| binary | bytes | static | stripped |")
    lines.append("|---|---|---|---|")
    for name, row in b.items():
        lines.append(f"| {name} | {row['bytes']} | {'yes' if row['static'] else 'no (dynamic)'} | {'yes' if row['stripped'] else 'no'} |")
    lines.append("\n**Targets**:\n")
    lines.append("| target | measured | met |")
    lines.append("|---|---|---|")
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def memory_table(m):
    lines = ["| init | VmRSS | RssAnon | RssFile | VmHWM (peak) | VmRSS / tini-static | VmHWM / tini-static |",
             "|---|---|---|---|---|---|---|"]
    for name, row in m["inits"].items():
        over = m["over_tini_static"].get(name, {"VmRSS": 1.0, "VmHWM": 1.0})
        lines.append(f"| {name} | {row['VmRSS']['median']:.0f} ({row['VmRSS']['min']:.0f}-{row['VmRSS']['max']:.0f}) | "
                     f"{row['RssAnon']['median']:.0f} | {row['RssFile']['median']:.0f} | {row['VmHWM']['median']:.0f} | "
                     f"{over['VmRSS']:.2f}x | {over['VmHWM']:.2f}x |")
    return "\n".join(lines)


def render_summary(r):
    """The headline rows, one per figure, for README."""
    def cell(s, digits=1):
        return f"{s['median']:.{digits}f}"
    rows = ["| figure | vardr-init | peer | peer / vardr-init |", "|---|---|---|---|"]
    for label, case in r["start"].items():
        c = case["commands"]
        rows.append(f"| start, {label}, ms | {cell(c['vardr-init']['time_ms'], 2)} | Python entrypoint "
                    f"{cell(c['python entrypoint']['time_ms'], 0)}; tini {cell(c['tini']['time_ms'], 2)}; "
                    f"tini-static {cell(c['tini-static']['time_ms'], 2)} | "
                    f"{case['python_over_vardr']:.0f}x; {1 / case['vardr_over_tini']:.2f}x; "
                    f"{1 / case['vardr_over_tini_static']:.2f}x |")
    for key, row in r["certs"].items():
        if key != "scaling":
            rows.append(f"| `vardr-init certs`, {row['custom_cas']} CAs, bundle on {row['bundle_filesystem']}: cold / cached, "
                        "ms; cold peak RSS, KiB | "
                        f"{cell(row['cold']['time_ms'])} / {cell(row['cached']['time_ms'])}; "
                        f"{row['cold']['rss_kib']['median']:.0f} | | |")
    for row in r.get("update_ca_certificates", {}).values():
        rows.append(f"| {row['custom_cas']} CAs: `vardr-init certs` vs `update-ca-certificates`, ms | "
                    f"{row['net_ms']['vardr-init certs']:.1f} | {row['net_ms']['update-ca-certificates']:.0f} | "
                    f"{row['update_over_vardr_net']:.0f}x |")
    m = r["supervising"]["inits"]
    after = m[f"vardr-init, after {r['supervising']['custom_cas']} CAs"]
    rows.append(f"| VmRSS as PID 1 supervising, after {r['supervising']['custom_cas']} CAs (anonymous), KiB | "
                f"{after['VmRSS']['median']:.0f} ({after['RssAnon']['median']:.0f}) | tini-static "
                f"{m['tini-static']['VmRSS']['median']:.0f} ({m['tini-static']['RssAnon']['median']:.0f}); dumb-init "
                f"{m['dumb-init']['VmRSS']['median']:.0f} ({m['dumb-init']['RssAnon']['median']:.0f}) | "
                f"{m['tini-static']['VmRSS']['median'] / after['VmRSS']['median']:.2f}x (tini-static) |")
    h = r["health"]
    rows.append(f"| health probe, ms; peak RSS KiB | {cell(h['vardr-init health']['time_ms'], 2)}; "
                f"{h['vardr-init health']['rss_kib']['median']:.0f} | Python urllib {cell(h['python urllib']['time_ms'])}; "
                f"{h['python urllib']['rss_kib']['median']:.0f} | {h['python_over_vardr_time']:.0f}x; "
                f"{h['python_over_vardr_rss']:.0f}x |")
    sig = r["signals"]
    rows.append(f"| signal to PID 1 until the child's handler, p50 / p99, us | {sig['vardr-init']['p50_us']:.0f} / "
                f"{sig['vardr-init']['p99_us']:.0f} | tini {sig['tini']['p50_us']:.0f} / {sig['tini']['p99_us']:.0f}; "
                f"dumb-init {sig['dumb-init']['p50_us']:.0f} / {sig['dumb-init']['p99_us']:.0f}; no init "
                f"{sig['direct (no init)']['p50_us']:.0f} / {sig['direct (no init)']['p99_us']:.0f} | |")
    z = r["reaping"]["inits"]
    rows.append(f"| reaping {r['reaping']['orphans']} orphans, ms | {cell(z['vardr-init']['reap_ms'], 0)} | "
                f"tini {cell(z['tini']['reap_ms'], 0)}; dumb-init {cell(z['dumb-init']['reap_ms'], 0)} | "
                f"{z['tini']['reap_ms']['median'] / z['vardr-init']['reap_ms']['median']:.2f}x (tini) |")
    b = r["sizes"]
    rows.append(f"| binary, bytes | {b['vardr-init']['bytes']} (static) | tini-static {b['tini-static']['bytes']}; "
                f"dumb-init {b['dumb-init']['bytes']} (dynamic) | {b['tini-static']['bytes'] / b['vardr-init']['bytes']:.2f}x "
                "(tini-static) |")
    return "\n".join(rows) + "\n"


def targets(r):
    out = []
    cached = r["start"].get("10 CAs, cached")
    if cached:
        out.append({"target": "cache-hit start >= 50x faster than the Python entrypoint",
                    "measured": f"{cached['python_over_vardr']:.0f}x", "met": cached["python_over_vardr"] >= 50})
        out.append({"target": "cache-hit start within 1 ms of `tini -- /bin/true`",
                    "measured": f"{cached['vardr_minus_tini_ms']:+.2f} ms", "met": cached["vardr_minus_tini_ms"] <= 1})
    big = r["certs"].get("1000")
    if big:
        t = big["cold"]["time_ms"]["median"]
        out.append({"target": "1000-CA rebuild <= 15 ms", "measured": f"{t:.1f} ms", "met": t <= 15})
    if cached:
        over = cached["vardr_over_tini_static"]
        out.append({"target": "cache-hit 10-CA start <= 1.6x `tini-static -s -- /bin/true`",
                    "measured": f"{over:.2f}x", "met": over <= 1.6})
    after = f"vardr-init, after {r['supervising']['custom_cas']} CAs"
    rss = r["supervising"]["inits"][after]["VmRSS"]["median"]
    out.append({"target": "supervising RSS <= 1 MiB (after a certificate pass)", "measured": f"{rss:.0f} KiB",
                "met": rss <= 1024})
    over = r["supervising"]["over_tini_static"][after]["VmRSS"]
    out.append({"target": "supervising VmRSS <= 1.10x tini-static's (after a certificate pass)",
                "measured": f"{over:.2f}x", "met": over <= 1.10})
    size = r["sizes"]["vardr-init"]["bytes"]
    out.append({"target": "binary <= 1.5 MiB", "measured": f"{size / 1048576:.2f} MiB", "met": size <= 1.5 * 1048576})
    h = r["health"]["python_over_vardr_time"]
    out.append({"target": "health >= 20x faster than Python urllib", "measured": f"{h:.0f}x", "met": h >= 20})
    return out


def render_svg(r):
    """Start overhead (median ms, log scale) against the number of custom CAs."""
    series = {}
    for case in r["start"].values():
        n = case["custom_cas"]
        c = case["commands"]
        if case["state"] in ("none", "cached"):
            series.setdefault("vardr-init, cached", []).append((n, c["vardr-init"]["time_ms"]["median"]))
            series.setdefault("Python entrypoint, cached", []).append((n, c["python entrypoint"]["time_ms"]["median"]))
            series.setdefault("tini (no CA work)", []).append((n, c["tini"]["time_ms"]["median"]))
            series.setdefault("dumb-init (no CA work)", []).append((n, c["dumb-init"]["time_ms"]["median"]))
        if case["state"] in ("none", "changed"):
            series.setdefault("vardr-init, changed", []).append((n, c["vardr-init"]["time_ms"]["median"]))
            series.setdefault("Python entrypoint, changed", []).append((n, c["python entrypoint"]["time_ms"]["median"]))
    colors = {"vardr-init, cached": "#1f77b4", "vardr-init, changed": "#1f77b4",
              "Python entrypoint, cached": "#d62728", "Python entrypoint, changed": "#d62728",
              "tini (no CA work)": "#7f7f7f", "dumb-init (no CA work)": "#bcbd22"}
    dashed = {"vardr-init, changed", "Python entrypoint, changed"}
    import math
    width, height, left, right, top, bottom = 640, 360, 60, 200, 30, 45
    counts = sorted({n for pts in series.values() for n, _ in pts})
    xs = {n: left + i * (width - left - right) / max(1, len(counts) - 1) for i, n in enumerate(counts)}
    values = [v for pts in series.values() for _, v in pts]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    y = lambda v: top + (height - top - bottom) * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="13">Start overhead, INIT -- /bin/true (median ms, log scale)</text>']
    decade = lo
    while decade <= hi:
        yy = y(decade)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    for n in counts:
        out.append(f'<text x="{xs[n]:.1f}" y="{height - bottom + 16}" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" text-anchor="middle">custom CAs (plus the system bundle)</text>')
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted(pts)
        path = " ".join(f"{xs[n]:.1f},{y(v):.1f}" for n, v in pts)
        dash = ' stroke-dasharray="5,3"' if name in dashed else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="2"{dash}/>')
        for n, v in pts:
            out.append(f'<circle cx="{xs[n]:.1f}" cy="{y(v):.1f}" r="3" fill="{colors[name]}"/>')
        ly = top + 10 + i * 18
        out.append(f'<line x1="{width - right + 12}" y1="{ly}" x2="{width - right + 36}" y2="{ly}" stroke="{colors[name]}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{width - right + 42}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def report(text, r, path, smoke):
    """Prints a partial run's figures (`--only`), keeps them in `path` if given."""
    print(text)
    if path:
        Path(path).write_text(json.dumps(r, indent=1) + "\n")
        log(f"written: {path}")
    if smoke:
        log("smoke run complete (figures above are from tiny inputs and are not results)")


def pid1_figures(args, runner, work, outputs, cert_dirs, small, large, memory_runs):
    """The three figures of the PID 1 refactor, each vardr-init binary side by side with
    tini-static in one run: VmRSS of PID 1 supervising `sleep` after a LARGE-CA pass, the cached
    SMALL-CA start, binary size; each as a ratio to tini-static."""
    vardrs = args.vardrs
    r = {"supervising": supervising_memory(args, work, outputs, cert_dirs, large, memory_runs,
                                           vardrs=vardrs, peers=False)}
    r["start"] = start_overhead(args, runner, work, outputs, cert_dirs, [(f"{small} CAs, cached", small, "cached")],
                                vardrs=vardrs, peers=False)
    # The same start with a command that is a Python: the verdicts' runtime is then found from its
    # path (python3 -> python3.12), the default command's case. The "Python" is /bin/true renamed.
    python = work / "fake-python" / "bin" / "python3"
    python.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        shutil.copy("/bin/true", python.parent / "python3.12")
        python.symlink_to("python3.12")
    r["start_python"] = start_overhead(args, runner, work, outputs, cert_dirs,
                                       [(f"{small} CAs, cached, the command a Python", small, "cached")],
                                       vardrs=vardrs, peers=False, child=str(python))
    r["sizes"] = sizes(args, vardrs=vardrs, peers=False)
    tini_bytes = r["sizes"]["tini-static"]["bytes"]
    r["size_over_tini_static"] = {name: r["sizes"][name]["bytes"] / tini_bytes for name in vardrs}
    return r


def start_table(c):
    """The start figures of one case: wall and CPU time of each command, as ratios to tini-static."""
    lines = ["| command | wall time, ms | / tini-static | CPU time (user + sys), ms | / tini-static |",
             "|---|---|---|---|---|"]
    for name, row in c.items():
        over = row["time_ms"]["median"] / c["tini-static"]["time_ms"]["median"]
        cpu_over = ratio(row["cpu_ms"]["median"], c["tini-static"]["cpu_ms"]["median"])
        lines.append(f"| {name} | {fmt_ms(row['time_ms'], 2)} | {over:.2f}x | {fmt_ms(row['cpu_ms'], 2)} | "
                     f"{f'{cpu_over:.2f}x' if cpu_over else '-'} |")
    return lines


def render_pid1(r):
    meta, p = r["meta"], r["pid1"]
    m, (label, start), b = p["supervising"], next(iter(p["start"].items())), p["sizes"]
    lines = [f"Measured {meta['date']} on {meta['machine']}, load average {fmt_load(meta['load_average_at_start'])} "
             f"at start, {fmt_load(meta['load_average_at_end'])} at end; `{meta['command']}`. Medians (min-max); "
             "ratios are between medians of this one run.\n"]
    for name, binary in m["binaries"].items():
        if name == "vardr-init":
            lines.append(f"- vardr-init = `{binary}`")
    lines.append(f"\n**1. PID 1 memory**: each init as PID 1 of a new PID namespace (`unshare -p -f --mount-proc`) "
                 f"running `sleep 1000`, read from /proc once `sleep` is PID 1's only child, plus 0.5 s; "
                 f"\"after {m['custom_cas']} CAs\" = a full certificate pass first (no cache), KiB, "
                 f"runs of each: {m['inits']['tini-static']['VmRSS']['n']}:\n")
    lines.append(memory_table(m))
    c = start["commands"]
    lines.append(f"\n**2. Start, {label}**: `INIT -- /bin/true` off PID 1 (`tini-static -s`: vardr-init registers "
                 f"as child subreaper too), wall time in ms, "
                 f"alternating runs of each: {c['tini-static']['time_ms']['n']}; "
                 "each vardr-init with its own bundle, checked unwritten by the timed runs:\n")
    lines.extend(start_table(c))
    label_py, start_py = next(iter(p.get("start_python", {}).items()), (None, None))
    if start_py:
        c = start_py["commands"]
        lines.append(f"\n**2b. Start, {label_py}**: `INIT -- .../python3` where `python3 -> python3.12` is "
                     "/bin/true renamed: the verdicts' runtime is found from the path (tini-static runs /bin/true):\n")
        lines.extend(start_table(c))
    lines.append("\nThe target is on the wall-time medians. CPU time (wait4's rusage: the init's and /bin/true's "
                 "run time on a CPU) moves less with other load on the machine; when the two ratios disagree, the "
                 "machine was busy: run again, both builds in one run.")
    lines.append("\n**3. Binary size**:\n")
    lines.append("| binary | bytes | / tini-static |")
    lines.append("|---|---|---|")
    for name, row in b.items():
        over = p["size_over_tini_static"].get(name, 1.0)
        lines.append(f"| {name} | {row['bytes']} | {over:.2f}x |")
    lines.append("\n**Targets of the refactor**:\n")
    lines.append("| target | binary | measured | met |")
    lines.append("|---|---|---|---|")
    for name in m["binaries"]:
        over = m["over_tini_static"][f"{name}, after {m['custom_cas']} CAs"]["VmRSS"]
        lines.append(f"| PID 1 VmRSS after {m['custom_cas']} CAs <= 1.10x tini-static | {name} | {over:.2f}x | "
                     f"{'yes' if over <= 1.10 else 'no'} |")
    for name in m["binaries"]:
        over = start["over_tini_static"][name]
        lines.append(f"| start, {label} <= 1.6x tini-static | {name} | {over:.2f}x | {'yes' if over <= 1.6 else 'no'} |")
    return "\n".join(lines) + "\n"


def fmt_load(load):
    return " / ".join(f"{x:.2f}" for x in load)


def vardr_names(paths):
    """{name: binary}: "vardr-init" for one, "vardr-init PATH" for each of several."""
    if len(set(paths)) != len(paths):
        raise SystemExit("bench: the same --vardr given twice")
    return {"vardr-init": paths[0]} if len(paths) == 1 else {f"vardr-init {path}": path for path in paths}


def main():
    parser = argparse.ArgumentParser()
    for name in ("tini", "tini-static", "dumb-init", "python", "venv-python", "sigchild", "orphans", "measure"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--vardr", action="append", required=True,
                        help="the binary; with --only pid1 more than one, measured side by side")
    parser.add_argument("--only", choices=["pid1"],
                        help="pid1: only PID 1's memory after a 1000-CA pass, the cached 10-CA start and the binary "
                             "size, each against tini-static; prints, writes nothing unless --json")
    parser.add_argument("--json", help="with --only pid1: also write the figures as JSON to this file")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--command", default="bash bench/run.sh")
    args = parser.parse_args()
    if len(args.vardr) > 1 and not args.only:
        parser.error("more than one --vardr only with --only pid1")
    args.vardrs = vardr_names(args.vardr)
    args.vardr = args.vardr[0]
    smoke = args.smoke
    if smoke:
        args.runs = 2
    small, large, huge = (10, 50, 100) if smoke else (10, 1000, 10_000)
    runner = Runner(args.measure)
    work = Path(tempfile.mkdtemp(prefix="vardr-bench-"))
    # Bundles go to tmpfs, as in a hardened container (read-only root, `--tmpfs /tmp` or a memory
    # emptyDir); the CAs and one comparison row stay on the local disk.
    outputs = Path(tempfile.mkdtemp(prefix="vardr-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        (work / "no-certs").mkdir()
        cert_dirs = {}
        for count in (small, large) if args.only else (small, large, huge):
            cert_dirs[count] = work / f"certs-{count}"
            subprocess.run([args.venv_python, str(HERE / "helpers/gen_cas.py"), str(cert_dirs[count]), str(count)], check=True)
        log(f"work directory {work}; CAs generated")
        system_certificates = Path(SYSTEM_BUNDLE).read_bytes().count(b"-----BEGIN CERTIFICATE-----")
        r = {"meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
            "load_average_at_start": os.getloadavg(),
            "command": args.command,
            "smoke": smoke, "runs": args.runs, "system_bundle": SYSTEM_BUNDLE,
            "system_certificates": system_certificates,
            "bundle_filesystem": fs_type(outputs),
        }}
        if args.only == "pid1":
            r["pid1"] = pid1_figures(args, runner, work, outputs, cert_dirs, small, large, memory_runs=1 if smoke else 9)
            r["meta"]["load_average_at_end"] = os.getloadavg()
            report(render_pid1(r), r, args.json, smoke)
            return
        r["start"] = start_overhead(args, runner, work, outputs, cert_dirs, [
            ("no certs", 0, "none"),
            (f"{small} CAs, cached", small, "cached"),
            (f"{small} CAs, changed", small, "changed"),
            (f"{large} CAs, cached", large, "cached"),
            (f"{large} CAs, changed", large, "changed"),
        ])
        r["certs"] = certs_scaling(args, runner, work, outputs, cert_dirs, [large, huge])
        r["update_ca_certificates"] = update_ca_certificates(args, runner, work, cert_dirs, [small, large],
                                                             runs=1 if smoke else 5)
        r["supervising"] = supervising_memory(args, work, outputs, cert_dirs, large, runs=1 if smoke else 9)
        r["health"] = health(args, runner, args.runs)
        r["signals"] = signal_latency(args, args.sigchild, 20 if smoke else 2000)
        r["reaping"] = reaping(args, args.orphans, 200 if smoke else 10_000, runs=1 if smoke else 5)
        r["sizes"] = sizes(args)
        r["targets"] = targets(r)
        r["meta"]["load_average_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)
    markdown = render_markdown(r)
    if smoke:
        print(markdown)
        print(render_summary(r))
        log("smoke run complete (figures above are from tiny inputs and are not results)")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(r, indent=1) + "\n")
    (out / "results.md").write_text(markdown)
    (out / "start-overhead.svg").write_text(render_svg(r))
    (out / "summary.md").write_text(render_summary(r))
    print(markdown)
    log(f"written: {out}/results.json, results.md, summary.md, start-overhead.svg")


if __name__ == "__main__":
    main()
