"""The mixed benchmark's table (markdown, also printed) and plot (PNG)."""

from __future__ import annotations

from pathlib import Path


def table(analysis: dict[str, dict], concurrency: int) -> str:
    half = concurrency // 2
    header = (
        f"| plan | images/s alone (c={concurrency}) | texts/s alone (c={concurrency}) | "
        f"mixed images/s + texts/s ({half}+{concurrency - half}) | sum of shares (target ≥ 0.95) | "
        "image p50/p99 ms alone → mixed | text p50/p99 ms alone → mixed | p99 mixed/alone image, text "
        "(target ≤ 2) | compare req/s measured / predicted | 1 text client's p99 ms alone → next to "
        "an image flood | others' CPU mean (max) |"
    )
    lines = [header, "|" + "---|" * 11]
    for name, a in analysis.items():
        compare = (
            f"{a['alone_compare_rps']:.2f} / {a['compare_predicted_rps']:.2f} "
            f"({a['compare_vs_prediction']:.2f}; CPU-time {a['compare_vs_prediction_cpu']:.2f})"
            if "compare_predicted_rps" in a
            else "–"
        )
        flood = (
            f"{a['single_text_p99_ms']:.0f} → {a['flood_text_p99_ms']:.0f} ({a['flood_text_p99_ratio']:.1f}×, "
            f"{a['flood_image_items_per_s']:.1f} img/s)"
            if "flood_text_p99_ratio" in a
            else "–"
        )
        lines.append(
            f"| {name} | {a['alone_image_items_per_s']:.1f} | {a['alone_text_items_per_s']:.1f} | "
            f"{a['mixed_image_items_per_s']:.1f} + {a['mixed_text_items_per_s']:.1f} | "
            f"{a['share_image']:.2f} + {a['share_text']:.2f} = **{a['share_sum']:.2f}** "
            f"(CPU-time: {a['cpu_share_sum']:.2f}) | "
            f"{a['alone_image_p50_ms']:.0f}/{a['alone_image_p99_ms']:.0f} → "
            f"{a['mixed_image_p50_ms']:.0f}/{a['mixed_image_p99_ms']:.0f} | "
            f"{a['alone_text_p50_ms']:.0f}/{a['alone_text_p99_ms']:.0f} → "
            f"{a['mixed_text_p50_ms']:.0f}/{a['mixed_text_p99_ms']:.0f} | "
            f"{a['p99_ratio_image']:.2f}, {a['p99_ratio_text']:.2f} | {compare} | {flood} | "
            f"{a['others_cpu_mean']:.0%} ({a['others_cpu_max']:.0%}) |"
        )
    lines.append("\ninfinity-emb reference under the same mixed load (issue 14): 9.1 images/s + 9.1 texts/s.")
    return "\n".join(lines + profile_table(analysis)) + "\n"


def profile_table(analysis: dict[str, dict]) -> list[str]:
    """Triton's side of the shares: batch size and execution time per embedding, alone vs mixed."""
    rows = [
        "",
        "| plan | image avg batch alone → mixed | image execution ms per embedding alone → mixed | "
        "image stub CPU-ms per embedding alone → mixed | text avg batch alone → mixed | "
        "text execution ms per embedding alone → mixed | text stub CPU-ms per embedding alone → mixed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a in analysis.items():
        if "mixed_image_avg_batch" not in a:
            continue
        cells = [
            f"{a.get(f'alone_{k}_{q}', float('nan')):.{d}f} → {a.get(f'mixed_{k}_{q}', float('nan')):.{d}f}"
            for k in ("image", "text")
            for q, d in (("avg_batch", 2), ("ms_per_item", 1), ("cpu_ms_per_item", 1))
        ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows if len(rows) > 3 else []


def plot(analysis: dict[str, dict], path: Path, version: str, concurrency: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(analysis)
    x = range(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, kind in zip(axes[:2], ("image", "text")):
        alone = [analysis[n][f"alone_{kind}_items_per_s"] for n in names]
        mixed = [analysis[n][f"mixed_{kind}_items_per_s"] for n in names]
        ax.bar([i - 0.2 for i in x], alone, 0.4, label=f"alone (c={concurrency})")
        ax.bar([i + 0.2 for i in x], mixed, 0.4, label="mixed (half the connections)")
        ax.axhline(9.1, color="grey", ls="--", lw=1, label="infinity-emb, mixed")
        ax.set(title=f"{kind}s/s", xticks=list(x), xticklabels=names)
        ax.legend(fontsize=8)
    ax = axes[2]
    for kind, offset in (("image", -0.2), ("text", 0.2)):
        ax.bar(
            [i + offset for i in x],
            [analysis[n][f"p99_ratio_{kind}"] for n in names],
            0.4,
            label=f"{kind} p99 mixed / alone",
        )
    ax.plot(list(x), [analysis[n]["share_sum"] for n in names], "ko-", label="sum of shares (wall clock)")
    ax.plot(list(x), [analysis[n]["cpu_share_sum"] for n in names], "k^--", label="sum of shares (CPU time)")
    ax.axhline(2.0, color="red", ls=":", lw=1, label="p99 ratio target ≤ 2")
    ax.axhline(0.95, color="green", ls=":", lw=1, label="share target ≥ 0.95")
    ax.set(title="fairness", xticks=list(x), xticklabels=names)
    ax.legend(fontsize=8)
    fig.suptitle(f"{version} on the CPU target, gateway over HTTP (wrk), text cache off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
