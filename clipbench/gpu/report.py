"""The GPU benchmark's report: `gpu_bench.md` (tables), `gpu_bench.json` (everything), `gpu_bench.png` (if cheap)."""

from __future__ import annotations

import json
from pathlib import Path

from clipbench.gpu.plan import DEADLINE_S, Plan

MARKDOWN, JSON, PLOT = "gpu_bench.md", "gpu_bench.json", "gpu_bench.png"


def _points(result: dict, system: str) -> list[dict]:
    return [p for p in result["points"] if p["system"] == system]


def model_table(result: dict) -> list[str]:
    rows = ["| tower | batch | items/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for p in _points(result, "model-only"):
        cells = (p["op"], p["concurrency"], f"{p['items_per_s']:.1f}", f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}")
        rows.append("| " + " | ".join(map(str, cells)) + " |")
    return rows


def gateway_table(result: dict) -> list[str]:
    rows = [
        "| route, workers, transport (served) | connections | items/s | p50 ms | p99 ms | errors | Triton avg batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in _points(result, "gateway"):
        served = p["extra"].get("served_transport", "?")
        batch = "; ".join(f"{m}: {d['avg_batch']}" for m, d in p["triton"].items())
        rows.append(
            f"| {p['op']} ({served}) | {p['concurrency']} | {p['items_per_s']:.1f} | {p['p50_ms']:.2f} | "
            f"{p['p99_ms']:.2f} | {p['errors']} | {batch} |"
        )
    return rows


def mixed_section(result: dict, plan: Plan) -> list[str]:
    mixed = result.get("mixed") or {}
    analysis = mixed.get("analysis") or {}
    if not analysis or "error" in analysis:
        return [f"Not measured: {analysis.get('error', 'the phase did not run')}."]
    from clipbench.mixed.report import table

    return [table(analysis, plan.mixed_concurrency)]


def phases_table(result: dict) -> list[str]:
    phases = result.get("phases", {})
    spent, budget = phases.get("spent_s", {}), phases.get("budget_s", {})
    rows = ["| phase | spent s | budget s |", "|---|---|---|"]
    rows += [f"| {name} | {spent.get(name, '–')} | {budget.get(name, '–')} |" for name in budget]
    rows.append(f"| **total** | **{result.get('elapsed_s', '?')}** | {sum(budget.values())} (deadline {DEADLINE_S}) |")
    return rows + [f"\nSkipped for time: {', '.join(phases['skipped'])}." if phases.get("skipped") else ""]


def markdown(result: dict, plan: Plan) -> str:
    m = result["machine"]
    parity = result.get("parity") or {}
    lines = [
        f"# GPU benchmark ({plan.device}; `python -m clipbench.gpu`)\n",
        f"Machine: {m.get('gpu', 'no GPU')}, {m.get('cpu')}, {m.get('nproc')} cores; Python {m.get('python')}, "
        f"torch {m.get('torch')}, {m.get('triton')}. Versions {', '.join(plan.versions)}, random init, "
        f"{'fp16' if plan.fp16 else 'fp32'}. Host packages: {m.get('bootstrap') or '–'}\n",
        "## Model only (TorchScript in-process, synchronised)\n",
        *model_table(result),
        f"\n## Gateway end to end ({plan.served_version}, wrk, text cache off)\n",
        f"Sizing: {json.dumps(result.get('sizing'))}\n",
        *gateway_table(result),
        "\n## Mixed traffic (issue 14): one GPU, both towers\n",
        *mixed_section(result, plan),
        "\n## GPU decode parity (clipbench/gpu_decode_parity.py)\n",
        f"exit {parity.get('rc')}\n\n```\n{parity.get('output', 'not run')[-2500:]}\n```\n",
        "## Phases\n",
        *phases_table(result),
    ]
    if result["errors"]:
        lines += ["\n## Errors\n", *(f"* {e[:500]}" for e in result["errors"])]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, system, xlabel in ((axes[0], "model-only", "batch"), (axes[1], "gateway", "connections")):
        for op in dict.fromkeys(p["op"] for p in _points(result, system)):
            pts = [p for p in _points(result, system) if p["op"] == op]
            ax.plot([p["concurrency"] for p in pts], [p["items_per_s"] for p in pts], "o-", label=op)
        ax.set_xscale("log", base=2)
        ax.set(xlabel=xlabel, ylabel="items/s", title=system)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(out: Path, result: dict, plan: Plan, with_plot: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON).write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / MARKDOWN).write_text(markdown(result, plan))
    if not with_plot:
        return
    try:
        plot(result, out / PLOT)
    except Exception as exc:  # noqa: BLE001 - the plot is a convenience, the tables are the result
        result["errors"].append(f"plot: {exc}")
