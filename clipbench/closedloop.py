"""The closed-loop load runner and its result row: N workers send back to back, bounded in time and count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from clipbench.console import console

Send = Callable[[int], Awaitable[None]]


@dataclass
class Point:
    system: str  # inprocess | triton | gateway | naive | ...
    op: str  # image | text | compare | text16 | text77 ...
    concurrency: int  # or batch size for in-process points
    requests: int = 0
    errors: int = 0
    items: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    triton: dict = field(default_factory=dict)  # per-model statistics deltas
    extra: dict = field(default_factory=dict)


def summarise(point: Point, latencies: list[float], elapsed: float, items_per_request: int = 1) -> Point:
    point.requests = len(latencies)
    point.items = len(latencies) * items_per_request
    point.seconds = round(elapsed, 3)
    if latencies:
        ms = np.array(latencies) * 1000
        point.p50_ms, point.p95_ms, point.p99_ms = (float(np.percentile(ms, q)) for q in (50, 95, 99))
        point.mean_ms = float(ms.mean())
        point.rps = len(latencies) / elapsed
        point.items_per_s = point.items / elapsed
    return point


async def closed_loop(
    send: Send, concurrency: int, seconds: float, max_requests: int
) -> tuple[list[float], int, float]:
    """`concurrency` workers send back-to-back until the time box or the request cap; in-flight ones finish."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        nonlocal issued, errors
        while time.perf_counter() < deadline and issued < max_requests:
            i = issued
            issued += 1
            t0 = time.perf_counter()
            try:
                await send(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                if errors <= 3:
                    console.print(f"[red]request error: {type(exc).__name__}: {str(exc)[:200]}[/]")
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start
