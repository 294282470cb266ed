"""clip-bench-workers: short-text requests/s with 1 and 2 gateway workers, in one run, with wrk.

    clip-bench-workers [--seconds 10] [--rounds 3] [--connections 32] [--workers 1,2] [--docs docs/benchmarks.md]

The tiny test CLIP (random weights) makes the model negligible, so what is measured is the service itself:
gateway workers + tritonserver + its Python-backend stubs. wrk (a C load generator, Debian's `wrk`) sends
POST /clip/embed_text with a unique short prompt each (no text-cache hit) over 127.0.0.1. For each worker
count, over the measured window: requests/s, the CPU time of every process of the service (/proc/<pid>/stat)
and of wrk (its rusage) per request, the busiest single process (share of one core), the machine's busy
share (/proc/stat) and the part of it used by processes that are not ours. The ceiling
`cores / (service + wrk CPU per request)` is what a fully used machine would give; `efficiency` is the
measured share of it. All gateways run at once (the idle one costs nothing measurable) and are measured
in --rounds interleaved rounds, order alternating; the ratio is the median of the rounds'. Bounded:
--seconds per point (plus a 2 s warm-up). Writes results/bench-workers-<UTC>/results.json and, with
--docs, the table between `<!-- bench-workers:start -->` and `<!-- bench-workers:end -->`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

from clipbench.procstat import cpu_model
from clipbench.repos import RESULTS, TINY_VERSION, ensure_exported
from clipbench.report import replace_section
from clipbench.stack import gateway_env, local_triton
from clipbench.workers.measure import NCPU, measure
from clipbench.workers.report import table
from triton_clip.launch import start_gateway


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median and per-round ratios)")
    parser.add_argument("--docs", type=Path, default=None, help="markdown file whose bench-workers section is replaced")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.rounds <= 10:
        parser.error("--seconds must be in [1, 120] and --rounds in [1, 10]")
    args.counts = [int(w) for w in args.workers.split(",")]
    return args


def run_points(args: argparse.Namespace, out: Path) -> list[dict]:
    repo = ensure_exported(TINY_VERSION, RESULTS / "bench-workers" / "model_repository", cpu_threads=1)
    points = []
    with local_triton(repo, out / "tritonserver.log") as triton:
        env = gateway_env(dict(os.environ), triton, TINY_VERSION, GATEWAY_MAX_INFLIGHT="1024")
        gateways = {
            w: start_gateway(env, workers=w, log_file=out / f"gateway-{w}.log", ready_timeout_s=120)
            for w in args.counts
        }
        try:
            for r in range(args.rounds):  # interleaved, order alternating: slow drifts of others' load cancel
                for workers in args.counts if r % 2 == 0 else args.counts[::-1]:
                    point = {
                        **measure(gateways[workers], triton, workers, args.seconds, args.connections, out),
                        "round": r + 1,
                    }
                    points.append(point)
                    print(json.dumps({k: v for k, v in point.items() if k != "per_process_core_share"}), flush=True)
        finally:
            for gw in gateways.values():
                gw.stop()
    return points


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("clip-bench-workers: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    out = RESULTS / f"bench-workers-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    points = run_points(args, out)
    info = (
        f"Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {NCPU} cores ({cpu_model()}); tiny CLIP "
        f"(random weights), wrk -t1 -c{args.connections}, {args.seconds:g} s per point, {args.rounds} interleaved "
        "rounds, unique short prompts."
    )
    command = " ".join(["clip-bench-workers", *sys.argv[1:]])
    text = table(points, command, info)
    (out / "results.json").write_text(json.dumps({"info": info, "command": command, "points": points}, indent=2))
    print(text)
    if args.docs is not None:
        replace_section(args.docs, "bench-workers", text)
        print(f"clip-bench-workers: wrote {args.docs}")
    print(f"clip-bench-workers: results in {out}")
    return 0
