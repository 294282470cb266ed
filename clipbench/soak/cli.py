"""clip-soak: a bounded mixed load against gateway + Triton, sampling RSS, fds and threads of every process.

    clip-soak [--minutes 10] [--concurrency 8] [--workers 2] [--version ViT-B-32 | --tiny]
              [--repository DIR] [--csv results/soak.csv] [--png docs/soak.png] [--md docs/soak.md]

Starts its own Triton (127.0.0.1, free ports) on the repository (exported with random weights if missing;
`--tiny` uses the test suite's tiny CLIP) and its own gateway, then runs a closed-loop mixed load
(clipbench/soak/scenario.py) with `--concurrency` clients for `--minutes`. Every `--interval` seconds it
samples, from /proc, the RSS, open file descriptors and threads of the gateway (master and each worker),
tritonserver and each Python-backend stub, and the request counts. Writes the CSV, a PNG (RSS per process
+ throughput over time) and a markdown summary (latency per route; growth after warm-up and over the second
half). Stops its servers by PID; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

from clipbench.repos import RESULTS, TINY_VERSION, ensure_exported
from clipbench.soak.report import plot, summarise
from clipbench.soak.sampler import sampler
from clipbench.soak.scenario import load
from clipbench.stack import gateway_env, local_triton
from triton_clip.launch import start_gateway


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes (GATEWAY_WORKERS)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--version", default="ViT-B-32")
    parser.add_argument("--tiny", action="store_true", help="the test suite's tiny random CLIP (fast, small)")
    parser.add_argument("--repository", type=Path, default=None)
    out = RESULTS / f"soak-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    parser.add_argument("--csv", type=Path, default=out / "soak.csv")
    parser.add_argument("--png", type=Path, default=out / "soak.png")
    parser.add_argument("--md", type=Path, default=out / "soak.md")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 240:
        parser.error("--minutes must be in (0, 240]")
    if args.tiny:
        args.version = TINY_VERSION
    args.repository = args.repository or RESULTS / ("soak-tiny" if args.tiny else "bench") / "model_repository"
    return args


async def drive(
    base: str,
    gateway_pid: int,
    triton_pid: int,
    args: argparse.Namespace,
    counters: dict,
    latencies: dict,
    rows: list[dict],
) -> None:
    seconds, t0 = args.minutes * 60, time.monotonic()

    async def progress() -> None:
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(30)
            last = rows[-1] if rows else {}
            print(
                f"soak: {time.monotonic() - t0:6.0f}s  ok {counters['ok']}  errors {counters['errors']}  "
                f"gateway {last.get('gateway', 0):.0f} MB  triton total {last.get('triton_total', 0):.0f} MB",
                flush=True,
            )

    await asyncio.gather(
        load(base, args.concurrency, seconds, counters, random.Random(0), latencies),
        sampler(gateway_pid, triton_pid, args.interval, seconds, counters, rows, t0),
        progress(),
    )
    rows.append(
        {**rows[-1], "t_s": round(time.monotonic() - t0, 1), "ok": counters["ok"], "errors": counters["errors"]}
    )


def write_outputs(args: argparse.Namespace, rows: list[dict], counters: dict, latencies: dict) -> None:
    for p in (args.csv, args.png, args.md):
        p.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    run = {
        "utc": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "model": f"{args.version} (random init)",
        "routes": {k: v for k, v in counters.items() if k not in ("ok", "errors")},
        "command": " ".join(["clip-soak", *sys.argv[1:]]),
    }
    table = summarise(rows, run, latencies)
    plot(rows, args.png, f"Soak: RSS over time, {run['model']}, {args.concurrency} clients")
    args.md.write_text(table)
    print(table)
    print(f"soak: wrote {args.csv}, {args.png}, {args.md}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = ensure_exported(args.version, args.repository.resolve(), cpu_threads=os.cpu_count() or 1)
    logdir = args.csv.parent
    logdir.mkdir(parents=True, exist_ok=True)
    counters, latencies, rows = {"ok": 0, "errors": 0}, {}, []
    with local_triton(repo, logdir / "soak-tritonserver.log") as server:
        env = gateway_env(dict(os.environ), server, args.version, GATEWAY_MAX_INFLIGHT="256")
        gateway = start_gateway(env, workers=args.workers, log_file=logdir / "soak-gateway.log", ready_timeout_s=120)
        try:
            print(
                f"soak: {args.version}, {args.concurrency} clients for {args.minutes:g} min against "
                f"{gateway.base_url}; gateway pid {gateway.pid}, tritonserver pid {server.pid}"
            )
            asyncio.run(drive(gateway.base_url, gateway.pid, server.pid, args, counters, latencies, rows))
        finally:
            gateway.stop()
    write_outputs(args, rows, counters, latencies)
    return 1 if counters["errors"] else 0
