#!/usr/bin/env python3
"""Embedded mode, kept for old habits: the run command is `python -m triton_clip.run` (triton_clip/run.py)."""

import sys

from triton_clip.run import main

if __name__ == "__main__":
    sys.exit(main())
