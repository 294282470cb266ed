"""The soak's markdown summary (latency per route; growth of RSS, fds and threads) and its plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GROWTH_HEAD = (
    "| {} | first | after warm-up | last | peak | growth after warm-up | growth 2nd half | slope 2nd half /min |"
)
GROWTH_SEP = "|---|---|---|---|---|---|---|---|"


def growth_row(name: str, t: np.ndarray, v: np.ndarray, warm: np.ndarray, half: np.ndarray) -> str:
    vw, vh = v[warm], v[half]
    ok = half.sum() > 2 and not np.isnan(vh).any()
    slope = float(np.polyfit(t[half], vh, 1)[0] * 60) if ok else float("nan")
    growth = (vh[-1] - vh[0]) / vh[0] * 100 if ok and vh[0] else float("nan")
    return (
        f"| {name} | {v[0]:.0f} | {vw[0]:.0f} | {v[-1]:.0f} | {np.nanmax(v):.0f} | {vw[-1] - vw[0]:+.0f} "
        f"| {growth:+.1f} % | {slope:+.2f} |"
    )


def latency_table(latencies: dict[str, list[float]]) -> list[str]:
    lines = ["| route | requests | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for route, values in sorted(latencies.items()):
        ms = np.array(values) * 1000
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        lines.append(f"| {route} | {len(ms)} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")
    return lines


def metric_columns(rows: list[dict]) -> dict[str, list[str]]:
    cols = list(dict.fromkeys(c for r in rows for c in r if c not in ("t_s", "ok", "errors")))
    return {
        "RSS (MiB)": [c for c in cols if ":" not in c or c.startswith("stub:")],
        "open file descriptors": [c for c in cols if c.startswith("fd:")],
        "threads": [c for c in cols if c.startswith("threads:")],
    }


def summarise(rows: list[dict], run: dict, latencies: dict[str, list[float]]) -> str:
    """`run`: utc, minutes, concurrency, workers, model, routes, command."""
    t = np.array([r["t_s"] for r in rows])
    warm = t >= min(60.0, t[-1] / 5)  # growth after warm-up (first minute: allocators, caches fill)
    half = t >= t[-1] / 2
    lines: list[str] = []
    for title, names in metric_columns(rows).items():
        lines += ["", f"{title}:", "", GROWTH_HEAD.format("process"), GROWTH_SEP]
        lines += [growth_row(c, t, np.array([r.get(c, np.nan) for r in rows], dtype=float), warm, half) for c in names]
    last = rows[-1]
    total = last["ok"] + last["errors"]
    text = [
        f"Run: {run['utc']}, {run['minutes']:g} min, {run['concurrency']} concurrent clients, mixed scenario, "
        f"model {run['model']}, gateway workers {run['workers']}, {total} requests "
        f"({last['ok'] / max(t[-1], 1):.2f} req/s), {last['errors']} errors; by route: {json.dumps(run['routes'])}.",
        "",
        f"Command: `{run['command']}`",
        "",
        "Latency per route (successful requests):",
        "",
        *latency_table(latencies),
    ]
    return "\n".join(text + lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r["t_s"] for r in rows]) / 60
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for c in metric_columns(rows)["RSS (MiB)"]:
        ax1.plot(t, [r.get(c, np.nan) for r in rows], label=c, linewidth=2 if c == "triton_total" else 1.2)
    ax1.set_ylabel("RSS (MiB)")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title(title)
    ok = np.array([r["ok"] for r in rows], dtype=float)
    ax2.plot(t[1:], np.diff(ok) / np.maximum(np.diff(t * 60), 1e-9), color="tab:gray")
    ax2.set_ylabel("req/s")
    ax2.set_xlabel("minutes")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
