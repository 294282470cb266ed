#!/usr/bin/env python3
"""Soak: a bounded mixed load against gateway + Triton, sampling RSS of every process over time.

    .venv/bin/python scripts/soak.py [--minutes 10] [--concurrency 8] [--version ViT-B-32 | --tiny]
                                     [--repository DIR] [--csv results/soak.csv] [--png docs/soak.png] [--md docs/soak.md]

Starts its own Triton (127.0.0.1, free ports) on the repository (exported with random weights if missing;
`--tiny` uses the test suite's tiny CLIP) and its own gateway, then runs a closed-loop mixed load
(embed_image 640x480 / 1280x720 / 1-4 images, embed_text unique and repeated prompts and lists, compare
with repeated class prompts; JPEG sizes mixed) with `--concurrency` workers for `--minutes`. Every
`--interval` seconds it samples, from /proc, the RSS of the gateway (uvicorn), tritonserver and each
Python-backend stub (the server's child processes), and the request counts. Writes the CSV, a PNG
(RSS per process + throughput over time) and a markdown summary (first/last/peak RSS, growth after
warm-up, the linear slope over the second half, request and error counts). Stops its servers by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from clipbench.servers import free_port, stop, wait_http  # noqa: E402 - same helpers as the benchmark

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:
        return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry))
    return out


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stub_label(pid: int) -> str:
    """'stub:<model>' from the stub's command line (the backend passes the model path first)."""
    cmd = cmdline(pid)
    for part in cmd.split():
        if "/1/model.py" in part or part.endswith("model.py"):
            return "stub:" + Path(part).parent.parent.name
    return f"child:{pid}"


def tree(pid: int) -> list[int]:
    """pid and all its descendants (the stubs run under `bash -c`, so walk the whole tree)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def jpegs() -> list[str]:
    from clipbench.payloads import photographic_jpeg

    sizes = [(640, 480), (640, 480), (1280, 720), (320, 240), (1920, 1080)]
    return [base64.b64encode(photographic_jpeg(w, h, seed)).decode() for seed, (w, h) in enumerate(sizes)]


CLASSES = [f"a photo of a {n}" for n in ("dog", "cat", "car", "bicycle", "person", "tree", "house", "boat",
                                          "airplane", "bird", "horse", "pizza", "laptop", "chair")]


async def load(base: str, concurrency: int, seconds: float, counters: dict, rng: random.Random,
               latencies: dict[str, list[float]]) -> None:
    import httpx

    images = jpegs()
    headers = {"content-type": "application/json"}
    deadline = time.monotonic() + seconds
    n = {"i": 0}

    def body() -> tuple[str, bytes]:
        n["i"] += 1
        i, r = n["i"], rng.random()
        if r < 0.30:
            return "embed_image", json.dumps({"image": {"type": "base64", "value": rng.choice(images)}}).encode()
        if r < 0.38:
            k = rng.randint(2, 4)
            return "embed_image", json.dumps({"image": [{"type": "base64", "value": rng.choice(images)}
                                                        for _ in range(k)]}).encode()
        if r < 0.55:  # unique prompts: cache misses, the LRU keeps evicting (bounded: its size is the cap)
            return "embed_text", json.dumps({"text": f"a photo of a thing number {i}"}).encode()
        if r < 0.65:
            return "embed_text", json.dumps({"text": [f"prompt {i} {j}" for j in range(rng.randint(2, 16))]}).encode()
        prompts = rng.sample(CLASSES, rng.randint(1, 8))
        return "compare", json.dumps({"subject": {"type": "base64", "value": rng.choice(images)},
                                      "prompt": prompts}).encode()

    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while time.monotonic() < deadline:
                route, payload = body()
                start = time.perf_counter()
                try:
                    r = await client.post(f"/clip/{route}", content=payload, headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                counters["ok" if ok else "errors"] += 1
                counters[route] = counters.get(route, 0) + 1
                if ok:  # latency per route (issue 14): a mixed load must not starve one route
                    latencies.setdefault(route, []).append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def sampler(pids: dict[str, int], triton_pid: int, interval: float, seconds: float, counters: dict,
                  rows: list[dict], t0: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        row = {"t_s": round(time.monotonic() - t0, 1), "ok": counters["ok"], "errors": counters["errors"]}
        for name, pid in pids.items():
            row[name] = round(rss_mb(pid), 1)
        stubs = [p for p in tree(triton_pid) if p != triton_pid and "triton_python_backend_stub" in cmdline(p)]
        for p in stubs:
            row[stub_label(p)] = round(rss_mb(p), 1)
        row["triton_total"] = round(row["tritonserver"] + sum(rss_mb(p) for p in stubs), 1)
        rows.append(row)
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)


def summarise(rows: list[dict], args: argparse.Namespace, info: dict) -> tuple[str, list[str]]:
    cols = [c for c in rows[0] if c not in ("t_s", "ok", "errors")]
    t = np.array([r["t_s"] for r in rows])
    warm = t >= min(60.0, t[-1] / 5)  # growth after warm-up (first minute: allocators, caches fill)
    half = t >= t[-1] / 2
    lines = ["| process | first MB | after warm-up MB | last MB | peak MB | growth after warm-up MB | slope 2nd half MB/min |",
             "|---|---|---|---|---|---|---|"]
    for c in cols:
        v = np.array([r.get(c, np.nan) for r in rows], dtype=float)
        vw = v[warm]
        slope = float(np.polyfit(t[half], v[half], 1)[0] * 60) if half.sum() > 2 and not np.isnan(v[half]).any() else float("nan")
        lines.append(f"| {c} | {v[0]:.0f} | {vw[0]:.0f} | {v[-1]:.0f} | {np.nanmax(v):.0f} | {vw[-1] - vw[0]:+.0f} | {slope:+.2f} |")
    last = rows[-1]
    total = last["ok"] + last["errors"]
    head = [f"Run: {info['utc']}, {args.minutes:g} min, {args.concurrency} concurrent clients, model {info['model']}, "
            f"{total} requests ({last['ok'] / max(t[-1], 1):.2f} req/s), {last['errors']} errors; by route: "
            f"{json.dumps(info['routes'])}.", "",
            f"Command: `{info['command']}`", ""]
    return "\n".join(head + lines) + "\n", cols


def latency_table(latencies: dict[str, list[float]]) -> str:
    """p50/p95/p99 per route over the whole soak (successful requests)."""
    lines = ["", "| route | requests | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for route, values in sorted(latencies.items()):
        ms = np.array(values) * 1000
        p50, p95, p99 = (np.percentile(ms, q) for q in (50, 95, 99))
        lines.append(f"| {route} | {len(ms)} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {ms.max():.0f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], cols: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r["t_s"] for r in rows]) / 60
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for c in cols:
        ax1.plot(t, [r.get(c, np.nan) for r in rows], label=c, linewidth=2 if c == "triton_total" else 1.2)
    ax1.set_ylabel("RSS (MiB)")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title(title)
    ok = np.array([r["ok"] for r in rows], dtype=float)
    rate = np.diff(ok) / np.maximum(np.diff(t * 60), 1e-9)
    ax2.plot(t[1:], rate, color="tab:gray")
    ax2.set_ylabel("req/s")
    ax2.set_xlabel("minutes")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--version", default="ViT-B-32")
    parser.add_argument("--tiny", action="store_true", help="the test suite's tiny random CLIP (fast, small)")
    parser.add_argument("--repository", type=Path, default=None)
    out = ROOT / "results" / f"soak-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    parser.add_argument("--csv", type=Path, default=out / "soak.csv")
    parser.add_argument("--png", type=Path, default=out / "soak.png")
    parser.add_argument("--md", type=Path, default=out / "soak.md")
    args = parser.parse_args()
    if args.minutes <= 0 or args.minutes > 240:
        parser.error("--minutes must be in (0, 240]")
    for p in (args.csv, args.png, args.md):
        p.parent.mkdir(parents=True, exist_ok=True)
    logdir = args.csv.parent

    from triton_clip.export import ExportRequest, export_version, is_exported
    from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

    version = "clip-tiny" if args.tiny else args.version
    repo = (args.repository or ROOT / "results" / ("soak-tiny" if args.tiny else "bench") / "model_repository").resolve()
    if not is_exported(version, repo, "cpu"):
        print(f"soak: exporting {version} (random weights) into {repo}")
        if args.tiny:
            import open_clip

            open_clip.add_model_config(ROOT / "tests/fixtures/clip-tiny.json")
        export_version(ExportRequest(version, "none", "cpu", cpu_threads=os.cpu_count() or 1), repo)
    install(DEFAULT_HOME)
    ports = [free_port() for _ in range(4)]
    server = TritonProcess(TritonOptions(repo, "127.0.0.1", *ports[:3]), log_file=logdir / "soak-tritonserver.log")
    gateway = None
    try:
        server.wait_ready(300)
        env = dict(os.environ, GATEWAY_TRITON_URL=f"127.0.0.1:{ports[1]}", CLIP_VERSION_ID=version,
                   GATEWAY_LOG_LEVEL="WARNING", GATEWAY_MAX_INFLIGHT="256")
        gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "gateway.main:create_app", "--factory", "--host",
                                    "127.0.0.1", "--port", str(ports[3]), "--no-access-log"], cwd=ROOT, env=env,
                                   stdout=open(logdir / "soak-gateway.log", "ab"), stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{ports[3]}"
        wait_http(f"{base}/readiness", 120, gateway)
        print(f"soak: {version}, {args.concurrency} clients for {args.minutes:g} min against {base}; "
              f"gateway pid {gateway.pid}, tritonserver pid {server.pid}")
        counters = {"ok": 0, "errors": 0}
        latencies: dict[str, list[float]] = {}
        rows: list[dict] = []
        seconds = args.minutes * 60
        t0 = time.monotonic()

        async def run() -> None:
            async def progress() -> None:
                while time.monotonic() - t0 < seconds:
                    await asyncio.sleep(30)
                    last = rows[-1] if rows else {}
                    print(f"soak: {time.monotonic() - t0:6.0f}s  ok {counters['ok']}  errors {counters['errors']}  "
                          f"gateway {last.get('gateway', 0):.0f} MB  triton total {last.get('triton_total', 0):.0f} MB",
                          flush=True)

            await asyncio.gather(
                load(base, args.concurrency, seconds, counters, random.Random(0), latencies),
                sampler({"gateway": gateway.pid, "tritonserver": server.pid}, server.pid, args.interval,
                        seconds, counters, rows, t0),
                progress())

        asyncio.run(run())
        rows.append({**rows[-1], "t_s": round(time.monotonic() - t0, 1), "ok": counters["ok"],
                     "errors": counters["errors"]})
    finally:
        stop(gateway)
        server.stop()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    info = {"utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "model": f"{version} (random init)", "routes": {k: v for k, v in counters.items() if k not in ("ok", "errors")},
            "command": " ".join([".venv/bin/python", "scripts/soak.py", *sys.argv[1:]])}
    table, cols = summarise(rows, args, info)
    table += latency_table(latencies)
    plot(rows, cols, args.png, f"Soak: RSS over time, {info['model']}, {args.concurrency} clients")
    args.md.write_text(table)
    print(table)
    print(f"soak: wrote {args.csv}, {args.png}, {args.md}")
    return 1 if counters["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
