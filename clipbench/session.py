"""State of one side-by-side run, and the two things every phase does with it: measure and record a point.

Each point records the share of the machine's CPUs used by processes outside the benchmark ("others'
CPU"): our process tree (this process, tritonserver and its stubs, the gateway, the naive server) is
measured by clipbench.procstat, so noisy points can be recognised.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from rich.progress import Progress, TaskID

from clipbench.closedloop import Point, Send, closed_loop, summarise
from clipbench.console import console
from clipbench.procstat import CpuWindow
from clipbench.servers import Servers
from clipbench.tritonstats import model_parameters, stats_delta, triton_stats
from triton_clip.versions import model_names


def others_window() -> CpuWindow:
    """CPU used by everyone else from now on: every server of the benchmark is a descendant of this process."""
    window = CpuWindow({"bench": os.getpid()})
    window.start()
    return window


@dataclass
class Session:
    args: argparse.Namespace
    servers: Servers
    progress: Progress
    task: TaskID
    points: list[Point] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    round: int | None = None  # set during the A/B rounds
    aio: object = None  # tritonclient.grpc.aio client, open while the async phases run

    @property
    def models(self) -> tuple[str, str]:
        """(image, text) Triton model names of the benchmarked version."""
        return model_names(self.args.version)

    def params(self, tower: str) -> dict[str, str]:
        """The exported config's parameters of one tower (image_size, embed_dim, eot_id, text_buckets...)."""
        return model_parameters(self.servers.repo, self.models[0 if tower == "image" else 1])

    def step(self, description: str) -> None:
        self.progress.update(self.task, description=description)

    def advance(self) -> None:
        self.progress.advance(self.task)

    async def measure(
        self, system: str, op: str, c: int, send: Send, items: int = 1, seconds: float | None = None
    ) -> Point:
        """One closed-loop point with Triton's statistics deltas and others' CPU share around it."""
        models = list(self.models)
        before = await triton_stats(self.aio, models)
        window = others_window()
        lat, errors, elapsed = await closed_loop(send, c, seconds or self.args.seconds, self.args.max_requests)
        after = await triton_stats(self.aio, models)
        p = summarise(Point(system, op, c), lat, elapsed, items)
        p.extra["others_cpu"] = round(window.stop()["others_cpu_share"], 3)
        p.errors = errors
        p.triton = stats_delta(before, after)
        self.record(p)
        return p

    def record(self, p: Point) -> None:
        if self.round is not None:
            p.extra["round"] = self.round
        with open("/proc/loadavg") as f:
            p.extra["loadavg_1m"] = float(f.read().split()[0])
        self.points.append(p)
        tri = "; ".join(
            f"{m.rsplit('-', 1)[-1]}: batch {d['avg_batch']}, {d['request_ms']} ms/req" for m, d in p.triton.items()
        )
        unit = "b" if p.system.startswith("inprocess") else "c"
        console.print(
            f"  {p.system:<10} {p.op:<8} {unit}={p.concurrency:<3} {p.items_per_s:8.2f} items/s "
            f"p50 {p.p50_ms:8.1f} p95 {p.p95_ms:8.1f} p99 {p.p99_ms:8.1f} ms  n={p.requests}"
            f"{' ERR=' + str(p.errors) if p.errors else ''}  load {p.extra['loadavg_1m']:.1f} "
            f"others {p.extra.get('others_cpu', 0):.0%}  {tri}"
        )
