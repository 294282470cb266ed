"""The serving-cost benchmark's rows (clipbench/serving_cost.py measures them): tables, medians, results.json."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Result:
    scenario: str
    code: str
    requests: int
    errors: int
    seconds: float
    rps: float
    core_ms_per_request: float
    gateway_core_ms: float
    triton_core_ms: float
    wrk_core_ms: float
    others_cpu_share: float
    latency_p50_ms: float
    latency_p99_ms: float
    extra: dict = field(default_factory=dict)


HEADER = (
    "| code | request | core-ms/req (service) | gateway | triton | req/s | p50 ms | p99 ms | errors "
    "| others' CPU |\n|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(r: Result) -> str:
    return (
        f"| {r.code} | {r.scenario} | **{r.core_ms_per_request:.3f}** | {r.gateway_core_ms:.3f} | "
        f"{r.triton_core_ms:.3f} | {r.rps:,.0f} | {r.latency_p50_ms:.2f} | {r.latency_p99_ms:.2f} | {r.errors} "
        f"| {r.others_cpu_share:.0%} |"
    )


def table(results: list[Result]) -> str:
    return "\n".join([HEADER, *(format_row(r) for r in results)])


def save(results: list[Result], path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2))


def load(path: Path) -> list[Result]:
    return [Result(**r) for r in json.loads(path.read_text())["results"]]


def machine() -> dict[str, object]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def medians(results: list[Result]) -> str:
    """Median over rounds per (code, request): the numbers to quote, with the range of others' CPU."""
    lines = [
        "| code | request | rounds | core-ms/req (median) | gateway | triton | req/s | others' CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in dict.fromkeys((r.code, r.scenario) for r in results):
        rs = [r for r in results if (r.code, r.scenario) == key]

        def med(attr: str, rs: list[Result] = rs) -> float:
            return statistics.median(getattr(r, attr) for r in rs)

        others = [r.others_cpu_share for r in rs]
        lines.append(
            f"| {key[0]} | {key[1]} | {len(rs)} | **{med('core_ms_per_request'):.3f}** | "
            f"{med('gateway_core_ms'):.3f} | {med('triton_core_ms'):.3f} | {med('rps'):,.0f} | "
            f"{min(others):.0%}–{max(others):.0%} |"
        )
    return "\n".join(lines)
