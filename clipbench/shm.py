"""gRPC vs Triton system shared memory for image tensors: end to end, and the client's request building.

Compute dominates both paths, so the client-side cost (client latency minus the server's request time)
and the request-building micro-benchmark are what tell them apart.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np

from clipbench.console import console
from clipbench.session import Session
from clipbench.tritonstats import TENSORS, sync_stats


def _server_ms(before: dict, after: dict) -> float:
    n = after["success_count"] - before["success_count"]
    return (after["success_ns"] - before["success_ns"]) / max(n, 1) / 1e6


def _summary(lat: list[float], server_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 2),
        "mean_ms": round(statistics.mean(lat) * 1000, 2),
        "server_ms": round(statistics.mean(server_ms), 2),
        "client_overhead_ms": round(statistics.mean(lat) * 1000 - statistics.mean(server_ms), 2),
    }


def _input(arr: np.ndarray, mode: str, handle, region: str):  # noqa: ANN001, ANN202 - tritonclient objects
    """The image input either inline (gRPC) or by region name (shm, after the copy the gateway would make)."""
    import tritonclient.utils.shared_memory as shm
    from tritonclient.grpc import InferInput

    inp = InferInput(TENSORS["image"][0], list(arr.shape), "UINT8")
    if mode == "shm":
        shm.set_shared_memory_region(handle, [arr])
        inp.set_shared_memory(region, arr.nbytes)
    else:
        inp.set_data_from_numpy(arr)
    return inp


def _batch(session: Session, client, arr: np.ndarray, blocks: int, per_block: int) -> dict:  # noqa: ANN001
    import tritonclient.utils.shared_memory as shm
    from tritonclient.grpc import InferRequestedOutput

    batch, model, oname = arr.shape[0], session.models[0], TENSORS["image"][1]
    embed_dim = int(session.params("image")["embed_dim"])
    region, key = f"in{batch}", f"/bench_shm_{os.getpid()}_{batch}"
    handle = shm.create_shared_memory_region(region, key, arr.nbytes)
    client.register_system_shared_memory(region, key, arr.nbytes)

    def call(mode: str) -> float:
        t0 = time.perf_counter()
        out = client.infer(model, [_input(arr, mode, handle, region)], outputs=[InferRequestedOutput(oname)])
        assert out.as_numpy(oname).shape == (batch, embed_dim)
        return time.perf_counter() - t0

    try:
        call("grpc"), call("shm")  # warm
        lat: dict[str, list[float]] = {"grpc": [], "shm": []}
        server_ms: dict[str, list[float]] = {"grpc": [], "shm": []}
        for _ in range(blocks):
            for mode in ("grpc", "shm"):
                session.step(f"shm micro-benchmark batch {batch}: {mode}")
                before = sync_stats(client, model)
                lat[mode] += [call(mode) for _ in range(per_block)]
                server_ms[mode].append(_server_ms(before, sync_stats(client, model)))
        return {**{mode: _summary(lat[mode], server_ms[mode]) for mode in lat}, "bytes": int(arr.nbytes)}
    finally:
        client.unregister_system_shared_memory(region)
        shm.destroy_shared_memory_region(handle)


def shm(session: Session) -> None:
    import tritonclient.grpc as grpc_sync

    client = grpc_sync.InferenceServerClient(session.servers.grpc_url)
    size = int(session.params("image")["image_size"])
    rng = np.random.default_rng(2)
    results: dict = {}
    for batch, blocks, per_block in ((1, 4, 5), (8, 2, 2)):
        arr = rng.integers(0, 256, (batch, 3, size, size), dtype=np.uint8)
        results[f"batch{batch}"] = _batch(session, client, arr, blocks, per_block)
        session.advance()
    client.close()
    results["client_prep_us"] = prep_cost(session.models[0], size)
    session.extra["shm"] = results
    console.print(f"  shm: {json.dumps(results)}")


def prep_cost(model: str, size: int, reps: int = 300) -> dict:
    """What differs between the two paths on the client, without the model: building the request.

    gRPC: the tensor is copied into the protobuf request and serialised (then framed by HTTP/2 and
    parsed by the server). shm: the tensor is copied into the mapped region; the request carries a
    region name and offset. Median of `reps` interleaved repetitions, microseconds.
    """
    import tritonclient.utils.shared_memory as shm
    from tritonclient.grpc import InferRequestedOutput
    from tritonclient.grpc._utils import _get_inference_request

    out = {}
    for batch in (1, 8):
        arr = np.random.default_rng(3).integers(0, 256, (batch, 3, size, size), dtype=np.uint8)
        region, key = f"prep{batch}", f"/bench_prep_{os.getpid()}_{batch}"
        handle = shm.create_shared_memory_region(region, key, arr.nbytes)
        times: dict[str, list[float]] = {"grpc": [], "shm": []}
        try:
            for _ in range(reps):
                for mode in ("grpc", "shm"):
                    t0 = time.perf_counter()
                    req = _get_inference_request(
                        model,
                        [_input(arr, mode, handle, region)],
                        "",
                        "",
                        [InferRequestedOutput(TENSORS["image"][1])],
                        0,
                        False,
                        False,
                        0,
                        None,
                        None,
                    )
                    req.SerializeToString()
                    times[mode].append(time.perf_counter() - t0)
        finally:
            shm.destroy_shared_memory_region(handle)
        out[f"batch{batch}"] = {m: round(statistics.median(v) * 1e6, 1) for m, v in times.items()}
    return out
