#!/usr/bin/env python3
"""Side-by-side benchmark, one run, same cores: in-process TorchScript vs Triton gRPC vs gateway vs naive.

    .venv/bin/python scripts/bench.py [--version ViT-B-32] [--repository DIR] [--seconds 12] [--docs docs]

1. the raw TorchScript towers in this process (2 torch threads) at batch 1/8/32 (the image ceiling is
   the best of them), the text tower at [B,16] and at [B,77];
2. Triton over gRPC directly (tritonclient.grpc.aio), single-item requests at concurrency 1/4/8/16/32/64;
3. the gateway over HTTP (httpx.AsyncClient) with real 640x480 JPEGs and real short prompts at 1/4/16/64;
4. the naive baseline (scripts/naive_server.py: eager open_clip, one request at a time) at the same points,
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
import base64
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
warnings.filterwarnings("ignore", category=FutureWarning)

from rich.console import Console  # noqa: E402
from triton_clip.launch import start_gateway  # noqa: E402
from triton_clip.local import free_port, stop_process, wait_http  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

console = Console()
IMAGE_IN, IMAGE_OUT = "pixel_values__0", "image_embeds__0"
TEXT_IN, TEXT_OUT = "input_ids__0", "text_embeds__0"
NOUNS = ("dog", "cat", "car", "bicycle", "person", "tree", "house", "boat", "airplane", "bird", "horse", "pizza",
         "laptop", "chair", "bottle", "clock", "flower", "mountain", "beach", "street")
ADJ = ("red", "small", "large", "old", "shiny", "blurry", "dark", "bright", "wet", "wooden")
CLASS_PROMPTS = [f"a photo of a {n}" for n in NOUNS]


# ---------------------------------------------------------------------------------------------- data
def jpeg_640x480(seed: int) -> bytes:
    from bench_decode import photographic_jpeg  # the decode benchmark's photo generator (skimage sample)

    return photographic_jpeg(640, 480, seed)


def unique_prompt(i: int) -> str:
    """Short (<= 16 tokens with SOT/EOT), never repeated: the gateway's LRU cannot help."""
    return f"a photo of a {ADJ[i % len(ADJ)]} {NOUNS[(i // len(ADJ)) % len(NOUNS)]} {i}"


# ---------------------------------------------------------------------------------------------- load
@dataclass
class Point:
    system: str          # inprocess | triton | gateway | naive | ...
    op: str              # image | text | compare | text16 | text77 ...
    concurrency: int     # or batch size for in-process points
    requests: int = 0
    errors: int = 0
    items: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    triton: dict = field(default_factory=dict)   # per-model statistics deltas
    extra: dict = field(default_factory=dict)


def summarise(point: Point, latencies: list[float], elapsed: float, items_per_request: int = 1) -> Point:
    point.requests = len(latencies)
    point.items = len(latencies) * items_per_request
    point.seconds = round(elapsed, 3)
    if latencies:
        ms = np.array(latencies) * 1000
        point.p50_ms, point.p95_ms, point.p99_ms = (float(np.percentile(ms, q)) for q in (50, 95, 99))
        point.mean_ms = float(ms.mean())
        point.rps = len(latencies) / elapsed
        point.items_per_s = point.items / elapsed
    return point


async def closed_loop(send: Callable[[int], Awaitable[None]], concurrency: int, seconds: float,
                      max_requests: int) -> tuple[list[float], int, float]:
    """`concurrency` workers send back-to-back until the time box or the request cap; in-flight ones finish."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        nonlocal issued, errors
        while time.perf_counter() < deadline and issued < max_requests:
            i = issued
            issued += 1
            t0 = time.perf_counter()
            try:
                await send(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                if errors <= 3:
                    console.print(f"[red]request error: {type(exc).__name__}: {str(exc)[:200]}[/]")
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- triton
def _int(x: object) -> int:
    return int(x or 0)


async def triton_stats(client, models: list[str]) -> dict[str, dict]:  # noqa: ANN001
    out = {}
    for m in models:
        s = (await client.get_inference_statistics(m, as_json=True))["model_stats"][0]
        inf = s.get("inference_stats", {})
        row = {"inference_count": _int(s.get("inference_count")), "execution_count": _int(s.get("execution_count"))}
        for k in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
            row[f"{k}_count"] = _int(inf.get(k, {}).get("count"))
            row[f"{k}_ns"] = _int(inf.get(k, {}).get("ns"))
        out[m] = row
    return out


def stats_delta(before: dict, after: dict) -> dict[str, dict]:
    out = {}
    for m in after:
        d = {k: after[m][k] - before[m].get(k, 0) for k in after[m]}
        n = d["success_count"]
        if not n:
            continue
        out[m] = {
            "requests": n, "inferences": d["inference_count"], "executions": d["execution_count"],
            "avg_batch": round(d["inference_count"] / max(d["execution_count"], 1), 2),
            "request_ms": round(d["success_ns"] / n / 1e6, 2),
            "queue_ms": round(d["queue_ns"] / n / 1e6, 2),
            "compute_ms": round((d["compute_input_ns"] + d["compute_infer_ns"] + d["compute_output_ns"]) / n / 1e6, 2),
        }
    return out


# ---------------------------------------------------------------------------------------------- noise
def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # all but idle and iowait


def _tree_jiffies(roots: list[int]) -> int:
    """utime+stime of the given processes and all their descendants (children of ours included)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
            except (OSError, IndexError, ValueError):
                pass
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total


class Noise:
    """Share of the machine's CPUs used by processes that are not ours during a point (other users)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.t0, self.busy0, self.ours0 = time.monotonic(), _busy_jiffies(), _tree_jiffies(roots)

    def others_share(self) -> float:
        hz, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
        elapsed = max(time.monotonic() - self.t0, 1e-3)
        others = (_busy_jiffies() - self.busy0) - (_tree_jiffies(self.roots) - self.ours0)
        return max(0.0, others / hz / elapsed / ncpu)


# ---------------------------------------------------------------------------------------------- processes
def stop(proc: subprocess.Popen | None) -> None:
    stop_process(proc, 15.0)


def read_config(repo: Path, model: str) -> dict[str, str]:
    text = (repo / model / "config.pbtxt").read_text()
    out = {"max_batch_size": re.search(r"max_batch_size: (\d+)", text).group(1),
           "queue_delay_us": re.search(r"max_queue_delay_microseconds: (\d+)", text).group(1),
           "instances": re.search(r"count: (\d+)", text).group(1)}
    m = re.search(r'key: "num_threads" value \{ string_value: "(\d+)"', text)
    out["num_threads"] = m.group(1) if m else "?"
    return out


def machine_info() -> dict[str, str]:
    import torch

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from triton_clip.server import PYTRITON_VERSION

    return {"cpu": cpu, "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
            "mem": next((ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), "?") + " kB",
            "torch": torch.__version__, "python": platform.python_version(),
            "triton": f"tritonserver 2.51.0 (nvidia-pytriton {PYTRITON_VERSION})",
            "kernel": platform.release()}


# ---------------------------------------------------------------------------------------------- benchmark
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.version = args.version
        self.repo = args.repository.resolve()
        self.out = args.out
        self.points: list[Point] = []
        self.extra: dict = {}
        self.image_model, self.text_model = f"clip-{self.version}-image", f"clip-{self.version}-text"
        self.procs: list[subprocess.Popen] = []
        self.triton = None

    # --- setup -------------------------------------------------------------------------------
    def ensure_exported(self) -> None:
        from triton_clip.export import is_exported

        if is_exported(self.version, self.repo, "cpu"):
            return
        console.print(f"exporting {self.version} (random weights) into {self.repo}")
        subprocess.run([sys.executable, str(ROOT / "scripts/export.py"), "--versions", self.version, "--pretrained",
                        "none", "--repository", str(self.repo), "--target", "cpu"], check=True)

    def start_servers(self) -> None:
        from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

        install(DEFAULT_HOME)
        self.ports = {k: free_port() for k in ("http", "grpc", "metrics", "gateway", "naive")}
        opts = TritonOptions(self.repo, "127.0.0.1", self.ports["http"], self.ports["grpc"], self.ports["metrics"])
        self.triton = TritonProcess(opts, log_file=self.out / "tritonserver.log")
        env = dict(os.environ, GATEWAY_TRITON_URL=f"127.0.0.1:{self.ports['grpc']}", CLIP_VERSION_ID=self.version,
                   GATEWAY_MAX_INFLIGHT="512", **self.args.gateway_env)
        gw = start_gateway(env, port=self.ports["gateway"], log_file=self.out / "gateway.log", ready_timeout_s=None).proc
        naive = subprocess.Popen([sys.executable, str(ROOT / "scripts/naive_server.py"), "--version", self.version,
                                  "--pretrained", "none", "--port", str(self.ports["naive"])], cwd=ROOT,
                                 stdout=open(self.out / "naive.log", "ab"), stderr=subprocess.STDOUT)
        self.procs = [gw, naive]
        self.gateway_pid, self.naive_pid = gw.pid, naive.pid
        self.triton.wait_ready(300)
        wait_http(f"http://127.0.0.1:{self.ports['gateway']}/readiness", 120, gw)
        wait_http(f"http://127.0.0.1:{self.ports['naive']}/healthz", 180, naive)
        self.gw_url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.naive_url = f"http://127.0.0.1:{self.ports['naive']}"
        self.grpc_url = f"127.0.0.1:{self.ports['grpc']}"

    def stop_servers(self) -> None:
        for p in self.procs:
            stop(p)
        if self.triton is not None:
            self.triton.stop()

    # --- 1. in-process -------------------------------------------------------------------------
    def inprocess(self, progress, task, label: str = "", cases: list | None = None,  # noqa: ANN001
                  seconds: float | None = None, min_calls: int = 4) -> None:
        import torch

        torch.set_num_threads(self.args.threads)
        if not hasattr(self, "_modules"):
            self._modules = {t: torch.jit.load(str(self.repo / m / "1" / "model.pt"), map_location="cpu").eval()
                             for t, m in (("image", self.image_model), ("text", self.text_model))}
        size = int(re.search(r"image_size\" value \{ string_value: \"(\d+)", (self.repo / self.image_model /
                                                                              "config.pbtxt").read_text()).group(1))
        gen = torch.Generator().manual_seed(0)
        cases_given = cases
        cases = [("image", b, None) for b in (1, 8, 32)] + [("text16", b, 16) for b in (1, 8, 32)] + [("text77", 32, 77)]
        if label == " repeat":  # the repeat at the end: only the ceiling and the text points the ratios use
            cases = [("image", 32, None), ("text16", 32, 16), ("text77", 32, 77)]
        for op, batch, length in cases_given or cases:
            progress.update(task, description=f"in-process {op} batch {batch}{label}")
            if op == "image":
                x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
                module = self._modules["image"]
            else:
                x = torch.randint(1, 49000, (batch, length), generator=gen)
                x[:, -1] = 49407
                module = self._modules["text"]
            noise = Noise(self.roots())
            with torch.inference_mode():
                module(x)  # warm: the TorchScript profiling executor specialises on the first calls per shape
                module(x)
                lat, start = [], time.perf_counter()
                while time.perf_counter() - start < (seconds or self.args.inproc_seconds) or len(lat) < min_calls:
                    t0 = time.perf_counter()
                    module(x)
                    lat.append(time.perf_counter() - t0)
                    if len(lat) >= 500:
                        break
            p = summarise(Point("inprocess" + label.replace(" ", "_"), op, batch), lat,
                          time.perf_counter() - start, batch)
            p.extra["others_cpu"] = round(noise.others_share(), 3)
            self.record(p)
            progress.advance(task)

    # --- 2. triton gRPC direct -------------------------------------------------------------------
    async def triton_direct(self, progress, task) -> None:  # noqa: ANN001
        from tritonclient.grpc import InferInput, InferRequestedOutput

        from gateway.text.tokenize import ClipTokenizer

        client = self._aio
        tok = ClipTokenizer()
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (1, 3, 224, 224), dtype=np.uint8) for _ in range(8)]
        ids16 = tok.batch([unique_prompt(i) for i in range(256)], truncate=False, buckets=(16, 32, 77))
        assert ids16.shape[1] == 16, ids16.shape

        def make_send(op: str, arrays: list[np.ndarray]) -> Callable[[int], Awaitable[None]]:
            model, iname, oname, dtype = ((self.image_model, IMAGE_IN, IMAGE_OUT, "UINT8") if op == "image"
                                          else (self.text_model, TEXT_IN, TEXT_OUT, "INT64"))

            async def send(i: int) -> None:
                arr = arrays[i % len(arrays)]
                inp = InferInput(iname, list(arr.shape), dtype)
                inp.set_data_from_numpy(arr)
                res = await client.infer(model, [inp], outputs=[InferRequestedOutput(oname)], client_timeout=120)
                assert res.as_numpy(oname).shape[0] == arr.shape[0]
            return send

        self._triton_send = make_send
        texts16 = [ids16[i : i + 1] for i in range(256)]
        self._triton_arrays = {"image": images, "text": texts16}
        for c in [] if self.args.only_ab else self.args.triton_levels:
            for op, arrays in (("image", images), ("text", texts16)):
                progress.update(task, description=f"triton gRPC {op} c={c}")
                await self.measure("triton", op, c, make_send(op, arrays))
                progress.advance(task)

    async def measure(self, system: str, op: str, c: int, send, items: int = 1, seconds: float | None = None,  # noqa: ANN001
                      max_requests: int | None = None) -> Point:
        models = [self.image_model, self.text_model]
        before = await triton_stats(self._aio, models)
        noise = Noise(self.roots())
        lat, errors, elapsed = await closed_loop(send, c, seconds or self.args.seconds,
                                                 max_requests or self.args.max_requests)
        after = await triton_stats(self._aio, models)
        p = summarise(Point(system, op, c), lat, elapsed, items)
        p.extra["others_cpu"] = round(noise.others_share(), 3)
        p.errors = errors
        p.triton = stats_delta(before, after)
        self.record(p)
        return p

    def roots(self) -> list[int]:
        return [os.getpid()] + [pr.pid for pr in self.procs] + ([self.triton.pid] if self.triton else [])

    def record(self, p: Point) -> None:
        if getattr(self, "_round", None) is not None:
            p.extra["round"] = self._round
        p.extra["loadavg_1m"] = float(open("/proc/loadavg").read().split()[0])
        self.points.append(p)
        tri = "; ".join(f"{m.rsplit('-', 1)[-1]}: batch {d['avg_batch']}, {d['request_ms']} ms/req"
                        for m, d in p.triton.items())
        unit = "b" if p.system.startswith("inprocess") else "c"
        console.print(f"  {p.system:<10} {p.op:<8} {unit}={p.concurrency:<3} {p.items_per_s:8.2f} items/s "
                      f"p50 {p.p50_ms:8.1f} p95 {p.p95_ms:8.1f} p99 {p.p99_ms:8.1f} ms  n={p.requests}"
                      f"{' ERR=' + str(p.errors) if p.errors else ''}  load {p.extra['loadavg_1m']:.1f} others {p.extra.get('others_cpu', 0):.0%}  {tri}")

    # --- 3 + 4. gateway and naive over HTTP, interleaved -------------------------------------------
    async def http_points(self, progress, task) -> None:  # noqa: ANN001
        import httpx

        jpegs = [base64.b64encode(jpeg_640x480(s)).decode() for s in range(8)]
        image_bodies = [json.dumps({"image": {"type": "base64", "value": j}}).encode() for j in jpegs]
        counter = {"text": 0}
        rng = np.random.default_rng(1)
        compare_bodies = []
        for i in range(64):
            prompts = [CLASS_PROMPTS[k] for k in rng.choice(len(CLASS_PROMPTS), 4, replace=False)]
            compare_bodies.append(json.dumps({"subject": {"type": "base64", "value": jpegs[i % len(jpegs)]},
                                              "subject_type": "image", "prompt": prompts,
                                              "prompt_type": "text"}).encode())
        headers = {"content-type": "application/json"}

        def make_send(client: httpx.AsyncClient, route: str, op: str) -> Callable[[int], Awaitable[None]]:
            async def send(i: int) -> None:
                if op == "image":
                    body = image_bodies[i % len(image_bodies)]
                elif op == "text":
                    counter["text"] += 1
                    body = json.dumps({"text": unique_prompt(100_000 + counter["text"])}).encode()
                else:
                    body = compare_bodies[i % len(compare_bodies)]
                r = await client.post(route, content=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                r.read()
            return send

        routes = {"image": "/clip/embed_image", "text": "/clip/embed_text", "compare": "/clip/compare"}
        self._http_make_send, self._routes = make_send, routes
        # warm both servers on every route (first calls allocate, JIT-optimise, fill the tokenizer caches)
        for base in (self.gw_url, self.naive_url):
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                for op, route in routes.items():
                    for i in range(3):
                        await make_send(client, route, op)(i)
        cache0 = await self.gateway_cache()
        for c in [] if self.args.only_ab else self.args.http_levels:
            limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
            for op, route in routes.items():
                for system, base in (("gateway", self.gw_url), ("naive", self.naive_url)):
                    progress.update(task, description=f"{system} {op} c={c}")
                    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
                        if system == "gateway":
                            before, hist0 = await self.gateway_cache(), await self.gateway_histograms()
                        p = await self.measure(system, op, c, make_send(client, route, op))
                        if system == "gateway":
                            after, hist1 = await self.gateway_cache(), await self.gateway_histograms()
                            p.extra["cache"] = {k: after[k] - before[k] for k in after}
                            d = {k: hist1[k] - hist0.get(k, 0.0) for k in hist1}
                            p.extra["gateway_ms"] = {
                                name.split(":")[1] if name.startswith("stage") else "request":
                                round(d[name] / d[name.replace(":sum", ":count")] * 1000, 2)
                                for name in d if name.endswith(":sum") and d.get(name.replace(":sum", ":count"))
                                and (name.startswith("stage") or name == f"request:{route}:sum")}
                    progress.advance(task)
        cache1 = await self.gateway_cache()
        total = {k: cache1[k] - cache0[k] for k in cache1}
        self.extra["cache_all_http"] = total

    async def gateway_histograms(self) -> dict[str, float]:
        """Sums and counts of the gateway's own request and stage histograms (seconds)."""
        import httpx

        async with httpx.AsyncClient(base_url=self.gw_url, timeout=10) as client:
            text = (await client.get("/metrics")).text
        out = {}
        for m in re.finditer(r'^clip_gateway_(request|stage)_seconds_(sum|count)\{(?:route|stage)="([^"]+)"\} ([0-9.e+-]+)$',
                             text, re.M):
            out[f"{m.group(1)}:{m.group(3)}:{m.group(2)}"] = float(m.group(4))
        return out

    async def gateway_cache(self) -> dict[str, float]:
        import httpx

        async with httpx.AsyncClient(base_url=self.gw_url, timeout=10) as client:
            text = (await client.get("/metrics")).text
        out = {}
        for key in ("clip_gateway_text_cache_hits_total", "clip_gateway_text_cache_misses_total"):
            m = re.search(rf"^{key} ([0-9.e+]+)$", text, re.M)
            out[key.split("_")[-2]] = float(m.group(1)) if m else 0.0
        return out

    # --- saturation A/B rounds ----------------------------------------------------------------------
    async def ab(self, progress, task) -> None:  # noqa: ANN001
        """Short interleaved rounds at saturation, so each ratio compares adjacent time windows."""
        import httpx

        s = self.args.ab_seconds
        for r in range(self.args.ab_rounds):
            self._round = r
            self.inprocess(progress, task, label=f" ab{r}", cases=[("image", 32, None), ("text16", 32, 16)],
                           seconds=s, min_calls=2)
            for op, gc, nc, tc in (("image", 16, 4, 32), ("text", 64, 4, 64), ("compare", 16, 4, 0)):
                for system, base, c in (("gateway", self.gw_url, gc), ("naive", self.naive_url, nc)):
                    progress.update(task, description=f"A/B round {r + 1}: {system} {op} c={c}")
                    async with httpx.AsyncClient(base_url=base, timeout=300,
                                                 limits=httpx.Limits(max_connections=c)) as client:
                        await self.measure(f"ab-{system}", op, c, self._http_make_send(client, self._routes[op], op),
                                           seconds=s)
                    progress.advance(task)
                if tc:
                    progress.update(task, description=f"A/B round {r + 1}: triton {op} c={tc}")
                    await self.measure("ab-triton", op, tc, self._triton_send(op, self._triton_arrays[op]), seconds=s)
                    progress.advance(task)
        self._round = None

    # --- text buckets ------------------------------------------------------------------------------
    async def buckets(self, progress, task) -> None:  # noqa: ANN001
        from tritonclient.grpc import InferInput, InferRequestedOutput

        from gateway.text.tokenize import ClipTokenizer

        tok = ClipTokenizer()
        prompts = [unique_prompt(500 + i) for i in range(32)]
        ids16 = tok.batch(prompts, truncate=False, buckets=(16, 32, 77))
        ids77 = tok.batch(prompts, truncate=False, buckets=(77,))
        assert ids16.shape == (32, 16) and ids77.shape == (32, 77)

        async def run(ids: np.ndarray) -> np.ndarray:
            inp = InferInput(TEXT_IN, list(ids.shape), "INT64")
            inp.set_data_from_numpy(ids)
            res = await self._aio.infer(self.text_model, [inp], outputs=[InferRequestedOutput(TEXT_OUT)])
            return res.as_numpy(TEXT_OUT)

        e16, e77 = await run(ids16), await run(ids77)
        cos = (e16 * e77).sum(1) / np.linalg.norm(e16, axis=1) / np.linalg.norm(e77, axis=1)
        self.extra["bucket_identity"] = {"max_abs_diff": float(np.abs(e16 - e77).max()),
                                         "min_cosine": float(cos.min()), "prompts": len(prompts),
                                         "bit_identical": bool(np.array_equal(e16, e77))}
        c = self.args.bucket_concurrency
        rows16 = [ids16[i : i + 1] for i in range(32)]
        rows77 = [ids77[i : i + 1] for i in range(32)]
        for rep in range(2):  # interleaved A/B/A/B
            for op, rows in (("text16", rows16), ("text77", rows77)):
                progress.update(task, description=f"triton {op} c={c} (round {rep + 1})")
                await self.measure("triton-bucket", op, c, self._triton_send("text", rows),
                                   seconds=self.args.seconds / 2)
                progress.advance(task)

    # --- system shared memory vs gRPC ---------------------------------------------------------------
    def shm(self, progress, task) -> None:  # noqa: ANN001
        import tritonclient.grpc as grpc_sync
        import tritonclient.utils.shared_memory as shm
        from tritonclient.grpc import InferInput, InferRequestedOutput

        client = grpc_sync.InferenceServerClient(self.grpc_url)
        rng = np.random.default_rng(2)
        results = {}
        for batch, blocks, per_block in ((1, 4, 5), (8, 2, 2)):
            arr = rng.integers(0, 256, (batch, 3, 224, 224), dtype=np.uint8)
            key = f"/bench_shm_{os.getpid()}_{batch}"
            handle = shm.create_shared_memory_region(f"in{batch}", key, arr.nbytes)
            client.register_system_shared_memory(f"in{batch}", key, arr.nbytes)
            try:
                def call(mode: str) -> float:
                    t0 = time.perf_counter()
                    inp = InferInput(IMAGE_IN, list(arr.shape), "UINT8")
                    if mode == "shm":
                        shm.set_shared_memory_region(handle, [arr])  # the copy the gateway would make
                        inp.set_shared_memory(f"in{batch}", arr.nbytes)
                    else:
                        inp.set_data_from_numpy(arr)
                    out = client.infer(self.image_model, [inp], outputs=[InferRequestedOutput(IMAGE_OUT)])
                    assert out.as_numpy(IMAGE_OUT).shape == (batch, 512) or out.as_numpy(IMAGE_OUT).shape[0] == batch
                    return time.perf_counter() - t0

                call("grpc"), call("shm")  # warm
                lat = {"grpc": [], "shm": []}
                server_ms = {"grpc": [], "shm": []}
                for _ in range(blocks):
                    for mode in ("grpc", "shm"):
                        progress.update(task, description=f"shm micro-benchmark batch {batch}: {mode}")
                        before = client.get_inference_statistics(self.image_model, as_json=True)["model_stats"][0]
                        block = [call(mode) for _ in range(per_block)]
                        after = client.get_inference_statistics(self.image_model, as_json=True)["model_stats"][0]
                        lat[mode] += block
                        n = _int(after["inference_stats"]["success"]["count"]) - _int(before["inference_stats"]["success"]["count"])
                        ns = _int(after["inference_stats"]["success"]["ns"]) - _int(before["inference_stats"]["success"]["ns"])
                        server_ms[mode].append(ns / max(n, 1) / 1e6)
                # client-side cost = client latency - server request time (compute dominates both)
                results[f"batch{batch}"] = {
                    mode: {"n": len(lat[mode]), "p50_ms": round(statistics.median(lat[mode]) * 1000, 2),
                           "mean_ms": round(statistics.mean(lat[mode]) * 1000, 2),
                           "server_ms": round(statistics.mean(server_ms[mode]), 2),
                           "client_overhead_ms": round(statistics.mean(lat[mode]) * 1000 - statistics.mean(server_ms[mode]), 2)}
                    for mode in lat}
                results[f"batch{batch}"]["bytes"] = int(arr.nbytes)
            finally:
                client.unregister_system_shared_memory(f"in{batch}")
                shm.destroy_shared_memory_region(handle)
            progress.advance(task)
        client.close()
        results["client_prep_us"] = self.shm_prep_cost()
        self.extra["shm"] = results
        console.print(f"  shm: {json.dumps(results)}")

    def shm_prep_cost(self, reps: int = 300) -> dict:
        """What differs between the two paths on the client, without the model: building the request.

        gRPC: the tensor is copied into the protobuf request and serialised (then framed by HTTP/2 and
        parsed by the server). shm: the tensor is copied into the mapped region; the request carries a
        region name and offset. Median of `reps` interleaved repetitions, microseconds.
        """
        import tritonclient.utils.shared_memory as shm
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.grpc._utils import _get_inference_request

        out = {}
        for batch in (1, 8):
            arr = np.random.default_rng(3).integers(0, 256, (batch, 3, 224, 224), dtype=np.uint8)
            key = f"/bench_prep_{os.getpid()}_{batch}"
            handle = shm.create_shared_memory_region(f"prep{batch}", key, arr.nbytes)
            times = {"grpc": [], "shm": []}
            try:
                for _ in range(reps):
                    for mode in ("grpc", "shm"):
                        t0 = time.perf_counter()
                        inp = InferInput(IMAGE_IN, list(arr.shape), "UINT8")
                        if mode == "shm":
                            shm.set_shared_memory_region(handle, [arr])
                            inp.set_shared_memory(f"prep{batch}", arr.nbytes)
                        else:
                            inp.set_data_from_numpy(arr)
                        req = _get_inference_request(self.image_model, [inp], "", "", [InferRequestedOutput(IMAGE_OUT)],
                                                     0, False, False, 0, None, None)
                        req.SerializeToString()
                        times[mode].append(time.perf_counter() - t0)
            finally:
                shm.destroy_shared_memory_region(handle)
            out[f"batch{batch}"] = {m: round(statistics.median(v) * 1e6, 1) for m, v in times.items()}
        return out

    # --- run -----------------------------------------------------------------------------------------
    async def run_async(self, progress, task) -> None:  # noqa: ANN001
        import tritonclient.grpc.aio as aio

        self._aio = aio.InferenceServerClient(self.grpc_url)
        await self.triton_direct(progress, task)
        await self.http_points(progress, task)
        if not self.args.only_ab:
            await self.buckets(progress, task)
        await self.ab(progress, task)
        await self._aio.close()

    def run(self) -> None:
        args = self.args
        n_points = (7 + len(args.triton_levels) * 2 + len(args.http_levels) * 6 + 4 + 2 + 3)
        if args.only_ab:
            n_points = 0
        n_points += args.ab_rounds * 10
        self.ensure_exported()
        self.extra["machine"] = machine_info()
        self.extra["config"] = {m: read_config(self.repo, m) for m in (self.image_model, self.text_model)}
        started = time.time()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            task = progress.add_task("starting Triton, gateway and naive server", total=n_points)
            try:
                self.start_servers()
                if not args.only_ab:
                    self.inprocess(progress, task)
                asyncio.run(self.run_async(progress, task))
                if not args.only_ab:
                    self.shm(progress, task)
                    self.inprocess(progress, task, label=" repeat")
            finally:
                progress.update(task, description="stopping servers")
                self.stop_servers()
        self.extra["wall_s"] = round(time.time() - started, 1)
        self.extra["command"] = " ".join([".venv/bin/python", "scripts/bench.py", *sys.argv[1:]])
        self.extra["utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------------------------------- report
def find(points: list[Point], system: str, op: str, c: int | None = None) -> list[Point]:
    return [p for p in points if p.system == system and p.op == op and (c is None or p.concurrency == c)]


def best(points: list[Point], system: str, op: str) -> Point | None:
    cands = find(points, system, op)
    return max(cands, key=lambda p: p.items_per_s) if cands else None


def analyse(points: list[Point], extra: dict) -> dict:
    a: dict = {}
    ceil = [p for p in points if p.system.startswith("inprocess") and p.op == "image"]
    a["image_ceiling"] = max(p.items_per_s for p in ceil)
    a["image_ceiling_batch"] = max(ceil, key=lambda p: p.items_per_s).concurrency
    t16 = [p for p in points if p.system.startswith("inprocess") and p.op == "text16"]
    a["text_ceiling"] = max(p.items_per_s for p in t16)
    for op in ("image", "text", "compare"):
        g, n, t = best(points, "gateway", op), best(points, "naive", op), best(points, "triton", op)
        a[f"gateway_{op}_sat"] = g.items_per_s if g else 0
        a[f"gateway_{op}_sat_c"] = g.concurrency if g else 0
        a[f"naive_{op}_sat"] = n.items_per_s if n else 0
        a[f"triton_{op}_sat"] = t.items_per_s if t else 0
        a[f"gateway_vs_naive_{op}"] = (g.items_per_s / n.items_per_s) if g and n and n.items_per_s else 0
    a["gateway_image_vs_ceiling"] = a["gateway_image_sat"] / a["image_ceiling"]
    a["gateway_image_vs_triton"] = a["gateway_image_sat"] / max(a["triton_image_sat"], 1e-9)
    a["gateway_text_vs_ceiling"] = a["gateway_text_sat"] / a["text_ceiling"]
    a["gateway_text_vs_triton"] = a["gateway_text_sat"] / max(a["triton_text_sat"], 1e-9)
    for op, model in (("image", "image"), ("text", "text")):
        g1 = find(points, "gateway", op, 1)
        if g1 and g1[0].triton:
            d = next((v for k, v in g1[0].triton.items() if k.endswith(model)), None)
            if d:
                a[f"overhead_{op}_p50_ms"] = g1[0].p50_ms - d["request_ms"]
                a[f"overhead_{op}_mean_ms"] = g1[0].mean_ms - d["request_ms"]
                a[f"triton_{op}_request_ms_c1"] = d["request_ms"]
            gm = g1[0].extra.get("gateway_ms", {})
            if "request" in gm and "triton" in gm:
                a[f"gateway_internal_{op}_ms_c1"] = gm["request"] - gm["triton"]
                for stage in ("decode", "tokenize"):
                    if stage in gm:
                        a[f"gateway_{stage}_{op}_ms_c1"] = gm[stage]
        t1 = find(points, "triton", op, 1)
        if t1 and t1[0].triton:
            d = next(iter(t1[0].triton.values()))
            a[f"grpc_client_{op}_p50_ms_c1"] = t1[0].p50_ms - d["request_ms"]
    rounds = sorted({p.extra["round"] for p in points if "round" in p.extra})
    per_round = []
    for r in rounds:
        rp = [p for p in points if p.extra.get("round") == r]

        def get(system: str, op: str, rp: list = rp) -> float:
            return next((p.items_per_s for p in rp if p.system.startswith(system) and p.op == op), float("nan"))

        row = {"round": r, "ceiling_image": get("inprocess", "image"), "ceiling_text16": get("inprocess", "text16")}
        for op in ("image", "text", "compare"):
            row[f"gateway_{op}"], row[f"naive_{op}"] = get("ab-gateway", op), get("ab-naive", op)
            row[f"triton_{op}"] = get("ab-triton", op)
            row[f"gateway/naive_{op}"] = row[f"gateway_{op}"] / row[f"naive_{op}"]
        row["gateway/ceiling_image"] = row["gateway_image"] / row["ceiling_image"]
        row["gateway/triton_image"] = row["gateway_image"] / row["triton_image"]
        row["gateway/ceiling_text16"] = row["gateway_text"] / row["ceiling_text16"]
        per_round.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    if per_round:
        a["ab_rounds"] = per_round
        for k in ("gateway/ceiling_image", "gateway/triton_image", "gateway/naive_image", "gateway/naive_text",
                  "gateway/naive_compare", "gateway/ceiling_text16"):
            a[f"ab_median {k}"] = float(np.median([row[k] for row in per_round]))
    b16, b77 = find(points, "triton-bucket", "text16"), find(points, "triton-bucket", "text77")
    if b16 and b77:
        a["bucket_ratio_triton"] = statistics.mean(p.items_per_s for p in b16) / statistics.mean(p.items_per_s for p in b77)
    i16 = [p for p in points if p.system.startswith("inprocess") and p.op == "text16" and p.concurrency == 32]
    i77 = [p for p in points if p.system.startswith("inprocess") and p.op == "text77"]
    if i16 and i77:
        a["bucket_ratio_inprocess_b32"] = statistics.mean(p.items_per_s for p in i16) / statistics.mean(p.items_per_s for p in i77)
    return a


def fmt_row(p: Point) -> str:
    tri = "; ".join(f"{m.rsplit('-', 1)[-1]} b̄={d['avg_batch']} {d['request_ms']} ms (q {d['queue_ms']})"
                    for m, d in p.triton.items())
    return (f"| {p.system} | {p.op} | {p.concurrency} | {p.requests} | {p.errors} | {p.items_per_s:.2f} | "
            f"{p.p50_ms:.1f} | {p.p95_ms:.1f} | {p.p99_ms:.1f} | {p.extra.get('others_cpu', 0):.0%} | {tri} |")


def report(points: list[Point], extra: dict, a: dict) -> str:
    m = extra["machine"]
    lines = [f"Run: {extra['utc']}, wall {extra['wall_s']} s. Command: `{extra['command']}`", "",
             f"Machine: {m['cpu']}, nproc {m['nproc']}, {m['mem']}; Python {m['python']}, torch {m['torch']}, "
             f"{m['triton']}; kernel {m['kernel']}.", "",
             "Triton config: " + "; ".join(f"{k}: max_batch {v['max_batch_size']}, delay {v['queue_delay_us']} µs, "
                                           f"{v['instances']} instance × {v['num_threads']} threads"
                                           for k, v in extra["config"].items()), "",
             "| system | op | batch / concurrency | requests | errors | items/s | p50 ms | p95 ms | p99 ms | CPU used by others | Triton (avg batch, ms/request, queue) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [fmt_row(p) for p in points]
    lines += ["", "Ratios and targets:", ""]
    lines += [f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in a.items()]
    lines += ["", "Extra:", "", "```json", json.dumps({k: v for k, v in extra.items() if k not in ("machine",)},
                                                      indent=1), "```"]
    return "\n".join(lines) + "\n"


def plot(points: list[Point], a: dict, path: Path, version: str = "ViT-B-32") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    styles = {"triton": "-", "gateway": "-", "naive": "--"}
    colors = {"image": "tab:blue", "text": "tab:orange", "compare": "tab:green"}
    markers = {"triton": "s", "gateway": "o", "naive": "x"}
    for system in ("triton", "gateway", "naive"):
        for op in ("image", "text", "compare"):
            ps = sorted(find(points, system, op), key=lambda p: p.concurrency)
            if not ps:
                continue
            c = [p.concurrency for p in ps]
            kw = {"linestyle": styles[system], "marker": markers[system], "color": colors[op],
                  "label": f"{system} {op}"}
            ax1.plot(c, [p.items_per_s for p in ps], **kw)
            ax2.plot(c, [p.p50_ms for p in ps], **kw)
            ax2.fill_between(c, [p.p50_ms for p in ps], [p.p95_ms for p in ps], color=colors[op], alpha=0.06)
    ax1.axhline(a["image_ceiling"], color="tab:blue", linestyle=":", label=f"in-process image ceiling (b={a['image_ceiling_batch']})")
    ax1.axhline(a["text_ceiling"], color="tab:orange", linestyle=":", label="in-process text ceiling ([32,16])")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency (requests in flight)")
        ax.grid(True, alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("throughput (items/s; compare = requests/s)")
    ax1.set_title("Throughput vs concurrency")
    ax2.set_yscale("log")
    ax2.set_ylabel("latency p50 ms (band to p95)")
    ax2.set_title("Latency vs concurrency")
    ax1.legend(fontsize=7, ncol=2)
    fig.suptitle(f"CLIP {version} (random init), {os.cpu_count()} vCPU: Triton gRPC direct, gateway HTTP, "
                 "naive open_clip server (one run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="ViT-B-32", help="CLIP version id (exported as random init if missing)")
    parser.add_argument("--repository", type=Path, default=ROOT / "results/bench/model_repository")
    parser.add_argument("--seconds", type=float, default=12.0, help="time box of one load point")
    parser.add_argument("--inproc-seconds", type=float, default=6.0, help="time box of one in-process point")
    parser.add_argument("--max-requests", type=int, default=5000, help="request cap of one load point")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the in-process measurement")
    parser.add_argument("--triton-levels", default="1,4,8,16,32,64")
    parser.add_argument("--http-levels", default="1,4,16,64")
    parser.add_argument("--bucket-concurrency", type=int, default=32)
    parser.add_argument("--ab-rounds", type=int, default=2,
                        help="interleaved saturation rounds (in-process / Triton / gateway / naive) at the end")
    parser.add_argument("--ab-seconds", type=float, default=8.0, help="time box of one A/B point")
    parser.add_argument("--only-ab", action="store_true", help="skip the sweeps: only the A/B rounds")
    parser.add_argument("--gateway-env", action="append", default=[], help="KEY=VALUE for the gateway (repeatable)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--docs", type=Path, default=None, help="also copy the plot to DIR/benchmarks.png")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="only re-render report.md and the plot from a stored results.json (no load)")
    args = parser.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        points = [Point(**p) for p in data["points"]]
        extra = data["extra"]
        a = analyse(points, extra)
        extra["analysis"] = a
        folder = args.from_json.parent
        (folder / "report.md").write_text(report(points, extra, a))
        plot(points, a, folder / "benchmarks.png", args.version)
        if args.docs:
            shutil.copyfile(folder / "benchmarks.png", args.docs / "benchmarks.png")
        console.print(f"re-rendered {folder / 'report.md'} and {folder / 'benchmarks.png'}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` blocks stop the servers
    args.triton_levels = [int(x) for x in args.triton_levels.split(",")]
    args.http_levels = [int(x) for x in args.http_levels.split(",")]
    args.gateway_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    args.out = args.out or ROOT / "results" / f"bench-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    args.out.mkdir(parents=True, exist_ok=True)
    console.print(f"bench: {args.version}, results in {args.out}")
    bench = Bench(args)
    try:
        bench.run()
    finally:
        (args.out / "results.json").write_text(json.dumps({"points": [asdict(p) for p in bench.points],
                                                           "extra": bench.extra}, indent=1))
    a = analyse(bench.points, bench.extra)
    bench.extra["analysis"] = a
    (args.out / "results.json").write_text(json.dumps({"points": [asdict(p) for p in bench.points],
                                                       "extra": bench.extra}, indent=1))
    (args.out / "report.md").write_text(report(bench.points, bench.extra, a))
    plot(bench.points, a, args.out / "benchmarks.png", args.version)
    if args.docs:
        args.docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "benchmarks.png", args.docs / "benchmarks.png")
    console.rule("summary")
    for k, v in a.items():
        console.print(f"{k:<34} {v:.3f}" if isinstance(v, float) else f"{k:<34} {v}")
    errors = sum(p.errors for p in bench.points)
    console.print(f"report: {args.out / 'report.md'}; plot: {args.out / 'benchmarks.png'}; errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
