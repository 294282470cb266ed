#!/usr/bin/env python3
"""Embedded mode, kept for old habits: the run command is `python -m triton_clip.run` (triton_clip/run.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triton_clip.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
