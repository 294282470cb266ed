#!/usr/bin/env python3
"""Export CLIP versions into a Triton model repository (see `--help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triton_clip.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
