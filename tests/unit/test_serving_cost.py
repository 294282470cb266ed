"""The serving-cost benchmark's own arithmetic: wrk's summary, CPU accounting over process trees,
py-spy stack summaries. (The benchmark itself needs wrk and a real Triton: scripts/bench_cost.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from clipbench import procstat, profile, serving_cost

WRK_OUT = """Running 10s test @ http://127.0.0.1:1234
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    19.76ms   40.01ms 474.83ms   96.38%
  Latency Distribution
     50%   12.64ms
     75%   17.04ms
     90%   24.66ms
     99%  136.14ms
  10871 requests in 10.08s, 3.12MB read
{errors}Requests/sec:   1078.47
"""


def test_wrk_summary_counts_requests_errors_and_latency() -> None:
    assert serving_cost.parse_wrk(WRK_OUT.format(errors="")) == (10871, 0)
    failed = "  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 5\n"
    assert serving_cost.parse_wrk(WRK_OUT.format(errors=failed)) == (10871, 10)
    assert serving_cost._latency_ms(WRK_OUT, "50") == pytest.approx(12.64)
    assert serving_cost._latency_ms(WRK_OUT, "99") == pytest.approx(136.14)
    with pytest.raises(RuntimeError):
        serving_cost.parse_wrk("unable to connect")


def test_cpu_of_a_process_tree_includes_its_live_children() -> None:
    busy = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    spawn = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}])"
    parent = subprocess.Popen([sys.executable, "-c", spawn])
    try:
        window = procstat.CpuWindow({"tree": parent.pid})
        window.start()
        deadline = time.monotonic() + 20
        while procstat.tree_seconds({"tree": parent.pid})["tree"] - window.tree0["tree"] < 0.35:
            assert time.monotonic() < deadline, "the grandchild's CPU never showed up in its tree"
            time.sleep(0.05)
        used = window.stop()
        assert used["tree_cpu_s"] >= 0.35
        assert 0.0 <= used["others_cpu_share"] <= 1.0
    finally:
        for pid in _children(parent.pid):  # the grandchild, by its PID, before its parent goes
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_cpu_by_command_line_picks_the_matching_descendants_only() -> None:
    """How the mixed benchmark splits the stubs' CPU per model: by a needle in each command line."""
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    spawn = (
        f"import subprocess, sys; a = subprocess.Popen([sys.executable, '-c', {busy!r}, '/model-a/']); "
        "b = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)', '/model-b/']); a.wait()"
    )
    parent = subprocess.Popen([sys.executable, "-c", spawn])
    try:
        deadline = time.monotonic() + 20
        needles = {"a": "/model-a/", "b": "/model-b/", "none": "/model-c/"}
        while (cpu := procstat.seconds_by_cmdline(parent.pid, needles))["a"] < 0.25:
            assert time.monotonic() < deadline, "the busy child's CPU never showed up"
            time.sleep(0.05)
        assert cpu["b"] < 0.2 and cpu["none"] == 0.0
    finally:
        for pid in _children(parent.pid):
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


def test_profile_summary_shares(tmp_path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "thread (1): MainThread;run (asyncio/runners.py:118);send (uvicorn/x.py:5) 3\n"
        "thread (1): MainThread;run (asyncio/runners.py:118) 1\n"
    )
    summary = profile.summarise(raw)
    assert dict(summary["self"])["send (x.py)"] == pytest.approx(0.75)
    assert dict(summary["inclusive"])["run (runners.py)"] == pytest.approx(1.0)
    assert "75.0%" in profile.render(summary)
