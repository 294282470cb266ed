#!/usr/bin/env python3
"""Install the real tritonserver (CPU, Python backend) into $TRITON_HOME (default .triton/)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triton_clip.server import DEFAULT_HOME, install  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(install(DEFAULT_HOME))
