"""benchmarks.png: throughput and latency vs concurrency of Triton, the gateway and the naive server."""

from __future__ import annotations

import os
from pathlib import Path

from clipbench.analysis import find
from clipbench.closedloop import Point

STYLES = {"triton": "-", "gateway": "-", "naive": "--"}
COLORS = {"image": "tab:blue", "text": "tab:orange", "compare": "tab:green"}
MARKERS = {"triton": "s", "gateway": "o", "naive": "x"}


def _curves(points: list[Point], ax1, ax2) -> None:  # noqa: ANN001 - matplotlib axes
    for system in ("triton", "gateway", "naive"):
        for op in ("image", "text", "compare"):
            ps = sorted(find(points, system, op), key=lambda p: p.concurrency)
            if not ps:
                continue
            c = [p.concurrency for p in ps]
            kw = {
                "linestyle": STYLES[system],
                "marker": MARKERS[system],
                "color": COLORS[op],
                "label": f"{system} {op}",
            }
            ax1.plot(c, [p.items_per_s for p in ps], **kw)
            ax2.plot(c, [p.p50_ms for p in ps], **kw)
            ax2.fill_between(c, [p.p50_ms for p in ps], [p.p95_ms for p in ps], color=COLORS[op], alpha=0.06)


def plot(points: list[Point], a: dict, path: Path, version: str = "ViT-B-32") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    _curves(points, ax1, ax2)
    ax1.axhline(
        a["image_ceiling"],
        color="tab:blue",
        linestyle=":",
        label=f"in-process image ceiling (b={a['image_ceiling_batch']})",
    )
    ax1.axhline(a["text_ceiling"], color="tab:orange", linestyle=":", label="in-process text ceiling ([32,16])")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency (requests in flight)")
        ax.grid(True, alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("throughput (items/s; compare = requests/s)")
    ax1.set_title("Throughput vs concurrency")
    ax2.set_yscale("log")
    ax2.set_ylabel("latency p50 ms (band to p95)")
    ax2.set_title("Latency vs concurrency")
    ax1.legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"CLIP {version} (random init), {os.cpu_count()} vCPU: Triton gRPC direct, gateway HTTP, "
        "naive open_clip server (one run)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
