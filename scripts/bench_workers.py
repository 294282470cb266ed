#!/usr/bin/env python3
"""Gateway workers benchmark: short-text requests/s with 1 and 2 gateway workers, in one run, with wrk.

    .venv/bin/python scripts/bench_workers.py [--seconds 10] [--rounds 3] [--connections 32] [--workers 1,2]
                                              [--docs docs/benchmarks.md]

The tiny test CLIP (tests/fixtures/clip-tiny.json, random weights) makes the model negligible, so what is
measured is the service itself: gateway workers + tritonserver + its Python-backend stubs. wrk (a C load
generator, Debian's `wrk`) sends POST /clip/embed_text with a unique short prompt each (no text-cache hit)
over 127.0.0.1. For each worker count, over the measured window: requests/s, the CPU time of every process
of the service (from /proc/<pid>/stat) and of wrk (its rusage) per request, the busiest single process
(share of one core), the machine's busy share (/proc/stat) and the part of it used by processes that are
not ours ("others' CPU", other users of a shared machine). The ceiling `cores / (service + wrk CPU per
request)` is what a fully used machine would give; `efficiency` is the measured share of it.

Both gateways run at once (the idle one costs nothing measurable) and are measured in --rounds interleaved rounds,
order alternating, so a slow drift of other users' load hits both alike; the ratio is the median of the rounds'.
Bounded: --seconds per point (plus a 2 s warm-up), all servers on 127.0.0.1 free ports, stopped by PID.
Writes results/bench-workers-<UTC>/results.json and, with --docs, the table into that file between
`<!-- bench-workers:start -->` and `<!-- bench-workers:end -->`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from procfs import proc_stat, tree_of  # scripts/procfs.py  # noqa: E402

from triton_clip.launch import Gateway, start_gateway  # noqa: E402
from triton_clip.local import free_port  # noqa: E402 - after the sys.path line (run as a script from a checkout)
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
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


def machine() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # busy (all but idle, iowait), total


def wrk(url: str, seconds: float, connections: int, folder: Path) -> tuple[str, float]:
    """Run wrk; its output and its own CPU seconds (rusage of the child).

    Every run gets its own prompt prefix: wrk's counter restarts at 0, and repeated prompts would be
    text-cache hits that never reach Triton.
    """
    script = folder / f"embed_text-{next(_RUNS)}.lua"
    script.write_text(LUA.replace("%s", f"run{script.stem.rsplit('-', 1)[1]}-{os.getpid()}"))
    proc = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script),
                             url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return out, usage.ru_utime + usage.ru_stime


def measure(gw: Gateway, triton: TritonProcess, workers: int, seconds: float, connections: int, folder: Path) -> dict:
    wrk(gw.base_url, 2, connections, folder)  # warm-up: connections, caches, Triton's batcher
    roots = [gw.pid, triton.pid, os.getpid()]
    s0, (b0, t0), w0 = proc_stat(), machine(), time.monotonic()
    out, wrk_cpu = wrk(gw.base_url, seconds, connections, folder)
    s1, (b1, t1), elapsed = proc_stat(), machine(), time.monotonic() - w0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    per_proc = {}
    gateway_pids = tree_of(s1, [gw.pid])
    for pid in tree_of(s1, roots[:2]):
        used = (s1[pid][1] - s0.get(pid, (0, s1[pid][1]))[1]) / HZ
        per_proc[f"{role(pid, gw, triton, gateway_pids, s1)}:{pid}"] = used
    ours_self = (s1[os.getpid()][1] - s0[os.getpid()][1]) / HZ
    gateway_cpu = sum(v for k, v in per_proc.items() if int(k.rsplit(":", 1)[1]) in gateway_pids)
    service_cpu = sum(per_proc.values())
    busy = (b1 - b0) / HZ
    busy_share = (b1 - b0) / max(t1 - t0, 1)
    others = max(0.0, busy - service_cpu - wrk_cpu - ours_self)
    per_request = (service_cpu + wrk_cpu) / max(requests, 1)
    ceiling = NCPU / per_request
    top = max(per_proc.items(), key=lambda kv: kv[1])
    return {
        "workers": workers, "connections": connections, "seconds": round(elapsed, 2), "requests": requests,
        "rps": rps, "non_2xx": bad, "socket_errors": socket_errors,
        "service_core_ms_per_request": round(1000 * service_cpu / max(requests, 1), 3),
        "gateway_core_ms_per_request": round(1000 * gateway_cpu / max(requests, 1), 3),
        "triton_core_ms_per_request": round(1000 * (service_cpu - gateway_cpu) / max(requests, 1), 3),
        "wrk_core_ms_per_request": round(1000 * wrk_cpu / max(requests, 1), 3),
        "machine_busy_share": round(busy_share, 3), "others_cpu_share": round(others / elapsed / NCPU, 3),
        "busiest_process": top[0], "busiest_process_core_share": round(top[1] / elapsed, 3),
        "ceiling_rps": round(ceiling, 1), "efficiency": round(rps / ceiling, 3),
        "service_and_wrk_cores": round((service_cpu + wrk_cpu) / elapsed, 2),
        "per_process_core_share": {k: round(v / elapsed, 3)
                                   for k, v in sorted(per_proc.items(), key=lambda kv: -kv[1])},
    }


def table(points: list[dict], command: str, info: str) -> str:
    rows = [("| round | gateway workers | req/s | service core-ms/req (gateway + Triton) | wrk core-ms/req "
             "| ceiling req/s | efficiency | cores used by service + wrk | machine busy | others' CPU "
             "| busiest process (share of a core) | non-2xx |"), "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        rows.append(f"| {p.get('round', 1)} | {p['workers']} | {p['rps']:.0f} | {p['service_core_ms_per_request']:.3f} "
                    f"({p['gateway_core_ms_per_request']:.3f} + {p['triton_core_ms_per_request']:.3f}) "
                    f"| {p['wrk_core_ms_per_request']:.3f} | {p['ceiling_rps']:.0f} | {p['efficiency']:.0%} "
                    f"| {p['service_and_wrk_cores']:.2f} "
                    f"| {p['machine_busy_share']:.0%} | {p['others_cpu_share']:.0%} | {p['busiest_process']} "
                    f"{p['busiest_process_core_share']:.0%} | {p['non_2xx'] + p['socket_errors']} |")
    head = [f"{info}", "", f"Command: `{command}`", "", *summary(points), ""]
    return "\n".join(head + rows) + "\n"


def summary(points: list[dict]) -> list[str]:
    """Median per worker count, and the per-round ratio of the largest to the smallest count."""
    counts = sorted({p["workers"] for p in points})
    lines = []
    for w in counts:
        mine = [p for p in points if p["workers"] == w]
        lines.append(f"- {w} worker(s): median {statistics.median(p['rps'] for p in mine):.0f} req/s, "
                     f"{statistics.median(p['service_core_ms_per_request'] for p in mine):.3f} service core-ms/req, "
                     f"machine busy {statistics.median(p['machine_busy_share'] for p in mine):.0%}, "
                     f"others' CPU {statistics.median(p['others_cpu_share'] for p in mine):.0%}, "
                     f"busiest process {statistics.median(p['busiest_process_core_share'] for p in mine):.0%} "
                     "of a core")
    if len(counts) > 1:
        lo, hi = counts[0], counts[-1]
        rounds = sorted({p.get("round", 1) for p in points})
        ratios = [next(p["rps"] for p in points if p.get("round", 1) == r and p["workers"] == hi)
                  / next(p["rps"] for p in points if p.get("round", 1) == r and p["workers"] == lo) for r in rounds]
        lines.append(f"- **{hi} vs {lo} worker(s): {statistics.median(ratios):.2f}x** requests/s "
                     "(median of the rounds; "
                     f"per round {', '.join(f'{x:.2f}' for x in ratios)})")
    return lines


def tiny_repository(repo: Path) -> Path:
    from triton_clip.export import ExportRequest, export_version, is_exported

    if not is_exported("clip-tiny", repo, "cpu"):
        import open_clip

        open_clip.add_model_config(ROOT / "tests" / "fixtures" / "clip-tiny.json")
        export_version(ExportRequest("clip-tiny", "none", "cpu", cpu_threads=1), repo)
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median and per-round ratios)")
    parser.add_argument("--docs", type=Path, default=None, help="markdown file whose bench-workers section is replaced")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench_workers: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if not 1 <= args.seconds <= 120 or not 1 <= args.rounds <= 10:
        parser.error("--seconds must be in [1, 120] and --rounds in [1, 10]")
    out = ROOT / "results" / f"bench-workers-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    repo = tiny_repository(ROOT / "results" / "bench-workers" / "model_repository")
    install(DEFAULT_HOME)
    triton = TritonProcess(TritonOptions(repo.resolve(), "127.0.0.1", free_port(), free_port(), free_port()),
                           log_file=out / "tritonserver.log")
    points = []
    try:
        triton.wait_ready(300)
        env = dict(os.environ, GATEWAY_TRITON_URL=triton.opts.grpc_url, CLIP_VERSION_ID="clip-tiny",
                   GATEWAY_MAX_INFLIGHT="1024", GATEWAY_LOG_LEVEL="WARNING")
        counts = [int(w) for w in args.workers.split(",")]
        gateways = {w: start_gateway(env, workers=w, log_file=out / f"gateway-{w}.log", ready_timeout_s=120)
                    for w in counts}  # both up at once; the idle one costs nothing measurable
        try:
            for r in range(args.rounds):  # interleaved, order alternating: slow drifts of others' load cancel
                for workers in counts if r % 2 == 0 else counts[::-1]:
                    point = measure(gateways[workers], triton, workers, args.seconds, args.connections, out)
                    point["round"] = r + 1
                    points.append(point)
                    print(json.dumps({k: v for k, v in point.items() if k != "per_process_core_share"}), flush=True)
        finally:
            for gw in gateways.values():
                gw.stop()
    finally:
        triton.stop(10)
    cpu_lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpu_lines if ln.startswith("model name")), "?")
    info = (f"Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {NCPU} cores ({cpu}); tiny CLIP "
            f"(random weights), wrk -t1 -c{args.connections}, {args.seconds:g} s per point, {args.rounds} interleaved "
            "rounds, unique short prompts.")
    command = " ".join([".venv/bin/python", "scripts/bench_workers.py", *sys.argv[1:]])
    text = table(points, command, info)
    (out / "results.json").write_text(json.dumps({"info": info, "command": command, "points": points}, indent=2))
    print(text)
    if args.docs is not None:
        doc = args.docs.read_text()
        block = f"<!-- bench-workers:start -->\n{text}<!-- bench-workers:end -->"
        pattern = re.compile(r"<!-- bench-workers:start -->.*?<!-- bench-workers:end -->", re.DOTALL)
        doc = pattern.sub(lambda _m: block, doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
        args.docs.write_text(doc)
        print(f"bench_workers: wrote {args.docs}")
    print(f"bench_workers: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
