#!/usr/bin/env python3
"""The embedded CPU tritonserver on a model repository (`clip-triton --help`): triton_clip/server.py `main`."""

import sys

from triton_clip.server import main

if __name__ == "__main__":
    sys.exit(main())
