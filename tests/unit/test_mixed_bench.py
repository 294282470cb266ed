"""The mixed benchmark's arithmetic (clipbench.mixed.run.analyse): shares, CPU-time shares, compare vs the
towers' costs, fairness ratio. Synthetic rows with known answers; the load itself is scripts/bench_mixed.py."""

from __future__ import annotations

import math

import pytest

from clipbench.mixed.report import table
from clipbench.mixed.run import analyse, scenarios


def row(scenario: str, kind: str, connections: int, items_per_s: float, p99: float, cpu_s: float) -> dict:
    return {
        "variant": "v",
        "round": 1,
        "scenario": scenario,
        "kind": kind,
        "connections": connections,
        "items_per_s": items_per_s,
        "rps": items_per_s,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "seconds": 10.0,
        "our_cpu_s": cpu_s,
        "others_cpu": 0.0,
        "errors": 0,
    }


def test_perfect_time_sharing_adds_up_to_one() -> None:
    rows = [
        row("alone", "image", 4, 10.0, 400, 20.0),
        row("alone", "text", 4, 50.0, 100, 20.0),
        row("mixed", "image", 2, 5.0, 800, 20.0),
        row("mixed", "text", 2, 25.0, 150, 20.0),
        # compare costs 1 image + 4 texts: 1 / (1/10 + 4/50) = 5.56 req/s predicted
        row("alone", "compare", 4, 5.0, 900, 20.0),
        row("alone", "text", 1, 20.0, 60, 10.0),
        row("flood", "image", 16, 9.0, 3000, 20.0),
        row("flood", "text", 1, 10.0, 120, 20.0),
    ]
    a = analyse(rows)["v"]
    assert (a["share_image"], a["share_text"], a["share_sum"]) == (0.5, 0.5, 1.0)
    assert a["cpu_share_sum"] == 1.0
    assert (a["p99_ratio_image"], a["p99_ratio_text"]) == (2.0, 1.5)
    assert a["compare_predicted_rps"] == pytest.approx(5.56, abs=0.01)
    assert a["compare_vs_prediction"] == pytest.approx(0.9, abs=0.001)
    assert a["flood_text_p99_ratio"] == 2.0  # against the single text client alone, not the 4-connection run
    assert "**1.00**" in table({"v": a}, 4)


def test_cpu_time_share_sees_through_neighbours_but_not_through_spinning() -> None:
    alone = [row("alone", "image", 4, 5.0, 400, 10.0), row("alone", "text", 4, 25.0, 100, 10.0)]
    # Neighbours took half the machine during the alone runs only: wall-clock shares exceed 1, CPU time does not.
    starved = analyse(alone + [row("mixed", "image", 2, 5.0, 400, 20.0), row("mixed", "text", 2, 25.0, 100, 20.0)])
    assert starved["v"]["share_sum"] == 2.0 and starved["v"]["cpu_share_sum"] == 1.0
    # Same output for twice the CPU time (threads spinning): the CPU-time share halves.
    spinning = analyse(alone + [row("mixed", "image", 2, 2.5, 400, 20.0), row("mixed", "text", 2, 12.5, 100, 20.0)])
    assert spinning["v"]["cpu_share_sum"] == 0.5


def test_missing_scenarios_give_nan_not_a_crash() -> None:
    a = analyse(
        [
            row("alone", "image", 4, 0.0, 0, 0.0),
            row("alone", "text", 4, 10.0, 100, 10.0),
            row("mixed", "image", 2, 0.0, 0, 10.0),
            row("mixed", "text", 2, 5.0, 100, 10.0),
        ]
    )["v"]
    assert math.isnan(a["share_image"]) and a["share_text"] == 0.5


def test_scenarios_keep_the_total_concurrency() -> None:
    for name, loads in scenarios(4, with_compare=True, flood=0):
        assert sum(c for _, c in loads) == 4, name
    assert ("flood", [("image", 16), ("text", 1)]) in scenarios(4, with_compare=False, flood=16)


def tower(avg_batch: float, compute_ms: float, inferences: int, stub_cpu_ms: int) -> dict:
    return {"avg_batch": avg_batch, "compute_ms": compute_ms, "inferences": inferences, "stub_cpu_ms": stub_cpu_ms}


def test_triton_profile_gives_cost_per_embedding_alone_and_mixed() -> None:
    """The profile behind a share sum below 1: per tower, batch size and stub CPU per embedding."""
    img, txt = "clip-V-image", "clip-V-text"
    rows = [
        {**row("alone", "image", 4, 10.0, 400, 20.0), "triton": {img: tower(2.0, 200.0, 100, 9_000)}},
        {**row("alone", "text", 4, 50.0, 100, 20.0), "triton": {txt: tower(2.0, 40.0, 500, 10_000)}},
        {
            **row("mixed", "image", 2, 4.0, 800, 20.0),
            "triton": {img: tower(1.0, 300.0, 40, 4_400), txt: tower(1.25, 50.0, 200, 5_000)},
        },
        {
            **row("mixed", "text", 2, 20.0, 150, 20.0),
            "triton": {img: tower(1.0, 300.0, 40, 4_400), txt: tower(1.25, 50.0, 200, 5_000)},
        },
    ]
    a = analyse(rows)["v"]
    assert (a["alone_image_avg_batch"], a["mixed_image_avg_batch"]) == (2.0, 1.0)
    assert (a["alone_image_ms_per_item"], a["mixed_image_ms_per_item"]) == (100.0, 300.0)
    assert (a["alone_image_cpu_ms_per_item"], a["mixed_image_cpu_ms_per_item"]) == (90.0, 110.0)
    assert (a["alone_text_cpu_ms_per_item"], a["mixed_text_cpu_ms_per_item"]) == (20.0, 25.0)
    assert "| v | 2.00 → 1.00 | 100.0 → 300.0 | 90.0 → 110.0 | 2.00 → 1.25 | 20.0 → 40.0 | 20.0 → 25.0 |" in table(
        {"v": a}, 4
    )
