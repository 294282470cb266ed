#!/usr/bin/env python3
"""Side-by-side benchmark (in-process ceiling, Triton gRPC, gateway, naive): clipbench.side_by_side (`--help`).

    .venv/bin/python scripts/bench.py [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", category=FutureWarning)

from clipbench import side_by_side  # noqa: E402

# scripts/bench_gpu.sh (another branch's) still does `from bench import ...`: these names, until it imports clipbench.
from clipbench.closedloop import Point, closed_loop, summarise  # noqa: E402, F401
from clipbench.payloads import jpeg_640x480, unique_prompt  # noqa: E402, F401
from clipbench.servers import free_port, stop, wait_http  # noqa: E402, F401
from clipbench.tritonstats import stats_delta, triton_stats  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(side_by_side.main())
