"""results.json and report.md of a side-by-side run (docs/benchmarks.md's tables are pasted from report.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from clipbench.closedloop import Point
from clipbench.console import console

HEADER = [
    "| system | op | batch / concurrency | requests | errors | items/s | p50 ms | p95 ms | p99 ms "
    "| CPU used by others | Triton (avg batch, ms/request, queue) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def fmt_row(p: Point) -> str:
    tri = "; ".join(
        f"{m.rsplit('-', 1)[-1]} b̄={d['avg_batch']} {d['request_ms']} ms (q {d['queue_ms']})"
        for m, d in p.triton.items()
    )
    return (
        f"| {p.system} | {p.op} | {p.concurrency} | {p.requests} | {p.errors} | {p.items_per_s:.2f} | "
        f"{p.p50_ms:.1f} | {p.p95_ms:.1f} | {p.p99_ms:.1f} | {p.extra.get('others_cpu', 0):.0%} | {tri} |"
    )


def _value(k: str, v: object) -> str:
    return f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}"


def report(points: list[Point], extra: dict, a: dict) -> str:
    m = extra["machine"]
    config = "; ".join(
        f"{k}: max_batch {v['max_batch_size']}, delay {v['queue_delay_us']} µs, "
        f"{v['instances']} instance × {v['num_threads']} threads"
        for k, v in extra["config"].items()
    )
    lines = [
        f"Run: {extra['utc']}, wall {extra['wall_s']} s. Command: `{extra['command']}`",
        "",
        f"Machine: {m['cpu']}, nproc {m['nproc']}, {m['mem']}; Python {m['python']}, torch {m['torch']}, "
        f"{m['triton']}; kernel {m['kernel']}.",
        "",
        "Triton config: " + config,
        "",
        *HEADER,
    ]
    lines += [fmt_row(p) for p in points]
    lines += ["", "Ratios and targets:", ""]
    lines += [_value(k, v) for k, v in a.items()]
    lines += [
        "",
        "Extra:",
        "",
        "```json",
        json.dumps({k: v for k, v in extra.items() if k not in ("machine",)}, indent=1),
        "```",
    ]
    return "\n".join(lines) + "\n"


def save_json(path: Path, points: list[Point], extra: dict) -> None:
    path.write_text(json.dumps({"points": [asdict(p) for p in points], "extra": extra}, indent=1))


def load_json(path: Path) -> tuple[list[Point], dict]:
    data = json.loads(path.read_text())
    return [Point(**p) for p in data["points"]], data["extra"]


def print_summary(a: dict) -> None:
    console.rule("summary")
    for k, v in a.items():
        console.print(f"{k:<34} {v:.3f}" if isinstance(v, float) else f"{k:<34} {v}")


def replace_section(doc: Path, name: str, text: str) -> None:
    """Put `text` between `<!-- name:start -->` and `<!-- name:end -->` in `doc` (appended if absent)."""
    import re

    block = f"<!-- {name}:start -->\n{text}<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.DOTALL)
    content = doc.read_text()
    if pattern.search(content):
        content = pattern.sub(lambda _m: block, content)
    else:
        content = content.rstrip("\n") + f"\n\n{block}\n"
    doc.write_text(content)
