"""The workers benchmark's table: per point, then the median per worker count and the per-round ratio."""

from __future__ import annotations

import statistics


def table(points: list[dict], command: str, info: str) -> str:
    rows = [
        (
            "| round | gateway workers | req/s | service core-ms/req (gateway + Triton) | wrk core-ms/req "
            "| ceiling req/s | efficiency | cores used by service + wrk | machine busy | others' CPU "
            "| busiest process (share of a core) | non-2xx |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        rows.append(
            f"| {p.get('round', 1)} | {p['workers']} | {p['rps']:.0f} | {p['service_core_ms_per_request']:.3f} "
            f"({p['gateway_core_ms_per_request']:.3f} + {p['triton_core_ms_per_request']:.3f}) "
            f"| {p['wrk_core_ms_per_request']:.3f} | {p['ceiling_rps']:.0f} | {p['efficiency']:.0%} "
            f"| {p['service_and_wrk_cores']:.2f} "
            f"| {p['machine_busy_share']:.0%} | {p['others_cpu_share']:.0%} | {p['busiest_process']} "
            f"{p['busiest_process_core_share']:.0%} | {p['non_2xx'] + p['socket_errors']} |"
        )
    head = [f"{info}", "", f"Command: `{command}`", "", *summary(points), ""]
    return "\n".join(head + rows) + "\n"


def _median(points: list[dict], key: str) -> float:
    return statistics.median(p[key] for p in points)


def summary(points: list[dict]) -> list[str]:
    """Median per worker count, and the per-round ratio of the largest to the smallest count."""
    counts = sorted({p["workers"] for p in points})
    lines = []
    for w in counts:
        mine = [p for p in points if p["workers"] == w]
        lines.append(
            f"- {w} worker(s): median {_median(mine, 'rps'):.0f} req/s, "
            f"{_median(mine, 'service_core_ms_per_request'):.3f} service core-ms/req, "
            f"machine busy {_median(mine, 'machine_busy_share'):.0%}, "
            f"others' CPU {_median(mine, 'others_cpu_share'):.0%}, "
            f"busiest process {_median(mine, 'busiest_process_core_share'):.0%} of a core"
        )
    if len(counts) > 1:
        lo, hi = counts[0], counts[-1]

        def rps(r: int, w: int) -> float:
            return next(p["rps"] for p in points if p.get("round", 1) == r and p["workers"] == w)

        ratios = [rps(r, hi) / rps(r, lo) for r in sorted({p.get("round", 1) for p in points})]
        lines.append(
            f"- **{hi} vs {lo} worker(s): {statistics.median(ratios):.2f}x** requests/s "
            f"(median of the rounds; per round {', '.join(f'{x:.2f}' for x in ratios)})"
        )
    return lines
