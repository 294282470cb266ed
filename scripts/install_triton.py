#!/usr/bin/env python3
"""Install the real tritonserver (CPU, Python backend) into $TRITON_HOME (default .triton/)."""

import logging

from triton_clip.server import DEFAULT_HOME, install

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(install(DEFAULT_HOME))
