#!/usr/bin/env python3
"""Soak: a bounded mixed load against gateway + Triton, sampling RSS of every process over time.

    .venv/bin/python scripts/soak.py [--minutes 10] [--concurrency 8] [--workers 2] [--version ViT-B-32 | --tiny]
                                     [--repository DIR] [--csv results/soak.csv] [--png docs/soak.png] [--md docs/soak.md]

Starts its own Triton (127.0.0.1, free ports) on the repository (exported with random weights if missing;
`--tiny` uses the test suite's tiny CLIP) and its own gateway, then runs a closed-loop mixed load
(embed_image 640x480 / 1280x720 / 1-4 images, embed_text unique and repeated prompts and lists, compare
with repeated class prompts; JPEG sizes mixed) with `--concurrency` workers for `--minutes`. Every
`--interval` seconds it samples, from /proc, the RSS, open file descriptors and threads of the gateway
(the `python -m gateway.serve` master and each of its `--workers` worker processes), tritonserver and each
Python-backend stub (the server's child processes), and the request counts. Writes the CSV, a PNG
(RSS per process + throughput over time) and a markdown summary (latency per route; first/last/peak
RSS, fds and threads, growth after warm-up and over the second half, the linear slope over the second
half; request and error counts). Stops its servers by PID.
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
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from procfs import children, cmdline, fds, rss_mb, threads, tree  # noqa: E402

from triton_clip.launch import start_gateway  # noqa: E402 - after the sys.path line (run as a script from a checkout)
from triton_clip.local import free_port  # noqa: E402 - after the sys.path line (run as a script from a checkout)


def stub_label(pid: int) -> str:
    """'stub:<model>' from the stub's command line (the backend passes the model path first)."""
    cmd = cmdline(pid)
    for part in cmd.split():
        if "/1/model.py" in part or part.endswith("model.py"):
            return "stub:" + Path(part).parent.parent.name
    return f"child:{pid}"


def jpegs() -> list[str]:
    from clipbench.payloads import photographic_jpeg

    sizes = [(640, 480), (640, 480), (1280, 720), (320, 240), (1920, 1080)]
    return [base64.b64encode(photographic_jpeg(w, h, seed)).decode() for seed, (w, h) in enumerate(sizes)]


CLASSES = [f"a photo of a {n}" for n in ("dog", "cat", "car", "bicycle", "person", "tree", "house", "boat",
                                          "airplane", "bird", "horse", "pizza", "laptop", "chair")]


async def load(base: str, concurrency: int, seconds: float, counters: dict, rng: random.Random,
               latencies: dict[str, list[float]]) -> None:
    """The mixed scenario: images of mixed sizes and counts, unique and listed texts, compare with class prompts."""
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


def processes(gateway_pid: int, triton_pid: int) -> dict[str, int]:
    """Every process of the service by a stable name: gateway (master), gateway-w<i> (workers), tritonserver."""
    named = {"gateway": gateway_pid, "tritonserver": triton_pid}
    workers = sorted(p for p in children(gateway_pid) if "spawn_main" in cmdline(p))
    named.update({f"gateway-w{i + 1}": pid for i, pid in enumerate(workers)})
    return named


async def sampler(gateway_pid: int, triton_pid: int, interval: float, seconds: float, counters: dict,
                  rows: list[dict], t0: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        row = {"t_s": round(time.monotonic() - t0, 1), "ok": counters["ok"], "errors": counters["errors"]}
        pids = processes(gateway_pid, triton_pid)
        for name, pid in pids.items():
            row[name] = round(rss_mb(pid), 1)
            row[f"fd:{name}"], row[f"threads:{name}"] = fds(pid), threads(pid)
        stubs = [p for p in tree(triton_pid) if p != triton_pid and "triton_python_backend_stub" in cmdline(p)]
        for p in stubs:
            row[stub_label(p)] = round(rss_mb(p), 1)
            row[f"threads:{stub_label(p)}"] = threads(p)
        row["triton_total"] = round(row["tritonserver"] + sum(rss_mb(p) for p in stubs), 1)
        rows.append(row)
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)


def _row(c: str, t: np.ndarray, v: np.ndarray, warm: np.ndarray, half: np.ndarray) -> str:
    vw, vh = v[warm], v[half]
    ok = half.sum() > 2 and not np.isnan(vh).any()
    slope = float(np.polyfit(t[half], vh, 1)[0] * 60) if ok else float("nan")
    growth = (vh[-1] - vh[0]) / vh[0] * 100 if ok and vh[0] else float("nan")
    return (f"| {c} | {v[0]:.0f} | {vw[0]:.0f} | {v[-1]:.0f} | {np.nanmax(v):.0f} | {vw[-1] - vw[0]:+.0f} "
            f"| {growth:+.1f} % | {slope:+.2f} |")


def latency_table(latencies: dict[str, list[float]]) -> list[str]:
    lines = ["| route | requests | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for route, values in sorted(latencies.items()):
        ms = np.array(values) * 1000
        lines.append(f"| {route} | {len(ms)} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} "
                     f"| {np.percentile(ms, 99):.1f} |")
    return lines


def summarise(rows: list[dict], args: argparse.Namespace, info: dict,
              latencies: dict[str, list[float]]) -> tuple[str, list[str]]:
    cols = list(dict.fromkeys(c for r in rows for c in r if c not in ("t_s", "ok", "errors")))
    t = np.array([r["t_s"] for r in rows])
    warm = t >= min(60.0, t[-1] / 5)  # growth after warm-up (first minute: allocators, caches fill)
    half = t >= t[-1] / 2
    head = "| {} | first | after warm-up | last | peak | growth after warm-up | growth 2nd half | slope 2nd half /min |"
    sep = "|---|---|---|---|---|---|---|---|"
    tables = {"RSS (MiB)": [c for c in cols if ":" not in c or c.startswith("stub:")],
              "open file descriptors": [c for c in cols if c.startswith("fd:")],
              "threads": [c for c in cols if c.startswith("threads:")]}
    lines: list[str] = []
    for title, names in tables.items():
        lines += ["", f"{title}:", "", head.format("process"), sep]
        lines += [_row(c, t, np.array([r.get(c, np.nan) for r in rows], dtype=float), warm, half) for c in names]
    last = rows[-1]
    total = last["ok"] + last["errors"]
    text = [f"Run: {info['utc']}, {args.minutes:g} min, {args.concurrency} concurrent clients, mixed scenario, model "
            f"{info['model']}, gateway workers {args.workers}, {total} requests ({last['ok'] / max(t[-1], 1):.2f} req/s), "
            f"{last['errors']} errors; by route: {json.dumps(info['routes'])}.", "",
            f"Command: `{info['command']}`", "", "Latency per route (successful requests):", "",
            *latency_table(latencies)]
    return "\n".join(text + lines) + "\n", tables["RSS (MiB)"]


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
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes (GATEWAY_WORKERS)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--version", default="ViT-B-32")
    parser.add_argument("--tiny", action="store_true", help="the test suite's tiny random CLIP (fast, small)")
    parser.add_argument("--repository", type=Path, default=None)
    out = ROOT / "results" / f"soak-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
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
        gateway = start_gateway(env, port=ports[3], workers=args.workers, log_file=logdir / "soak-gateway.log",
                                ready_timeout_s=120)
        base = gateway.base_url
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
                sampler(gateway.pid, server.pid, args.interval, seconds, counters, rows, t0),
                progress())

        asyncio.run(run())
        rows.append({**rows[-1], "t_s": round(time.monotonic() - t0, 1), "ok": counters["ok"],
                     "errors": counters["errors"]})
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    info = {"utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "model": f"{version} (random init)", "routes": {k: v for k, v in counters.items() if k not in ("ok", "errors")},
            "command": " ".join([".venv/bin/python", "scripts/soak.py", *sys.argv[1:]])}
    table, cols = summarise(rows, args, info, latencies)
    plot(rows, cols, args.png, f"Soak: RSS over time, {info['model']}, {args.concurrency} clients")
    args.md.write_text(table)
    print(table)
    print(f"soak: wrote {args.csv}, {args.png}, {args.md}")
    return 1 if counters["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
