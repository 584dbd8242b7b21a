"""Footprint of vardr-init vs tini-static: size, linkage, memory while supervising `sleep`.

Two memory figures, because they answer different questions:
- `time -v` max RSS: what GNU time reports for `SUPERVISOR -- sleep 2`. The kernel folds the
  largest waited-for descendant into it, so it is max(supervisor, sleep), not the supervisor alone.
- VmRSS / VmHWM of the supervisor itself, read from /proc while it runs as PID 1 of a fresh PID
  namespace (`unshare -p -f --mount-proc`) supervising `sleep`: the init's own cost.
Runs alternate between the two inits; figures are medians with min/max, and vardr/tini ratios.
"""
import argparse
import os
import re
import statistics
import subprocess
import time


def linkage(path):
    file_out = subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout.strip()
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    return file_out, (ldd.stdout + ldd.stderr).strip()


def time_v_max_rss_kib(argv):
    result = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return int(match.group(1))


def own_memory_kib(argv):
    """VmRSS and VmHWM of ARGV[0] running as PID 1 of a new PID namespace, 1 s into `sleep`."""
    unshare = subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        children = f"/proc/{unshare.pid}/task/{unshare.pid}/children"
        pid = None
        for _ in range(500):
            with open(children) as f:
                listed = f.read().split()
            if listed:
                pid = listed[0]
                break
            time.sleep(0.01)
        time.sleep(1)
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        kib = lambda key: int(status[key].split()[0])  # noqa: E731
        return kib("VmRSS"), kib("VmHWM")
    finally:
        unshare.wait()


def summary(values):
    return statistics.median(values), min(values), max(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vardr", required=True)
    parser.add_argument("--tini", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    inits = {
        # Not PID 1 under `time`: each registers as subreaper (tini needs -s for that).
        "vardr-init": ([args.vardr, "--"], [args.vardr, "--"]),
        "tini-static": ([args.tini, "-s", "--"], [args.tini, "--"]),
    }
    figures = {name: {"time_v": [], "rss": [], "hwm": []} for name in inits}
    for _ in range(args.runs):
        for name, (as_child, as_pid1) in inits.items():
            figures[name]["time_v"].append(time_v_max_rss_kib([*as_child, "sleep", "2"]))
            rss, hwm = own_memory_kib([*as_pid1, "sleep", "2"])
            figures[name]["rss"].append(rss)
            figures[name]["hwm"].append(hwm)

    sleep_alone = time_v_max_rss_kib(["sleep", "0.1"])
    print(f"footprint: {args.runs} run(s) each, alternating; memory in KiB as median (min-max)\n")
    rows = [("metric", "vardr-init", "tini-static", "vardr/tini")]
    size = {name: os.path.getsize(paths[0][0]) for name, paths in inits.items()}
    rows.append(("binary size (bytes)", str(size["vardr-init"]), str(size["tini-static"]),
                 f"{size['vardr-init'] / size['tini-static']:.2f}"))
    for key, label in [("rss", "own VmRSS as PID 1, supervising sleep"),
                       ("hwm", "own VmHWM (peak) as PID 1"),
                       ("time_v", "`time -v` max RSS of INIT -- sleep 2")]:
        (vm, vlo, vhi), (tm, tlo, thi) = summary(figures["vardr-init"][key]), summary(figures["tini-static"][key])
        rows.append((label, f"{vm:g} ({vlo}-{vhi})", f"{tm:g} ({tlo}-{thi})", f"{vm / tm:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    print(f"\n`time -v` max RSS of `sleep 0.1` alone: {sleep_alone} KiB "
          "(the `time -v` row is bounded below by the child's own RSS)\n")
    for name, paths in inits.items():
        file_out, ldd_out = linkage(paths[0][0])
        print(f"{name}: {paths[0][0]}\n  file: {file_out}\n  ldd:  {ldd_out}")


if __name__ == "__main__":
    main()
