#!/usr/bin/env python3
"""Exact vs libjpeg draft decode on a 4000x3000 JPEG: clipbench.decode (`--help`; answer in docs/decode-draft.md).

.venv/bin/python scripts/bench_decode.py [--size 224] [--reps 9]
"""

from clipbench.decode import main

if __name__ == "__main__":
    main()
