"""clip-bench-families: per family, the gateway against the in-process ceiling of the same TorchScript towers.

    clip-bench-families --versions ViT-B-32,MobileCLIP2-S0,PE-Core-T-16-384

Exports each version with random weights (speed equals the real weights') into --repository if missing,
starts one Triton + gateway on free loopback ports, then per version measures, interleaved in one run:
in-process TorchScript (batch 8 images / batch 32 short texts at the length the gateway sends) and the
gateway over HTTP (640x480 JPEGs, unique short prompts; closed loop at --concurrency). Prints a Markdown
table for docs/benchmarks.md and writes results/bench_families.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from pathlib import Path

import httpx

from clipbench.closedloop import closed_loop
from clipbench.payloads import jpeg_640x480, unique_prompt
from clipbench.repos import RESULTS, ensure_exported
from clipbench.servers import machine_info
from clipbench.stack import gateway_env, local_triton
from clipbench.tritonstats import model_parameters
from gateway.contract import model_names
from triton_clip.launch import start_gateway


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--versions", default="ViT-B-32,MobileCLIP2-S0,PE-Core-T-16-384")
    p.add_argument("--repository", type=Path, default=RESULTS / "families_repository")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    args.versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    return args


def inprocess(repo: Path, version: str, seconds: float, threads: int) -> dict[str, float]:
    """Items/s of the exported towers called directly (no server, no decode): the ceiling."""
    import torch

    from gateway.text.registry import TokenizerRegistry, text_buckets

    torch.set_num_threads(threads)
    names = model_names(version)
    image_p, text_p = model_parameters(repo, names[0]), model_parameters(repo, names[1])
    size, context = int(image_p["image_size"]), int(text_p["context_length"])
    tok = TokenizerRegistry().clip_bpe(context, text_p.get("text_clean", "lower"))  # CLIP-BPE families only
    ids = torch.from_numpy(tok.batch([unique_prompt(i) for i in range(32)], buckets=text_buckets(text_p)))
    out = {}
    for name, x in zip(names, (torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8), ids), strict=True):
        module = torch.jit.load(str(repo / name / "1" / "model.pt")).eval()
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            module(x)
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or calls < 3:
                module(x)
                calls += 1
        out[name.rsplit("-", 1)[1]] = calls * x.shape[0] / (time.perf_counter() - start)
    out["text_length"] = ids.shape[1]
    return out


async def gateway_points(url: str, version: str, family: str, seconds: float, concurrency: int) -> dict[str, float]:
    # gateway/route_families.py: Perception Encoder versions are served on /perception_encoder/* only.
    prefix, field = (
        ("/perception_encoder", "perception_encoder_version_id")
        if family == "pe-core"
        else ("/clip", "clip_version_id")
    )
    jpegs = [base64.b64encode(jpeg_640x480(s)).decode() for s in range(8)]
    out = {}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def image(i: int) -> None:
            body = {"image": {"type": "base64", "value": jpegs[i % 8]}, field: version}
            (await client.post(f"{prefix}/embed_image", json=body)).raise_for_status()

        async def text(i: int) -> None:
            body = {"text": unique_prompt(10_000 + i), field: version}
            (await client.post(f"{prefix}/embed_text", json=body)).raise_for_status()

        for name, send in (("image", image), ("text", text)):
            await closed_loop(send, concurrency, 3.0, 10_000)  # warm the shapes
            lat, errors, elapsed = await closed_loop(send, concurrency, seconds, 100_000)
            out[name], out[f"{name}_errors"] = len(lat) / elapsed, errors
    return out


def markdown(rows: list[dict]) -> str:
    lines = [
        "| version | family | text length sent | images/s gateway / in-process | texts/s gateway / in-process |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['version']} | {r['family']} | {r['inprocess_text_length']} | "
            f"{r['gateway_image']:.1f} / {r['inprocess_image']:.1f} "
            f"({r['gateway_image'] / r['inprocess_image']:.2f}) | {r['gateway_text']:.1f} / "
            f"{r['inprocess_text']:.1f} ({r['gateway_text'] / r['inprocess_text']:.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = ensure_exported(args.versions, args.repository.resolve(), cpu_threads=2)
    RESULTS.mkdir(exist_ok=True)
    rows = []
    with local_triton(repo, RESULTS / "bench_families_triton.log", ready_timeout_s=900) as triton:
        env = gateway_env(dict(os.environ), triton, args.versions[0], GATEWAY_TEXT_CACHE_SIZE="0")
        gateway = start_gateway(env, log_file=RESULTS / "bench_families_gateway.log", ready_timeout_s=120)
        try:
            for version in args.versions:
                family = model_parameters(repo, model_names(version)[0]).get("family", "clip")
                ceiling = inprocess(repo, version, args.seconds, args.threads)
                served = asyncio.run(gateway_points(gateway.base_url, version, family, args.seconds, args.concurrency))
                rows.append(
                    {
                        "version": version,
                        "family": family,
                        **{f"inprocess_{k}": v for k, v in ceiling.items()},
                        **{f"gateway_{k}": v for k, v in served.items()},
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        finally:
            gateway.stop()
    (RESULTS / "bench_families.json").write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=2))
    print("\n" + markdown(rows))
    return 0
