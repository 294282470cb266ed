#!/usr/bin/env bash
# GPU benchmark, one prepared script for a single-GPU host (written for one H200; < 10 minutes).
#
#   OUT=/some/dir scripts/bench_gpu.sh            # results in $OUT (default results/gpu-<UTC>)
#   POINT_S=4 VERSIONS=ViT-B-32,ViT-B-16 scripts/bench_gpu.sh
#
# 1. exports ViT-B-32 and ViT-B-16 in fp16 with random weights. The nvidia-pytriton wheel has only the
#    Python backend, so the towers are exported for the `cpu` target (Python backend + TorchScript) and
#    their configs are patched here: parameter `device: cuda` (triton_clip/runner.py then loads the
#    TorchScript on CUDA and moves each batch there), GPU-sized dynamic batching (image max batch 256,
#    text 512, 1 ms / 0.5 ms queue delay, queue 4096);
# 2. model-only throughput: the TorchScript towers in-process on CUDA at batch 1..256 (CUDA-synchronised);
# 3. Triton over gRPC, single-item requests at concurrency 1..256 (average batch from Triton's statistics);
# 4. the gateway over HTTP (uvicorn, GATEWAY_WORKERS processes) with 640x480 JPEGs and short prompts at
#    concurrency 1..256;
# 5. mixed traffic (scripts/bench_mixed.py, wrk): images alone, texts alone, both at once, image flood;
# then writes $OUT/gpu_bench.md (tables), $OUT/gpu_bench.json, $OUT/mixed/ and the server logs.
# Every server listens on 127.0.0.1 and is stopped by PID; each point is time-boxed (POINT_S seconds).
# Needs: the repo's .venv (or PYTHON=...) with a CUDA build of torch, open_clip, tritonclient, httpx,
# and the Triton install (`scripts/install_triton.py`, or a wheel already unpacked in .triton/); step 5 needs `wrk`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
OUT="${OUT:-$ROOT/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)}"
VERSIONS="${VERSIONS:-ViT-B-32,ViT-B-16}"
POINT_S="${POINT_S:-4}"
GATEWAY_WORKERS="${GATEWAY_WORKERS:-8}"
REPO="${REPO:-$OUT/model_repository}"
mkdir -p "$OUT"
START=$(date +%s)
log() { echo "[bench_gpu $(( $(date +%s) - START ))s] $*"; }

log "machine"
{ nvidia-smi -L || true; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  echo "nproc $(nproc)"; grep -m1 "model name" /proc/cpuinfo || true
  "$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} 2>&1 | tee "$OUT/machine.txt"
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device visible to torch"'

log "installing/locating tritonserver"
"$PY" -c 'from triton_clip.server import install, DEFAULT_HOME; print(install(DEFAULT_HOME))'

log "exporting $VERSIONS (fp16, random init) into $REPO"
timeout 300 "$PY" scripts/export.py --versions "$VERSIONS" --pretrained none --repository "$REPO" --target cpu \
  --fp16 --cpu-threads 4 --cpu-plan legacy 2>&1 | grep -v "^INFO" | tee "$OUT/export.log"

log "patching configs for CUDA (device parameter, GPU batching)"
"$PY" - "$REPO" <<'EOF'
import re, sys
from pathlib import Path
for cfg in Path(sys.argv[1]).glob("*/config.pbtxt"):
    text = cfg.read_text()
    image = 'key: "tower" value { string_value: "image" }' in text
    text = re.sub(r"max_batch_size: \d+", f"max_batch_size: {256 if image else 512}", text)
    text = re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {1000 if image else 500}", text)
    text = re.sub(r"max_queue_size: \d+", "max_queue_size: 4096", text)
    text = re.sub(r'key: "num_threads" value \{ string_value: "\d+" \}', 'key: "num_threads" value { string_value: "2" }', text)
    if 'key: "device"' not in text:
        text = text.replace("model_warmup [", 'parameters { key: "device" value { string_value: "cuda" } }\nmodel_warmup [', 1)
    cfg.write_text(text)
    print("patched", cfg)
EOF

log "benchmark (model-only, Triton gRPC, gateway HTTP)"
timeout 420 "$PY" - "$REPO" "$OUT" "$VERSIONS" "$POINT_S" "$GATEWAY_WORKERS" <<'EOF'
import asyncio, base64, json, os, subprocess, sys, time
from dataclasses import asdict
from pathlib import Path
import numpy as np
import torch

ROOT = Path.cwd()
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from bench import (Point, closed_loop, free_port, jpeg_640x480, stats_delta, stop, summarise, triton_stats,  # noqa: E402
                   unique_prompt)
from triton_clip.launch import start_gateway  # noqa: E402
from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess  # noqa: E402

repo, out, versions, point_s, workers = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","), float(sys.argv[4]), sys.argv[5]
BATCHES = [1, 8, 32, 64, 128, 256]
LEVELS = [1, 8, 32, 128, 256]
points: list[Point] = []

def show(p: Point) -> None:
    points.append(p)
    tri = "; ".join(f"{m}: b̄ {d['avg_batch']} {d['request_ms']} ms" for m, d in p.triton.items())
    print(f"  {p.system:<12} {p.op:<14} {p.concurrency:>4} {p.items_per_s:10.1f}/s p50 {p.p50_ms:8.2f} p99 {p.p99_ms:8.2f} ms {tri}", flush=True)

# 2. model-only on CUDA
dev = torch.device("cuda")
for v in versions:
    for tower, name in (("image", f"clip-{v}-image"), ("text", f"clip-{v}-text")):
        m = torch.jit.load(str(repo / name / "1" / "model.pt"), map_location=dev).eval()
        for b in BATCHES:
            x = (torch.randint(0, 256, (b, 3, 224, 224), dtype=torch.uint8) if tower == "image"
                 else torch.randint(1, 49000, (b, 16))).to(dev)
            with torch.inference_mode():
                for _ in range(3):
                    m(x)
                torch.cuda.synchronize()
                lat, t0 = [], time.perf_counter()
                while time.perf_counter() - t0 < min(point_s, 2.0) and len(lat) < 2000:
                    s = time.perf_counter(); m(x); torch.cuda.synchronize(); lat.append(time.perf_counter() - s)
            show(summarise(Point("model-only", f"{v} {tower}", b), lat, time.perf_counter() - t0, b))
        del m
        torch.cuda.empty_cache()

# 3 + 4. Triton and the gateway
ports = {k: free_port() for k in ("http", "grpc", "metrics", "gw")}
triton = TritonProcess(TritonOptions(repo.resolve(), "127.0.0.1", ports["http"], ports["grpc"], ports["metrics"]),
                       log_file=out / "tritonserver.log")
gw = None
try:
    triton.wait_ready(240)
    env = dict(os.environ, GATEWAY_TRITON_URL=f"127.0.0.1:{ports['grpc']}", CLIP_VERSION_ID=versions[0],
               GATEWAY_MAX_INFLIGHT="2048", GATEWAY_LOG_LEVEL="WARNING", GATEWAY_CPU_WORKERS="4")
    gw = start_gateway(env, port=ports["gw"], workers=int(workers), log_file=out / "gateway.log",
                       ready_timeout_s=120).proc

    async def main() -> None:
        import httpx
        import tritonclient.grpc.aio as aio
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from gateway.text.tokenize import ClipTokenizer
        client = aio.InferenceServerClient(f"127.0.0.1:{ports['grpc']}")
        tok = ClipTokenizer()
        imgs = [np.random.default_rng(i).integers(0, 256, (1, 3, 224, 224), dtype=np.uint8) for i in range(8)]
        ids = tok.batch([unique_prompt(i) for i in range(256)], truncate=False, buckets=(16, 32, 77))
        async def point(system, op, c, send, models):
            before = await triton_stats(client, models)
            lat, err, el = await closed_loop(send, c, point_s, 200_000)
            p = summarise(Point(system, op, c), lat, el)
            p.errors, p.triton = err, stats_delta(before, await triton_stats(client, models))
            show(p)
        for v in versions:
            for tower in ("image", "text"):
                model = f"clip-{v}-{tower}"
                iname, oname, dt = (("pixel_values__0", "image_embeds__0", "UINT8") if tower == "image"
                                    else ("input_ids__0", "text_embeds__0", "INT64"))
                arrays = imgs if tower == "image" else [ids[i:i + 1] for i in range(256)]
                async def send(i, arrays=arrays, model=model, iname=iname, oname=oname, dt=dt):
                    a = arrays[i % len(arrays)]
                    inp = InferInput(iname, list(a.shape), dt); inp.set_data_from_numpy(a)
                    await client.infer(model, [inp], outputs=[InferRequestedOutput(oname)], client_timeout=60)
                for c in LEVELS:
                    await point("triton-grpc", f"{v} {tower}", c, send, [model])
        jpeg = [json.dumps({"image": {"type": "base64", "value": base64.b64encode(jpeg_640x480(s)).decode()}}).encode() for s in range(8)]
        n = {"i": 0}
        for v in versions:
            models = [f"clip-{v}-image", f"clip-{v}-text"]
            for op, route in (("image", "/clip/embed_image"), ("text", "/clip/embed_text")):
                for c in LEVELS:
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['gw']}", timeout=60,
                                                 limits=httpx.Limits(max_connections=c)) as http:
                        async def send(i, op=op, route=route, v=v):
                            n["i"] += 1
                            body = (jpeg[i % 8][:-1] + f', "clip_version_id": "{v}"}}'.encode() if op == "image"
                                    else json.dumps({"text": unique_prompt(10**6 + n["i"]), "clip_version_id": v}).encode())
                            r = await http.post(route, content=body, headers={"content-type": "application/json"})
                            if r.status_code != 200:
                                raise RuntimeError(f"HTTP {r.status_code} {r.text[:200]}")
                        await point("gateway-http", f"{v} {op}", c, send, models)
        await client.close()
    asyncio.run(main())
finally:
    stop(gw)
    triton.stop()

rows = ["| system | what | batch / concurrency | items/s | p50 ms | p99 ms | errors | Triton avg batch |", "|---|---|---|---|---|---|---|---|"]
for p in points:
    b = "; ".join(str(d["avg_batch"]) for d in p.triton.values())
    rows.append(f"| {p.system} | {p.op} | {p.concurrency} | {p.items_per_s:.1f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.errors} | {b} |")
(out / "gpu_bench.md").write_text("# GPU benchmark (scripts/bench_gpu.sh)\n\n" + (out / "machine.txt").read_text()
                                  + "\n" + "\n".join(rows) + "\n")
(out / "gpu_bench.json").write_text(json.dumps([asdict(p) for p in points], indent=1))
print("\n".join(rows))
EOF
log "mixed traffic: images alone, texts alone, both at once, an image flood next to one text client"
# docs/mixed-traffic.md (GPU): the same scenarios as on CPU, at GPU concurrency, on the configs above.
timeout 240 "$PY" scripts/bench_mixed.py --repository "$REPO" --version "${VERSIONS%%,*}" --variants asis \
  --concurrency 64 --flood 256 --seconds "$POINT_S" --warm-seconds 2 --gateway-workers "$GATEWAY_WORKERS" \
  --out "$OUT/mixed" 2>&1 | tail -n 20 || log "mixed-traffic step failed (see $OUT/mixed)"

log "done: $OUT/gpu_bench.md"
