"""CLI of the serving-cost benchmark (scripts/bench_cost.py): arguments, the run, tables, profile summaries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipbench import cost_report, profile, serving_cost

USAGE = """Whole-service CPU per request with wrk at 16 connections (docs/benchmarks.md, "Serving cost").

  .venv/bin/python scripts/bench_cost.py --out results/cost.json
  .venv/bin/python scripts/bench_cost.py --code before=/path/to/main-worktree --code after=. --rounds 3
"""


def main() -> int:
    p = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="checkout to run the gateway and exporter from (repeatable; default: this one)",
    )
    p.add_argument("--scenario", action="append", choices=["text", "image"], help="default: both")
    p.add_argument("--seconds", type=float, default=15.0, help="wrk duration per measured point")
    p.add_argument("--warmup", type=float, default=3.0, help="wrk warm-up before each first point")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds over the code roots")
    p.add_argument("--profile", type=Path, help="folder for py-spy collapsed stacks of the first round")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway environment")
    p.add_argument("--out", type=Path, default=Path("results/serving-cost.json"))
    p.add_argument("--from-json", type=Path, help="print the tables of an earlier run, measure nothing")
    a = p.parse_args()
    if a.from_json:
        results = cost_report.load(a.from_json)
        print(cost_report.table(results), cost_report.medians(results), sep="\n\n")
        return 0
    roots = dict(c.split("=", 1) for c in a.code) or {"this": "."}
    code_roots = {k: Path(v).resolve() for k, v in roots.items()}
    env = dict(e.split("=", 1) for e in a.env)
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    results = serving_cost.run(
        code_roots, a.scenario or ["text", "image"], a.seconds, a.connections, a.rounds, a.warmup, a.profile, env
    )
    floor = serving_cost.decode_floor_ms()
    meta = {"machine": cost_report.machine(), "argv": sys.argv, "connections": a.connections, "decode_floor": floor}
    cost_report.save(results, a.out, meta)
    print(cost_report.table(results))
    print()
    print(cost_report.medians(results))
    if a.profile:
        for f in sorted(a.profile.glob("*.txt")):
            (f.with_suffix(".summary")).write_text(profile.render(profile.summarise(f)))
            print(f"profile summary: {f.with_suffix('.summary')}")
    print(f"exact decode + preprocess of the JPEG alone (in-process CPU): {floor['decode_preprocess_ms']:.2f} ms")
    print(f"results: {a.out}")
    return 0
