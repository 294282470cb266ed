"""CPU accounting from /proc: the service's own CPU time and the share used by everyone else.

The machine is shared, so wall-clock throughput mostly measures the neighbours; CPU time summed
over every process of the service (and their threads) is what a request actually costs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

HZ = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """Machine-wide busy CPU seconds (all but idle and iowait) since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / HZ


def _all_stats() -> dict[int, tuple[int, float]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / HZ)
            except (OSError, IndexError, ValueError):
                pass
    return stats


def _descendants(root: int, children: dict[int, list[int]]) -> set[int]:
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


def tree_seconds(roots: dict[str, int]) -> dict[str, float]:
    """utime+stime per named root process, each including all its live descendants (e.g. backend stubs)."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    return {name: sum(stats[p][1] for p in _descendants(root, children) if p in stats) for name, root in roots.items()}


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
        return {"wall_s": wall, **{f"{k}_cpu_s": v for k, v in used.items()},
                "others_cpu_share": others / (wall * ncpu), "machine_busy_share": busy / (wall * ncpu)}
