#!/usr/bin/env python3
"""Gateway workers 1 vs 2 with wrk (`clip-bench-workers --help`): clipbench/workers/cli.py."""

import sys

from clipbench.workers.cli import main

if __name__ == "__main__":
    sys.exit(main())
