"""clip-bench-mixed: images alone, texts alone, both at once, and compare, per CPU plan.

    clip-bench-mixed [--variants split,passive,legacy] [--rounds 1] [--seconds 15] [--docs docs]

Each variant restarts Triton (configs rewritten to the plan) and the gateway (text cache off); wrk
drives 640x480 JPEGs to /clip/embed_image and unique short prompts to /clip/embed_text. Rounds
alternate the variant order (A B, B A) so a noisy neighbour hits both. Bounded: about
(60 + 4 x seconds) s per variant and round. Results: results/mixed-<UTC>/ (results.json, report.md,
benchmarks-mixed.png, server logs); --docs DIR copies the plot to DIR/benchmarks-mixed.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipbench.mixed.stack import ROOT, VARIANTS
from clipbench.results import add_output_options
from triton_clip.threads import default_cores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="ViT-B-32", help="CLIP version (exported with random weights if missing)")
    parser.add_argument("--repository", type=Path, default=ROOT / "results/mixed/model_repository")
    parser.add_argument(
        "--variants",
        default="split,passive,legacy",
        help=f"comma-separated, from: {', '.join(VARIANTS)} (default %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all variants, order alternating")
    parser.add_argument("--seconds", type=float, default=15.0, help="time box of one scenario")
    parser.add_argument("--warm-seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4, help="total connections of every scenario")
    parser.add_argument("--cores", type=int, default=default_cores(), help="cores the plan is sized for")
    parser.add_argument("--no-compare", action="store_true", help="skip the compare scenario")
    parser.add_argument("--flood", type=int, default=16, help="image connections against 1 text client (0: skip)")
    parser.add_argument("--gateway-workers", type=int, default=1, help="uvicorn worker processes of the gateway")
    add_output_options(parser, "benchmarks-mixed.png")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    args.repository = args.repository.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    from clipbench.mixed.run import main as run_main

    return run_main(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
