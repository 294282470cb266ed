#!/usr/bin/env python3
"""Exact decode + preprocess vs libjpeg draft (DCT-scaled) decode, on a photographic 4000x3000 JPEG.

    .venv/bin/python scripts/bench_decode.py [--size 224] [--reps 9]

Prints median CPU times (ms) and the draft/exact ratio from the same run (see clipbench/decode.py);
the answer lives in docs/decode-draft.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipbench import decode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    decode.run(args.size, args.reps)


if __name__ == "__main__":
    main()
