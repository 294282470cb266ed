"""`wrk` as the load generator: one process per request kind, a Lua script that cycles request bodies.

wrk is a closed loop in C (each connection sends its next request when the answer arrives), so the
client costs next to no CPU on a 2-core machine, where a Python client would take a visible share.
Bodies are prepared in Python (one JSON document per line) and read by the Lua script, so every kind
(single image, unique prompt, compare) is the same script; `done()` prints the summary as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = %(offset)d
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"mean_us": %%.1f, "max_us": %%d}\n', summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class Kind:
    """One request kind, as wrk sends it."""

    name: str  # "image", "text", "compare": the row label and the Lua script's file name
    route: str  # e.g. /clip/embed_image
    bodies: Path  # one JSON body per line, cycled by the Lua script
    items: int = 1  # embeddings one request carries (items/s = requests/s x items)


def binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: apt-get update && apt-get install -y wrk")
    return found


def write_kind(folder: Path, name: str, route: str, bodies: list[str], items: int = 1) -> Kind:
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(bodies) + "\n")
    return Kind(name, route, path, items)


def start(base_url: str, kind: Kind, connections: int, seconds: float, offset: int = 0) -> subprocess.Popen:
    """Start one wrk (1 thread, `connections` connections) for `seconds`; read it with `result`."""
    script = kind.bodies.with_name(f"{kind.name}-{offset}.lua")
    script.write_text(LUA % {"bodies": kind.bodies, "offset": offset})
    cmd = [
        binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        base_url + kind.route,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def result(proc: subprocess.Popen, kind: Kind, seconds: float) -> dict:
    """Wait (bounded) and parse: per-second rates, latency percentiles in ms, error counts."""
    out, _ = proc.communicate(timeout=seconds + 60)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary for {kind.name}:\n{out[-2000:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    elapsed = raw["duration_us"] / 1e6
    ok = max(raw["requests"] - raw["status"], 0)
    return {
        "requests": raw["requests"],
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rps": ok / elapsed,
        "items_per_s": ok * kind.items / elapsed,
        **{k.replace("_us", "_ms"): raw[k] / 1000 for k in ("p50_us", "p90_us", "p99_us", "mean_us", "max_us")},
    }
