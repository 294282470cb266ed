#!/usr/bin/env python3
"""Side-by-side benchmark (in-process ceiling, Triton gRPC, gateway, naive): the CLI of clipbench.side_by_side.

    .venv/bin/python scripts/bench.py [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=FutureWarning)

from clipbench import side_by_side  # noqa: E402
# scripts/bench_gpu.sh (another branch's file) still does `from bench import ...`: these names, until it imports clipbench.
from clipbench.closedloop import Point, closed_loop, summarise  # noqa: E402, F401
from clipbench.payloads import jpeg_640x480, unique_prompt  # noqa: E402, F401
from clipbench.servers import free_port, stop, wait_http  # noqa: E402, F401
from clipbench.tritonstats import stats_delta, triton_stats  # noqa: E402, F401


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=side_by_side.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", default="ViT-B-32", help="CLIP version id (exported as random init if missing)")
    p.add_argument("--repository", type=Path, default=ROOT / "results/bench/model_repository")
    p.add_argument("--model-config", type=Path, action="append", default=[],
                   help="extra open_clip model config JSON, e.g. tests/fixtures/clip-tiny.json (repeatable)")
    p.add_argument("--seconds", type=float, default=12.0, help="time box of one load point")
    p.add_argument("--inproc-seconds", type=float, default=6.0, help="time box of one in-process point")
    p.add_argument("--max-requests", type=int, default=5000, help="request cap of one load point")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the in-process measurement")
    p.add_argument("--triton-levels", default="1,4,8,16,32,64", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--http-levels", default="1,4,16,64", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--bucket-concurrency", type=int, default=32)
    p.add_argument("--ab-rounds", type=int, default=2,
                   help="interleaved saturation rounds (in-process / Triton / gateway / naive) at the end")
    p.add_argument("--ab-seconds", type=float, default=8.0, help="time box of one A/B point")
    p.add_argument("--only-ab", action="store_true", help="skip the sweeps: only the A/B rounds")
    p.add_argument("--gateway-env", action="append", default=[], help="KEY=VALUE for the gateway (repeatable)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--docs", type=Path, default=None, help="also copy the plot to DIR/benchmarks.png")
    p.add_argument("--from-json", type=Path, default=None,
                   help="only re-render report.md and the plot from a stored results.json (no load)")
    args = p.parse_args(argv)
    args.gateway_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    return args


if __name__ == "__main__":
    sys.exit(side_by_side.main(parse()))
