"""Samples every process of the service from /proc: RSS, open fds and threads, by a stable name."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from clipbench.procstat import children, cmdline, fds, rss_mb, threads, tree


def stub_label(pid: int) -> str:
    """'stub:<model>' from the stub's command line (the backend passes the model path first)."""
    for part in cmdline(pid).split():
        if "/1/model.py" in part or part.endswith("model.py"):
            return "stub:" + Path(part).parent.parent.name
    return f"child:{pid}"


def processes(gateway_pid: int, triton_pid: int) -> dict[str, int]:
    """gateway (master), gateway-w<i> (workers), tritonserver."""
    named = {"gateway": gateway_pid, "tritonserver": triton_pid}
    workers = sorted(p for p in children(gateway_pid) if "spawn_main" in cmdline(p))
    named.update({f"gateway-w{i + 1}": pid for i, pid in enumerate(workers)})
    return named


def sample(gateway_pid: int, triton_pid: int) -> dict[str, float]:
    row: dict[str, float] = {}
    for name, pid in processes(gateway_pid, triton_pid).items():
        row[name] = round(rss_mb(pid), 1)
        row[f"fd:{name}"], row[f"threads:{name}"] = fds(pid), threads(pid)
    stubs = [p for p in tree(triton_pid) if p != triton_pid and "triton_python_backend_stub" in cmdline(p)]
    for p in stubs:
        row[stub_label(p)] = round(rss_mb(p), 1)
        row[f"threads:{stub_label(p)}"] = threads(p)
    row["triton_total"] = round(row["tritonserver"] + sum(rss_mb(p) for p in stubs), 1)
    return row


async def sampler(
    gateway_pid: int, triton_pid: int, interval: float, seconds: float, counters: dict, rows: list[dict], t0: float
) -> None:
    """One row every `interval` s until `seconds` have passed (the last row at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        rows.append(
            {
                "t_s": round(time.monotonic() - t0, 1),
                "ok": counters["ok"],
                "errors": counters["errors"],
                **sample(gateway_pid, triton_pid),
            }
        )
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
