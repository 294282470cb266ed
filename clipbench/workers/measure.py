"""One measured point: wrk against one gateway, CPU of every process of the service and of wrk, per request."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from pathlib import Path

from clipbench.procstat import HZ, machine_jiffies, proc_stat, tree_of
from triton_clip.launch import Gateway
from triton_clip.server import TritonProcess

NCPU = os.cpu_count() or 1
LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/clip/embed_text", {["Content-Type"] = "application/json"},
                    '{"text": "a photo of thing %s ' .. n .. '"}')
end
"""
_RUNS = itertools.count()


def role(pid: int, gw: Gateway, triton: TritonProcess, gateway_pids: list[int], stats: dict) -> str:
    if pid == gw.pid:
        return "gateway"
    if pid in gateway_pids:
        return "gateway-worker" if "python" in stats[pid][2] else stats[pid][2]
    if pid == triton.pid:
        return "tritonserver"
    return "stub" if "triton_python" in stats[pid][2] else stats[pid][2]


def wrk(url: str, seconds: float, connections: int, folder: Path) -> tuple[str, float]:
    """Run wrk; its output and its own CPU seconds (rusage of the child).

    Every run gets its own prompt prefix: wrk's counter restarts at 0, and repeated prompts would be
    text-cache hits that never reach Triton.
    """
    script = folder / f"embed_text-{next(_RUNS)}.lua"
    script.write_text(LUA.replace("%s", f"run{script.stem.rsplit('-', 1)[1]}-{os.getpid()}"))
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return out, usage.ru_utime + usage.ru_stime


def parse_wrk(out: str) -> dict[str, float]:
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": bad,
        "socket_errors": sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
    }


def measure(gw: Gateway, triton: TritonProcess, workers: int, seconds: float, connections: int, folder: Path) -> dict:
    wrk(gw.base_url, 2, connections, folder)  # warm-up: connections, caches, Triton's batcher
    s0, (b0, t0), w0 = proc_stat(), machine_jiffies(), time.monotonic()
    out, wrk_cpu = wrk(gw.base_url, seconds, connections, folder)
    s1, (b1, t1), elapsed = proc_stat(), machine_jiffies(), time.monotonic() - w0
    load = parse_wrk(out)
    n = max(load["requests"], 1)
    gateway_pids = tree_of(s1, [gw.pid])
    per_proc = {
        f"{role(pid, gw, triton, gateway_pids, s1)}:{pid}": (s1[pid][1] - s0.get(pid, (0, s1[pid][1]))[1]) / HZ
        for pid in tree_of(s1, [gw.pid, triton.pid])
    }
    ours_self = (s1[os.getpid()][1] - s0[os.getpid()][1]) / HZ
    gateway_cpu = sum(v for k, v in per_proc.items() if int(k.rsplit(":", 1)[1]) in gateway_pids)
    service_cpu = sum(per_proc.values())
    others = max(0.0, (b1 - b0) / HZ - service_cpu - wrk_cpu - ours_self)
    ceiling = NCPU / ((service_cpu + wrk_cpu) / n)
    top = max(per_proc.items(), key=lambda kv: kv[1])
    return {
        "workers": workers,
        "connections": connections,
        "seconds": round(elapsed, 2),
        **load,
        "service_core_ms_per_request": round(1000 * service_cpu / n, 3),
        "gateway_core_ms_per_request": round(1000 * gateway_cpu / n, 3),
        "triton_core_ms_per_request": round(1000 * (service_cpu - gateway_cpu) / n, 3),
        "wrk_core_ms_per_request": round(1000 * wrk_cpu / n, 3),
        "machine_busy_share": round((b1 - b0) / max(t1 - t0, 1), 3),
        "others_cpu_share": round(others / elapsed / NCPU, 3),
        "busiest_process": top[0],
        "busiest_process_core_share": round(top[1] / elapsed, 3),
        "ceiling_rps": round(ceiling, 1),
        "efficiency": round(load["rps"] / ceiling, 3),
        "service_and_wrk_cores": round((service_cpu + wrk_cpu) / elapsed, 2),
        "per_process_core_share": {
            k: round(v / elapsed, 3) for k, v in sorted(per_proc.items(), key=lambda kv: -kv[1])
        },
    }
