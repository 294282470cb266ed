"""Reading /proc for the benchmark and soak scripts: per-process CPU, memory, fds, threads, process trees."""

from __future__ import annotations

import os

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:
        return float("nan")


def children(pid: int) -> list[int]:
    return [p for p, (ppid, _, _) in proc_stat().items() if ppid == pid]


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


def tree(pid: int) -> list[int]:
    """pid and all its descendants (the stubs run under `bash -c`, so walk the whole tree)."""
    return tree_of(proc_stat(), [pid])


def proc_stat() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, utime+stime jiffies, name) for every process."""
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
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found.append(pid)
            todo += [p for p, (ppid, _, _) in stats.items() if ppid == pid]
    return found
