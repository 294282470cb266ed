"""Side-by-side benchmark, one run, same cores: in-process TorchScript vs Triton gRPC vs gateway vs naive.

    .venv/bin/python scripts/bench.py [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]

1. the raw TorchScript towers in this process (2 torch threads) at batch 1/8/32 (the image ceiling is
   the best of them), the text tower at [B,16] and at [B,77];
2. Triton over gRPC directly (tritonclient.grpc.aio), single-item requests at concurrency 1/4/8/16/32/64;
3. the gateway over HTTP (httpx.AsyncClient) with real 640x480 JPEGs and real short prompts at 1/4/16/64;
4. the naive baseline (clipbench/naive.py: eager open_clip, one request at a time) at the same points,
   interleaved with the gateway point by point;
plus: text buckets [N,16] vs forced [N,77] (throughput and identity), gRPC vs system shared memory for
image tensors, the gateway's text-cache hit rate on a compare load with repeated class prompts, Triton's
average batch size and per-request time from its statistics (deltas per point), and the gateway overhead
at concurrency 1. Then --ab-rounds short interleaved rounds at saturation (in-process ceilings, Triton,
gateway, naive back to back), whose per-round ratios are the ones to trust on a noisy machine. Every
point is time-boxed (--seconds, --ab-seconds) and bounded (--max-requests); each point records the share
of the CPUs used by processes outside the benchmark ("others' CPU") so noisy points can be recognised.

The model repository is exported with random weights if missing (`--pretrained none`; fine for speed).
Servers listen on 127.0.0.1 only and are stopped by PID at the end. Results: results/bench-<UTC>/
(results.json, report.md, benchmarks.png, server logs); --docs DIR also copies the plot to DIR/benchmarks.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from clipbench.analysis import analyse
from clipbench.console import console
from clipbench.http_load import http_points, http_sender
from clipbench.inprocess import CEILINGS, InProcess
from clipbench.payloads import HttpBodies
from clipbench.plot import plot
from clipbench.report import load_json, print_summary, report, save_json
from clipbench.repos import ensure_exported
from clipbench.results import add_output_options, run_folder
from clipbench.servers import ROOT, Servers, machine_info
from clipbench.session import Session
from clipbench.shm import shm
from clipbench.triton_load import TritonPayloads, buckets, triton_direct
from clipbench.tritonstats import read_config
from triton_clip.versions import model_names

# op: (gateway, naive, triton) concurrency at saturation; 0 = not measured
AB_LEVELS = {"image": (16, 4, 32), "text": (64, 4, 64), "compare": (16, 4, 0)}


async def ab(session: Session, inproc: InProcess, triton: TritonPayloads, bodies: HttpBodies) -> None:
    """Short interleaved rounds at saturation, so each ratio compares adjacent time windows."""
    s, servers = session.args.ab_seconds, session.servers
    for r in range(session.args.ab_rounds):
        session.round = r
        inproc.run(label=f" ab{r}", cases=CEILINGS, seconds=s, min_calls=2)
        for op, (gc, nc, tc) in AB_LEVELS.items():
            for system, base, c in (("gateway", servers.gw_url, gc), ("naive", servers.naive_url, nc)):
                session.step(f"A/B round {r + 1}: {system} {op} c={c}")
                async with httpx.AsyncClient(
                    base_url=base, timeout=300, limits=httpx.Limits(max_connections=c)
                ) as client:
                    await session.measure(f"ab-{system}", op, c, http_sender(client, bodies, op), seconds=s)
                session.advance()
            if tc:
                session.step(f"A/B round {r + 1}: triton {op} c={tc}")
                await session.measure("ab-triton", op, tc, triton.sender(op), seconds=s)
                session.advance()
    session.round = None


async def served(session: Session, inproc: InProcess) -> None:
    """Everything that talks to the servers over the network, in one event loop."""
    import tritonclient.grpc.aio as aio

    session.aio = aio.InferenceServerClient(session.servers.grpc_url)
    try:
        triton = TritonPayloads(session)
        await triton_direct(session, triton)
        bodies = HttpBodies()
        await http_points(session, bodies)
        if not session.args.only_ab:
            await buckets(session, triton)
        await ab(session, inproc, triton, bodies)
    finally:
        await session.aio.close()


def total_points(args: argparse.Namespace) -> int:
    sweep = 7 + len(args.triton_levels) * 2 + len(args.http_levels) * 6 + 4 + 2 + 3
    return (0 if args.only_ab else sweep) + args.ab_rounds * 10


def run(args: argparse.Namespace, servers: Servers, points: list, extra: dict) -> None:
    """Start the servers, run every phase into `points` / `extra`, stop the servers whatever happens."""
    ensure_exported(args.version, servers.repo, args.model_config)
    extra["machine"] = machine_info()
    extra["config"] = {m: read_config(servers.repo, m) for m in model_names(args.version)}
    started = time.time()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting Triton, gateway and naive server", total=total_points(args))
        session = Session(args, servers, progress, task, points, extra)
        try:
            servers.start()
            inproc = InProcess(session)
            if not args.only_ab:
                inproc.run()
            asyncio.run(served(session, inproc))
            if not args.only_ab:
                shm(session)
                inproc.run(label=" repeat")
        finally:
            progress.update(task, description="stopping servers")
            servers.stop()
    extra["wall_s"] = round(time.time() - started, 1)
    extra["command"] = " ".join([".venv/bin/python", "scripts/bench.py", *sys.argv[1:]])
    extra["utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def render(folder: Path, points: list, extra: dict, a: dict, version: str, docs: Path | None) -> None:
    """report.md and benchmarks.png into `folder` (and the plot into `docs`)."""
    (folder / "report.md").write_text(report(points, extra, a))
    plot(points, a, folder / "benchmarks.png", version)
    if docs:
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "benchmarks.png", docs / "benchmarks.png")


def rerender(args: argparse.Namespace) -> int:
    """--from-json: the report and plot again from a stored results.json, without any load."""
    points, extra = load_json(args.from_json)
    extra["analysis"] = a = analyse(points)
    render(args.from_json.parent, points, extra, a, args.version, args.docs)
    console.print(f"re-rendered {args.from_json.parent / 'report.md'} and {args.from_json.parent / 'benchmarks.png'}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    levels = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    p.add_argument("--version", default="ViT-B-32", help="CLIP version id (exported as random init if missing)")
    p.add_argument("--repository", type=Path, default=ROOT / "results/bench/model_repository")
    p.add_argument(
        "--model-config",
        type=Path,
        action="append",
        default=[],
        help="extra open_clip model config JSON, e.g. tests/fixtures/clip-tiny.json (repeatable)",
    )
    p.add_argument("--seconds", type=float, default=12.0, help="time box of one load point")
    p.add_argument("--inproc-seconds", type=float, default=6.0, help="time box of one in-process point")
    p.add_argument("--max-requests", type=int, default=5000, help="request cap of one load point")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the in-process measurement")
    p.add_argument("--triton-levels", default="1,4,8,16,32,64", type=levels)
    p.add_argument("--http-levels", default="1,4,16,64", type=levels)
    p.add_argument("--bucket-concurrency", type=int, default=32)
    p.add_argument("--ab-rounds", type=int, default=2, help="final saturation rounds: in-process/Triton/gateway/naive")
    p.add_argument("--ab-seconds", type=float, default=8.0, help="time box of one A/B point")
    p.add_argument("--only-ab", action="store_true", help="skip the sweeps: only the A/B rounds")
    p.add_argument("--gateway-env", action="append", default=[], help="KEY=VALUE for the gateway (repeatable)")
    add_output_options(p, "benchmarks.png")
    args = p.parse_args(argv)
    args.gateway_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    return args


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit's deprecation notices, once per tower
    args = parse_args(argv)
    return rerender(args) if args.from_json else bench(args)


def bench(args: argparse.Namespace) -> int:
    """Run, then write results.json once (also when the run failed: the points so far, without analysis)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` blocks stop the servers
    args.out = run_folder(args.out, "bench")
    console.print(f"bench: {args.version}, results in {args.out}")
    servers = Servers(args.version, args.repository.resolve(), args.out, args.gateway_env, args.model_config)
    points: list = []
    extra: dict = {}
    try:
        run(args, servers, points, extra)
        extra["analysis"] = a = analyse(points)
    finally:
        save_json(args.out / "results.json", points, extra)
    render(args.out, points, extra, a, args.version, args.docs)
    print_summary(a)
    errors = sum(p.errors for p in points)
    console.print(f"report: {args.out / 'report.md'}; plot: {args.out / 'benchmarks.png'}; errors: {errors}")
    return 1 if errors else 0
