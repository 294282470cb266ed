#!/usr/bin/env python3
"""Side-by-side benchmark (in-process ceiling, Triton gRPC, gateway, naive): `clip-bench --help`.

clip-bench [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]
"""

import sys

from clipbench import side_by_side

if __name__ == "__main__":
    sys.exit(side_by_side.main())
