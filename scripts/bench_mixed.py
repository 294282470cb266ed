#!/usr/bin/env python3
"""Mixed-traffic benchmark (`clip-bench-mixed --help`): clipbench/mixed/cli.py."""

import sys

from clipbench.mixed.cli import main

if __name__ == "__main__":
    sys.exit(main())
