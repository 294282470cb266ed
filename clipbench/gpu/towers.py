"""Model-only throughput: the exported TorchScript towers called in this process on the GPU, synchronised.

The same `model.pt` files Triton serves, fp16 as exported, random inputs of the exported shapes (uint8 pixels; text
ids of the shortest bucket ending in the EOT id the export recorded), batch 1..256, each point time-boxed.
"""

from __future__ import annotations

import time
from pathlib import Path

from clipbench.closedloop import Point, summarise
from clipbench.gpu.clock import Clock
from clipbench.tritonstats import model_parameters
from gateway.contract import SOT_ID, Param, model_names, parse_buckets

MAX_CALLS = 2000


def inputs(repo: Path, model: str, tower: str, batch: int, device):  # noqa: ANN001, ANN201 - torch device, tensor
    import torch

    params = model_parameters(repo, model)
    gen = torch.Generator().manual_seed(batch)
    if tower == "image":
        size = int(params[Param.IMAGE_SIZE])
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen).to(device)
    length = parse_buckets(params[Param.TEXT_BUCKETS])[0]
    ids = torch.randint(1, SOT_ID, (batch, length), generator=gen)  # ordinary BPE ids, below the two specials
    ids[:, -1] = int(params[Param.EOT_ID])
    return ids.to(device)


def time_calls(module, x, seconds: float, sync) -> tuple[list[float], float]:  # noqa: ANN001 - torch objects
    """Latencies of back-to-back synchronised calls for `seconds` (at least 3, at most MAX_CALLS), after 2 warm."""
    import torch

    with torch.inference_mode(), torch.jit.optimized_execution(False):  # as the runner serves it
        for _ in range(2):
            module(x)
        sync()
        lat, start = [], time.perf_counter()
        while (time.perf_counter() - start < seconds or len(lat) < 3) and len(lat) < MAX_CALLS:
            t0 = time.perf_counter()
            module(x)
            sync()
            lat.append(time.perf_counter() - t0)
    return lat, time.perf_counter() - start


def measure(plan, repos: dict[str, Path], clock: Clock, record, errors: list[str]) -> None:  # noqa: ANN001
    """Every (version, tower) of the plan at every batch size; `record(point)` gets each result."""
    import torch

    device = torch.device(plan.device)
    cases = [(v, "image") for v in plan.versions] + [(v, "text") for v in plan.text_towers]
    for version, tower in cases:
        if version not in repos:  # its export was left out (bench.export)
            continue
        try:
            tower_points(plan, repos[version], version, tower, device, clock, record)
        except Exception as exc:  # noqa: BLE001 - one tower failing (e.g. out of memory) leaves the others
            errors.append(f"model_only {version} {tower}: {type(exc).__name__}: {exc}")
        if device.type == "cuda":
            torch.cuda.empty_cache()


def tower_points(plan, repo: Path, version: str, tower: str, device, clock: Clock, record) -> None:  # noqa: ANN001
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = model_names(version)[0 if tower == "image" else 1]
    module = torch.jit.load(str(repo / model / "1" / "model.pt"), map_location=device).eval()
    for batch in plan.batches:
        if not clock.allows(plan.model_point_s + 0.5, f"{version} {tower} batch {batch}"):
            break
        x = inputs(repo, model, tower, batch, device)
        lat, elapsed = time_calls(module, x, plan.model_point_s, sync)
        record(summarise(Point("model-only", f"{version} {tower}", batch), lat, elapsed, batch))
