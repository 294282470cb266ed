"""Reading /proc: per-process CPU, memory, fds and threads, process trees, the machine's busy share.

The machine is shared, so wall-clock throughput mostly measures the neighbours; CPU time summed
over every process of the service (and their threads) is what a request actually costs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies since boot; busy is all but idle and iowait."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def busy_seconds() -> float:
    """Machine-wide busy CPU seconds since boot."""
    return machine_jiffies()[0] / HZ


def proc_stat() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, utime+stime jiffies, name) for every process, one snapshot."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
                fields = rest.split()
                out[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), head.split("(", 1)[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree_of(stats: dict[int, tuple[int, int, str]], roots: list[int]) -> list[int]:
    """The roots that exist and all their descendants, from one proc_stat() snapshot."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found.append(pid)
            todo += children.get(pid, [])
    return found


def tree(pid: int) -> list[int]:
    """pid and all its descendants (the stubs run under `bash -c`, so walk the whole tree)."""
    return tree_of(proc_stat(), [pid])


def children(pid: int) -> list[int]:
    return [p for p, (ppid, _, _) in proc_stat().items() if ppid == pid]


def tree_seconds(roots: dict[str, int]) -> dict[str, float]:
    """utime+stime per named root process, each including all its live descendants (e.g. backend stubs)."""
    stats = proc_stat()
    return {name: sum(stats[p][1] for p in tree_of(stats, [root])) / HZ for name, root in roots.items()}


def seconds_by_cmdline(root: int, needles: dict[str, str]) -> dict[str, float]:
    """utime+stime of the live processes under `root` whose command line contains each needle (e.g. the
    backend stub of one model: its command line names the model's folder)."""
    stats = proc_stat()
    pids = tree_of(stats, [root])
    lines = {p: cmdline(p) for p in pids}
    return {name: sum(stats[p][1] for p in pids if needle in lines[p]) / HZ for name, needle in needles.items()}


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:
        return float("nan")


def fds(pid: int) -> float:
    try:
        return float(len(os.listdir(f"/proc/{pid}/fd")))
    except OSError:
        return float("nan")


def threads(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return float(next(line.split()[1] for line in f if line.startswith("Threads:")))
    except (OSError, StopIteration):
        return float("nan")


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class CpuWindow:
    """CPU used between start() and stop(): per named process tree, and by everything else."""

    roots: dict[str, int]

    def start(self) -> None:
        self.t0, self.busy0, self.tree0 = time.monotonic(), busy_seconds(), tree_seconds(self.roots)

    def stop(self, also_ours: float = 0.0) -> dict[str, float]:
        """`also_ours`: CPU seconds of our processes that ended inside the window (e.g. the load generator)."""
        wall, busy, trees = time.monotonic() - self.t0, busy_seconds() - self.busy0, tree_seconds(self.roots)
        used = {name: trees[name] - self.tree0.get(name, 0.0) for name in self.roots}
        ncpu = os.cpu_count() or 1
        others = max(0.0, busy - sum(used.values()) - also_ours)
        return {
            "wall_s": wall,
            **{f"{k}_cpu_s": v for k, v in used.items()},
            "others_cpu_share": others / (wall * ncpu),
            "machine_busy_share": busy / (wall * ncpu),
        }
