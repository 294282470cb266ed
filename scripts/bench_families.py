"""Per-family throughput: the gateway against the in-process ceiling of the same TorchScript towers, one run.

    .venv/bin/python scripts/bench_families.py --versions ViT-B-32,MobileCLIP2-S0,PE-Core-T-16-384

Exports each version with random weights (speed equals the real weights') into --repository if missing,
starts one Triton + gateway on free loopback ports, then per version measures, interleaved in one run:
in-process TorchScript (batch 8 images / batch 32 short texts at the length the gateway sends) and the
gateway over HTTP (640x480 JPEGs, unique short prompts; closed loop at --concurrency). Appends nothing:
prints a Markdown table for docs/benchmarks.md and writes results/bench_families.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench import closed_loop, jpeg_640x480, machine_info, unique_prompt  # noqa: E402

from triton_clip.local import free_port, stop_process, wait_http  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", default="ViT-B-32,MobileCLIP2-S0,PE-Core-T-16-384")
    p.add_argument("--repository", type=Path, default=ROOT / "results" / "families_repository")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def export_missing(versions: list[str], repo: Path) -> None:
    from triton_clip.export import is_exported

    missing = [v for v in versions if not is_exported(v, repo, "cpu")]
    if missing:
        subprocess.run([sys.executable, str(ROOT / "scripts/export.py"), "--versions", ",".join(missing),
                        "--pretrained", "none", "--repository", str(repo), "--cpu-threads", "2"], check=True)


def params(repo: Path, model: str) -> dict[str, str]:
    import re

    text = (repo / model / "config.pbtxt").read_text()
    return dict(re.findall(r'key: "([^"]+)" value \{ string_value: "([^"]*)"', text))


def inprocess(repo: Path, version: str, seconds: float, threads: int) -> dict[str, float]:
    """Items/s of the exported towers called directly (no server, no decode): the ceiling."""
    import torch

    from gateway.text.registry import TokenizerRegistry, text_buckets

    torch.set_num_threads(threads)
    image_p, text_p = params(repo, f"clip-{version}-image"), params(repo, f"clip-{version}-text")
    size, context = int(image_p["image_size"]), int(text_p["context_length"])
    tok = TokenizerRegistry().clip_bpe(context, text_p.get("text_clean", "lower"))  # CLIP-BPE families only
    ids = torch.from_numpy(tok.batch([unique_prompt(i) for i in range(32)], buckets=text_buckets(text_p)))
    out = {}
    for tower, x in (("image", torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8)), ("text", ids)):
        module = torch.jit.load(str(repo / f"clip-{version}-{tower}" / "1" / "model.pt")).eval()
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            module(x)
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or calls < 3:
                module(x)
                calls += 1
        out[tower] = calls * x.shape[0] / (time.perf_counter() - start)
    out["text_length"] = ids.shape[1]
    return out


async def gateway_points(url: str, version: str, family: str, seconds: float, concurrency: int) -> dict[str, float]:
    import httpx

    # gateway/route_families.py: Perception Encoder versions are served on /perception_encoder/* only.
    prefix, field = (("/perception_encoder", "perception_encoder_version_id") if family == "pe-core"
                     else ("/clip", "clip_version_id"))

    jpegs = [base64.b64encode(jpeg_640x480(s)).decode() for s in range(8)]
    out = {}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        async def image(i: int) -> None:
            body = {"image": {"type": "base64", "value": jpegs[i % 8]}, field: version}
            r = await client.post(f"{prefix}/embed_image", json=body)
            r.raise_for_status()

        async def text(i: int) -> None:
            r = await client.post(f"{prefix}/embed_text", json={"text": unique_prompt(10_000 + i), field: version})
            r.raise_for_status()

        for name, send in (("image", image), ("text", text)):
            await closed_loop(send, concurrency, 3.0, 10_000)  # warm the shapes
            lat, errors, elapsed = await closed_loop(send, concurrency, seconds, 100_000)
            out[name] = len(lat) / elapsed
            out[f"{name}_errors"] = errors
    return out


def main() -> int:
    args = parse_args()
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    export_missing(versions, args.repository)
    from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install

    install(DEFAULT_HOME)
    results_dir = ROOT / "results"
    results_dir.mkdir(exist_ok=True)
    opts = TritonOptions(args.repository, "127.0.0.1", free_port(), free_port(), free_port())
    triton = TritonProcess(opts, log_file=results_dir / "bench_families_triton.log")
    port = free_port()
    env = dict(os.environ, GATEWAY_TRITON_URL=f"127.0.0.1:{opts.grpc_port}", CLIP_VERSION_ID=versions[0],
               GATEWAY_MAX_INFLIGHT="512", GATEWAY_TEXT_CACHE_SIZE="0", GATEWAY_LOG_LEVEL="WARNING")
    gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "gateway.main:create_app", "--factory", "--host",
                                "127.0.0.1", "--port", str(port), "--no-access-log"], cwd=ROOT, env=env,
                               stdout=open(results_dir / "bench_families_gateway.log", "ab"), stderr=subprocess.STDOUT)
    rows = []
    try:
        triton.wait_ready(900)
        wait_http(f"http://127.0.0.1:{port}/readiness", 120, gateway)
        for version in versions:
            family = params(args.repository, f"clip-{version}-image").get("family", "clip")
            ceiling = inprocess(args.repository, version, args.seconds, args.threads)
            served = asyncio.run(gateway_points(f"http://127.0.0.1:{port}", version, family, args.seconds,
                                                args.concurrency))
            rows.append({"version": version, "family": family, **{f"inprocess_{k}": v for k, v in ceiling.items()},
                         **{f"gateway_{k}": v for k, v in served.items()}})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop_process(gateway)
        triton.stop()
    (results_dir / "bench_families.json").write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=2))
    print("\n| version | family | text length sent | images/s gateway / in-process | texts/s gateway / in-process |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['version']} | {r['family']} | {r['inprocess_text_length']} | "
              f"{r['gateway_image']:.1f} / {r['inprocess_image']:.1f} "
              f"({r['gateway_image'] / r['inprocess_image']:.2f}) | "
              f"{r['gateway_text']:.1f} / {r['inprocess_text']:.1f} ({r['gateway_text'] / r['inprocess_text']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
