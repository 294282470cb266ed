#!/usr/bin/env python3
"""Export CLIP versions into a Triton model repository (see `--help`)."""

import sys


from triton_clip.cli import main

if __name__ == "__main__":
    sys.exit(main())
