"""Pure report pieces of the soak and the workers benchmark, on synthetic rows with known answers."""

from __future__ import annotations

from pathlib import Path

from clipbench.report import replace_section
from clipbench.soak.report import summarise
from clipbench.soak.scenario import jpegs, request_body
from clipbench.workers.report import summary


def test_replace_section_replaces_between_markers_and_appends_when_absent(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- x:start -->\nold\n<!-- x:end -->\nafter\n")
    replace_section(doc, "x", "new\n")
    assert doc.read_text() == "intro\n<!-- x:start -->\nnew\n<!-- x:end -->\nafter\n"
    replace_section(doc, "y", "other\n")
    assert doc.read_text().endswith("after\n\n<!-- y:start -->\nother\n<!-- y:end -->\n")


def test_workers_summary_gives_the_median_of_per_round_ratios() -> None:
    base = {
        "service_core_ms_per_request": 1.0,
        "machine_busy_share": 0.9,
        "others_cpu_share": 0.0,
        "busiest_process_core_share": 0.5,
    }
    points = [
        {**base, "workers": w, "round": r, "rps": rps}
        for r, w, rps in ((1, 1, 100), (1, 2, 110), (2, 2, 150), (2, 1, 100), (3, 1, 100), (3, 2, 90))
    ]
    lines = summary(points)
    assert "2 vs 1 worker(s): 1.10x" in lines[-1] and "1.10, 1.50, 0.90" in lines[-1]


def test_soak_summary_reports_growth_over_the_second_half_and_errors() -> None:
    rows = [
        {"t_s": t, "ok": 10 * t, "errors": 0, "gateway": 100.0 + (t >= 60) * 10, "fd:gateway": 20.0}
        for t in range(0, 601, 5)
    ]
    rows[-1]["errors"] = 2
    latencies = {"embed_text": [0.01] * 50 + [0.1] * 50}
    run = {"utc": "now", "minutes": 10, "concurrency": 8, "workers": 2, "model": "m", "routes": {}, "command": "c"}
    text = summarise(rows, run, latencies)
    assert "2 errors" in text and "| embed_text | 100 |" in text
    gateway = next(line for line in text.splitlines() if line.startswith("| gateway |"))
    assert "| +0.0 % |" in gateway  # the step is at 1 min, before the second half: flat there
    rows[-1]["gateway"] = 126.5  # +15 % at the end of the second half
    gateway = next(line for line in summarise(rows, run, latencies).splitlines() if line.startswith("| gateway |"))
    assert "| +15.0 % |" in gateway


def test_soak_scenario_mixes_every_route_with_valid_bodies() -> None:
    import json
    import random

    from gateway.schemas import ClipCompareRequest, ClipImageEmbeddingRequest, ClipTextEmbeddingRequest

    images, rng, routes = jpegs()[:1], random.Random(0), {}
    schema = {
        "embed_image": ClipImageEmbeddingRequest,
        "embed_text": ClipTextEmbeddingRequest,
        "compare": ClipCompareRequest,
    }
    for i in range(200):
        route, body = request_body(i, rng, images)
        schema[route].model_validate(json.loads(body))
        routes[route] = routes.get(route, 0) + 1
    assert set(routes) == set(schema) and routes["compare"] > routes["embed_text"] > 0
