#!/usr/bin/env python3
"""Side-by-side benchmark (in-process ceiling, Triton gRPC, gateway, naive): `clip-bench --help`.

clip-bench [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]
"""

import sys

from clipbench import side_by_side

# scripts/bench_gpu.sh still does `from bench import ...` (its heredoc runs from scripts/): these names.
from clipbench.closedloop import Point, closed_loop, summarise  # noqa: F401
from clipbench.payloads import jpeg_640x480, unique_prompt  # noqa: F401
from clipbench.servers import free_port, stop, wait_http  # noqa: F401
from clipbench.tritonstats import stats_delta, triton_stats  # noqa: F401

if __name__ == "__main__":
    sys.exit(side_by_side.main())
