#!/usr/bin/env python3
"""Per-family gateway vs in-process ceiling (`clip-bench-families --help`): clipbench/families.py."""

import sys

from clipbench.families import main

if __name__ == "__main__":
    sys.exit(main())
