#!/usr/bin/env python3
"""The soak (`clip-soak --help`): clipbench/soak/cli.py."""

import sys

from clipbench.soak.cli import main

if __name__ == "__main__":
    sys.exit(main())
