#!/usr/bin/env python3
"""GPU decode parity of the encoded transport: clipbench/gpu_decode_parity.py (`--help`)."""

import sys

from clipbench.gpu_decode_parity import main

if __name__ == "__main__":
    sys.exit(main())
