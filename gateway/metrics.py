"""Prometheus metrics of the gateway, one prefix (`clip_gateway_`), one registry per app.

A registry per app (not the global default) lets tests build several apps in one process.
With several workers (`PROMETHEUS_MULTIPROC_DIR` set by gateway/serve.py) every sample also goes
to that directory and `exposition()` sums all workers' files: counters stay exact across workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "clip_gateway_requests", "Requests by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "clip_gateway_request_seconds", "Whole request time.", ["route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.stage = Histogram(
            "clip_gateway_stage_seconds", "Time per pipeline stage.", ["stage"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.inflight = Gauge(
            "clip_gateway_inflight", "Requests being processed.", registry=r, multiprocess_mode="livesum"
        )
        self.rejected = Counter("clip_gateway_rejected", "Requests refused by back-pressure.", ["reason"], registry=r)
        self.url_failures = Counter(
            "clip_gateway_url_fetch_failures", "URL image fetch refusals/failures.", ["reason"], registry=r
        )
        self.image_errors = Counter("clip_gateway_image_errors", "Images refused, by reason.", ["reason"], registry=r)
        self.cache_hits = Counter("clip_gateway_text_cache_hits", "Text embeddings served from the cache.", registry=r)
        self.cache_misses = Counter("clip_gateway_text_cache_misses", "Text embeddings computed.", registry=r)
        self.triton_errors = Counter("clip_gateway_triton_errors", "Triton calls that failed.", ["kind"], registry=r)
        # Exported at 0 from the start, so rate() and alerts work before the first rejection.
        for reason in ("inflight", "triton_queue"):
            self.rejected.labels(reason)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def exposition(metrics: Metrics) -> bytes:
    """This worker's registry, or, in multi-worker mode, the sum over every worker's files."""
    if multiprocess_dir() is None:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # killed, not yet reaped
    except OSError:
        return True


def forget_dead_workers() -> None:
    """Drop the live gauges (in-flight) of workers that were killed; their counters are kept.

    Called at start and from the refresh loop: a SIGKILLed worker never marks itself dead.
    """
    folder = multiprocess_dir()
    if folder is None:
        return
    pids = {int(name.rsplit("_", 1)[1].split(".")[0]) for name in os.listdir(folder) if name.startswith("gauge_live")}
    for pid in pids:
        if _gone(pid):
            multiprocess.mark_process_dead(pid, folder)


def worker_stopped() -> None:
    folder = multiprocess_dir()
    if folder is not None:
        multiprocess.mark_process_dead(os.getpid(), folder)
