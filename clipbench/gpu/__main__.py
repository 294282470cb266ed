"""`python -m clipbench.gpu`: the GPU benchmark's command line (clipbench/gpu/cli.py)."""

import sys

from clipbench.gpu.cli import main

sys.exit(main())
