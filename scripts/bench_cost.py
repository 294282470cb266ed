#!/usr/bin/env python3
"""Whole-service CPU per request with wrk at 16 connections (see clipbench/serving_cost.py and docs/benchmarks.md).

  .venv/bin/python scripts/bench_cost.py --out results/cost.json
  .venv/bin/python scripts/bench_cost.py --code before=/path/to/main-worktree --code after=. --rounds 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipbench import profile, serving_cost  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", action="append", default=[], metavar="LABEL=PATH",
                   help="checkout to run the gateway and exporter from (repeatable; default: this one)")
    p.add_argument("--scenario", action="append", choices=["text", "image"], help="default: both")
    p.add_argument("--seconds", type=float, default=15.0, help="wrk duration per measured point")
    p.add_argument("--warmup", type=float, default=3.0, help="wrk warm-up before each first point")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds over the code roots")
    p.add_argument("--profile", type=Path, help="folder for py-spy collapsed stacks of the first round")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway environment")
    p.add_argument("--out", type=Path, default=Path("results/serving-cost.json"))
    a = p.parse_args()
    roots = dict(c.split("=", 1) for c in a.code) or {"this": "."}
    code_roots = {k: Path(v).resolve() for k, v in roots.items()}
    env = dict(e.split("=", 1) for e in a.env)
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    results = serving_cost.run(code_roots, a.scenario or ["text", "image"], a.seconds, a.connections, a.rounds,
                               a.warmup, a.profile, env)
    serving_cost.save(results, a.out, {"machine": serving_cost.machine(), "argv": sys.argv, "connections": a.connections})
    print(serving_cost.table(results))
    if a.profile:
        for f in sorted(a.profile.glob("*.txt")):
            (f.with_suffix(".summary")).write_text(profile.render(profile.summarise(f)))
            print(f"profile summary: {f.with_suffix('.summary')}")
    print(f"results: {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
