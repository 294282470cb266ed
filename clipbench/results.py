"""Where a benchmark run writes: results/<bench>-<UTC time>/ unless --out, and the options every report shares.

`--out` (the folder), `--docs` (also copy the plot into the docs) and `--from-json` (only re-render the
report and the plot from a stored results.json, no load) mean the same in every benchmark command.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_output_options(parser: argparse.ArgumentParser, plot: str) -> None:
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<bench>-<UTC>/)")
    parser.add_argument("--docs", type=Path, default=None, help=f"also copy the plot to DIR/{plot}")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="only re-render the report and the plot from a results.json"
    )


def run_folder(out: Path | None, bench: str) -> Path:
    """`out`, or a new results/<bench>-<UTC time>/; created either way."""
    folder = out or ROOT / "results" / f"{bench}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
