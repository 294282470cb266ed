"""clipbench, the benchmark package: the load runner, Triton statistics, config readers, analysis and report.

The side-by-side run itself needs three servers and minutes; these pin the pieces its numbers come from.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from clipbench.analysis import analyse, best, find
from clipbench.closedloop import Point, closed_loop, summarise
from clipbench.metrics import stage_means_ms
from clipbench.payloads import CLASS_PROMPTS, HttpBodies, unique_prompt
from clipbench.report import HEADER, fmt_row, load_json, report, save_json
from clipbench.tritonstats import model_parameters, read_config, stats_delta
from triton_clip.repository import BATCHING, TowerSpec, config_pbtxt


def test_summarise_percentiles_and_rates() -> None:
    lat = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    p = summarise(Point("x", "image", 4), lat, elapsed=2.0, items_per_request=3)
    assert (p.requests, p.items, p.rps, p.items_per_s) == (100, 300, 50.0, 150.0)
    assert p.p50_ms == pytest.approx(50.5) and p.p99_ms == pytest.approx(99.01) and p.mean_ms == pytest.approx(50.5)


def test_closed_loop_is_bounded_by_count_and_counts_errors() -> None:
    seen: list[int] = []

    async def send(i: int) -> None:
        seen.append(i)
        await asyncio.sleep(0)
        if i % 5 == 0:
            raise RuntimeError("boom")

    lat, errors, elapsed = asyncio.run(closed_loop(send, concurrency=4, seconds=30, max_requests=20))
    assert sorted(seen) == list(range(20)), "each request index once, and no more than the cap"
    assert errors == 4 and len(lat) == 16 and elapsed < 30


def test_closed_loop_is_bounded_by_time() -> None:
    async def send(i: int) -> None:
        await asyncio.sleep(0.01)

    lat, errors, elapsed = asyncio.run(closed_loop(send, concurrency=2, seconds=0.2, max_requests=10**6))
    assert 0.2 <= elapsed < 1.0 and 0 < len(lat) < 100 and errors == 0


def _stats(inferences: int, executions: int, n: int, success_ns: int, queue_ns: int) -> dict:
    return {
        "inference_count": inferences,
        "execution_count": executions,
        "success_count": n,
        "success_ns": success_ns,
        "queue_count": n,
        "queue_ns": queue_ns,
        "compute_input_count": n,
        "compute_input_ns": 0,
        "compute_infer_count": n,
        "compute_infer_ns": success_ns - queue_ns,
        "compute_output_count": n,
        "compute_output_ns": 0,
    }


def test_stats_delta_averages_per_request_and_skips_idle_models() -> None:
    before = {"img": _stats(10, 5, 10, 10_000_000, 1_000_000), "txt": _stats(3, 3, 3, 0, 0)}
    after = {"img": _stats(42, 9, 42, 74_000_000, 9_000_000), "txt": _stats(3, 3, 3, 0, 0)}
    d = stats_delta(before, after)
    assert list(d) == ["img"], "a model without requests in the window has no row"
    assert d["img"] == {
        "requests": 32,
        "inferences": 32,
        "executions": 4,
        "avg_batch": 8.0,
        "request_ms": 2.0,
        "queue_ms": 0.25,
        "compute_ms": 1.75,
    }


def test_config_readers_follow_the_exported_config(tmp_path) -> None:
    """Image size and embedding size come from the config the exporter writes, not from constants."""
    params = {"image_size": "64", "embed_dim": "32", "num_threads": "3", "mean": "0.1,0.2,0.3"}
    spec = TowerSpec("clip-tiny-image", "image", "cpu", [3, 64, 64], 32, params)
    (tmp_path / spec.name).mkdir()
    (tmp_path / spec.name / "config.pbtxt").write_text(config_pbtxt(spec))
    assert model_parameters(tmp_path, spec.name) == params
    b = BATCHING[("cpu", "image")]
    assert read_config(tmp_path, spec.name) == {
        "max_batch_size": str(b.max_batch_size),
        "num_threads": "3",
        "queue_delay_us": str(b.queue_delay_us),
        "instances": str(b.instances),
    }


def test_stage_means_from_histogram_deltas() -> None:
    before = {
        "request:/clip/embed_image:sum": 1.0,
        "request:/clip/embed_image:count": 10.0,
        "stage:decode:sum": 0.5,
        "stage:decode:count": 10.0,
        "request:/clip/embed_text:sum": 3.0,
        "request:/clip/embed_text:count": 3.0,
    }
    after = {
        **before,
        "request:/clip/embed_image:sum": 1.2,
        "request:/clip/embed_image:count": 20.0,
        "stage:decode:sum": 0.6,
        "stage:decode:count": 20.0,
        "stage:triton:sum": 0.05,
        "stage:triton:count": 10.0,
    }
    assert stage_means_ms(before, after, "/clip/embed_image") == pytest.approx(
        {"request": 20.0, "decode": 10.0, "triton": 5.0}
    )


def test_payloads_are_unique_short_prompts_and_valid_bodies() -> None:
    from gateway.text.tokenize import ClipTokenizer

    prompts = [unique_prompt(i) for i in range(1000)]
    assert len(set(prompts)) == 1000
    assert ClipTokenizer().batch(prompts, truncate=False, buckets=(16, 32, 77)).shape == (1000, 16)
    bodies = HttpBodies(photos=2, compares=3)
    image = json.loads(bodies.body("image", 5))
    assert image["image"]["type"] == "base64" and len(image["image"]["value"]) > 10_000
    texts = {json.loads(bodies.body("text", 0))["text"] for _ in range(5)}
    assert len(texts) == 5, "text bodies never repeat, whatever the request index"
    compare = json.loads(bodies.body("compare", 1))
    assert len(compare["prompt"]) == 4 and set(compare["prompt"]) <= set(CLASS_PROMPTS)


def _run_points() -> list[Point]:
    """A minimal run: in-process ceilings, one sweep level, one A/B round."""

    def pt(system: str, op: str, c: int, ips: float, **extra) -> Point:
        return Point(system, op, c, requests=10, items_per_s=ips, p50_ms=10.0, mean_ms=11.0, extra=extra)

    tri = {"clip-x-image": {"avg_batch": 1.0, "request_ms": 4.0, "queue_ms": 0.5}}
    points = [
        pt("inprocess", "image", 1, 50),
        pt("inprocess", "image", 32, 80),
        pt("inprocess", "text16", 32, 400),
        pt("inprocess", "text77", 32, 100),
        pt("triton", "image", 1, 60),
        pt("gateway", "image", 1, 40),
        pt("naive", "image", 1, 10),
        pt("gateway", "text", 1, 200),
        pt("naive", "text", 1, 50),
        pt("gateway", "compare", 1, 20),
        pt("naive", "compare", 1, 5),
    ]
    points[5].triton = tri
    points[5].extra["gateway_ms"] = {"request": 9.0, "triton": 5.0, "decode": 3.0}
    for system, ips in (("inprocess_ab0", 80), ("ab-gateway", 40), ("ab-naive", 10), ("ab-triton", 60)):
        for op in ("image", "text", "compare", "text16"):
            points.append(pt(system, op, 16, ips, round=0))
    return points


def test_analysis_ratios() -> None:
    points = _run_points()
    assert best(points, "inprocess", "image").concurrency == 32 and len(find(points, "gateway", "image", 1)) == 1
    a = analyse(points)
    assert a["image_ceiling"] == 80 and a["image_ceiling_batch"] == 32
    assert a["gateway_vs_naive_image"] == 4.0 and a["gateway_image_vs_ceiling"] == 0.5
    assert a["overhead_image_p50_ms"] == 6.0 and a["gateway_internal_image_ms_c1"] == 4.0
    assert a["gateway_decode_image_ms_c1"] == 3.0 and a["bucket_ratio_inprocess_b32"] == 4.0
    assert a["ab_median gateway/naive_image"] == 4.0 and a["ab_median gateway/ceiling_image"] == 0.5


def test_report_format_and_json_round_trip(tmp_path) -> None:
    points = _run_points()
    extra = {
        "machine": {
            "cpu": "cpu",
            "nproc": "2",
            "mem": "1 kB",
            "python": "3.11",
            "torch": "2",
            "triton": "t",
            "kernel": "k",
        },
        "config": {
            "clip-x-image": {"max_batch_size": "32", "queue_delay_us": "2000", "instances": "1", "num_threads": "2"}
        },
        "utc": "2026-01-01 00:00 UTC",
        "wall_s": 1.0,
        "command": "bench",
    }
    save_json(tmp_path / "results.json", points, extra)
    loaded, extra2 = load_json(tmp_path / "results.json")
    assert loaded == points and extra2 == extra
    text = report(loaded, extra2, analyse(loaded))
    lines = text.splitlines()
    assert lines[0] == "Run: 2026-01-01 00:00 UTC, wall 1.0 s. Command: `bench`"
    assert "clip-x-image: max_batch 32, delay 2000 µs, 1 instance × 2 threads" in lines[4]
    assert lines[6:8] == HEADER and lines[8 : 8 + len(points)] == [fmt_row(p) for p in points]
    assert fmt_row(points[5]) == (
        "| gateway | image | 1 | 10 | 0 | 40.00 | 10.0 | 0.0 | 0.0 | 0% | image b̄=1.0 4.0 ms (q 0.5) |"
    )
    assert "- gateway_vs_naive_image: 4.000" in lines and "- image_ceiling_batch: 32" in lines


def test_naive_server_embeds_like_open_clip(open_clip_tiny) -> None:
    """The baseline is eager open_clip with its own preprocess: same embeddings as calling open_clip directly."""
    import base64

    import torch
    from fastapi.testclient import TestClient

    from clipbench.naive import build_app
    from clipbench.payloads import jpeg_640x480

    client = TestClient(build_app("clip-tiny", "none", threads=1))
    torch.manual_seed(0)
    model, _, preprocess = open_clip_tiny.create_model_and_transforms("clip-tiny", pretrained=None)
    model.eval()
    r = client.post("/clip/embed_text", json={"text": ["a dog", "a cat"]})
    with torch.inference_mode():
        want = model.encode_text(open_clip_tiny.get_tokenizer("clip-tiny")(["a dog", "a cat"])).numpy()
    np.testing.assert_allclose(np.array(r.json()["embeddings"]), want, rtol=1e-5, atol=1e-6)
    jpeg = base64.b64encode(jpeg_640x480(0)).decode()
    r = client.post(
        "/clip/compare",
        json={
            "subject": {"type": "base64", "value": jpeg},
            "subject_type": "image",
            "prompt": {"d": "a dog", "c": "a cat"},
            "prompt_type": "text",
        },
    )
    assert r.status_code == 200 and set(r.json()["similarity"]) == {"d", "c"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_clis_and_rerender_from_json(tmp_path) -> None:
    """The thin CLIs parse their options; --from-json renders report.md and the plot through the package."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    clis = (["scripts/bench.py"], ["scripts/bench_decode.py"], ["-m", "clipbench.naive"])
    for cmd in (c + ["--help"] for c in clis):
        r = subprocess.run([sys.executable, *cmd], cwd=root, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
    points = _run_points()
    extra = {
        "machine": {k: "x" for k in ("cpu", "nproc", "mem", "python", "torch", "triton", "kernel")},
        "config": {},
        "utc": "u",
        "wall_s": 1.0,
        "command": "c",
    }
    save_json(tmp_path / "results.json", points, extra)
    r = subprocess.run(
        [sys.executable, "scripts/bench.py", "--from-json", str(tmp_path / "results.json")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    a = analyse(points)
    assert (tmp_path / "report.md").read_text() == report(points, {**extra, "analysis": a}, a)
    assert (tmp_path / "benchmarks.png").read_bytes()[:4] == b"\x89PNG"
