#!/usr/bin/env python3
"""Whole-service CPU per request with wrk (serving cost): clipbench.cost_cli (`--help`).

.venv/bin/python scripts/bench_cost.py --code before=/path/to/main-worktree --code after=. --rounds 3
"""

import sys


from clipbench import cost_cli

if __name__ == "__main__":
    sys.exit(cost_cli.main())
