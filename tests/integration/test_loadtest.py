"""scripts/loadtest.sh: a bounded 5-second headless run against the session gateway leaves its reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loadtest_smoke(gateway, tmp_path) -> None:
    out = tmp_path / "loadtest"
    proc = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts/loadtest.sh"),
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "5s",
            "--host",
            gateway.base_url,
            "--scenario",
            "mixed",
            "--out",
            str(out),
            "--",
            "--max-image-side",
            "640",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "loadtest: OK" in proc.stdout
    stats = json.loads((out / "stats.json").read_text())
    assert sum(e["num_requests"] for e in stats) > 0
    assert sum(e["num_failures"] for e in stats) == 0
    assert (out / "report.html").stat().st_size > 0
    assert (out / "stats_stats.csv").exists()
