"""The ratios and targets of a side-by-side run, computed from its points (also from a stored results.json)."""

from __future__ import annotations

import statistics

import numpy as np

from clipbench.closedloop import Point

AB_RATIOS = (
    "gateway/ceiling_image",
    "gateway/triton_image",
    "gateway/naive_image",
    "gateway/naive_text",
    "gateway/naive_compare",
    "gateway/ceiling_text16",
)


def find(points: list[Point], system: str, op: str, c: int | None = None) -> list[Point]:
    return [p for p in points if p.system == system and p.op == op and (c is None or p.concurrency == c)]


def best(points: list[Point], system: str, op: str) -> Point | None:
    cands = find(points, system, op)
    return max(cands, key=lambda p: p.items_per_s) if cands else None


def _inprocess(points: list[Point], op: str) -> list[Point]:
    return [p for p in points if p.system.startswith("inprocess") and p.op == op]


def _saturation(points: list[Point], a: dict) -> None:
    ceil = _inprocess(points, "image")
    a["image_ceiling"] = max(p.items_per_s for p in ceil)
    a["image_ceiling_batch"] = max(ceil, key=lambda p: p.items_per_s).concurrency
    a["text_ceiling"] = max(p.items_per_s for p in _inprocess(points, "text16"))
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


def _overhead(points: list[Point], a: dict, op: str) -> None:
    """At concurrency 1: gateway latency minus Triton's request time, and the gRPC client's own share."""
    g1 = find(points, "gateway", op, 1)
    if g1 and g1[0].triton:
        d = next((v for k, v in g1[0].triton.items() if k.endswith(op)), None)
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


def _round_row(points: list[Point], r: int) -> dict:
    rp = [p for p in points if p.extra.get("round") == r]

    def get(system: str, op: str) -> float:
        return next((p.items_per_s for p in rp if p.system.startswith(system) and p.op == op), float("nan"))

    row = {"round": r, "ceiling_image": get("inprocess", "image"), "ceiling_text16": get("inprocess", "text16")}
    for op in ("image", "text", "compare"):
        row[f"gateway_{op}"], row[f"naive_{op}"] = get("ab-gateway", op), get("ab-naive", op)
        row[f"triton_{op}"] = get("ab-triton", op)
        row[f"gateway/naive_{op}"] = row[f"gateway_{op}"] / row[f"naive_{op}"]
    row["gateway/ceiling_image"] = row["gateway_image"] / row["ceiling_image"]
    row["gateway/triton_image"] = row["gateway_image"] / row["triton_image"]
    row["gateway/ceiling_text16"] = row["gateway_text"] / row["ceiling_text16"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def _ab_rounds(points: list[Point], a: dict) -> None:
    per_round = [_round_row(points, r) for r in sorted({p.extra["round"] for p in points if "round" in p.extra})]
    if per_round:
        a["ab_rounds"] = per_round
        for k in AB_RATIOS:
            a[f"ab_median {k}"] = float(np.median([row[k] for row in per_round]))


def _mean_ips(points: list[Point]) -> float:
    return statistics.mean(p.items_per_s for p in points)


def _buckets(points: list[Point], a: dict) -> None:
    b16, b77 = find(points, "triton-bucket", "text16"), find(points, "triton-bucket", "text77")
    if b16 and b77:
        a["bucket_ratio_triton"] = _mean_ips(b16) / _mean_ips(b77)
    i16 = [p for p in _inprocess(points, "text16") if p.concurrency == 32]
    i77 = _inprocess(points, "text77")
    if i16 and i77:
        a["bucket_ratio_inprocess_b32"] = _mean_ips(i16) / _mean_ips(i77)


def analyse(points: list[Point]) -> dict:
    """Every ratio of the report, in the report's order; raises ValueError without in-process ceilings."""
    a: dict = {}
    _saturation(points, a)
    for op in ("image", "text"):
        _overhead(points, a, op)
    _ab_rounds(points, a)
    _buckets(points, a)
    return a
