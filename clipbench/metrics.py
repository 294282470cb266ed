"""Readers of the gateway's Prometheus /metrics: its text-cache counters and request/stage histograms.

Deltas of these around a load point say where a request's time went inside the gateway and how often
the text cache hit, without instrumenting the gateway for the benchmark.
"""

from __future__ import annotations

import re

import httpx

_HIST = re.compile(
    r'^clip_gateway_(request|stage)_seconds_(sum|count)\{(?:route|stage)="([^"]+)"\} ([0-9.e+-]+)$', re.M
)
_CACHE = ("clip_gateway_text_cache_hits_total", "clip_gateway_text_cache_misses_total")


async def _metrics(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return (await client.get("/metrics")).text


async def gateway_histograms(base_url: str) -> dict[str, float]:
    """Sums and counts of the gateway's own request and stage histograms (seconds)."""
    text = await _metrics(base_url)
    return {f"{m.group(1)}:{m.group(3)}:{m.group(2)}": float(m.group(4)) for m in _HIST.finditer(text)}


async def gateway_cache(base_url: str) -> dict[str, float]:
    """Text-cache hits and misses so far."""
    text = await _metrics(base_url)
    out = {}
    for key in _CACHE:
        m = re.search(rf"^{key} ([0-9.e+]+)$", text, re.M)
        out[key.split("_")[-2]] = float(m.group(1)) if m else 0.0
    return out


def stage_means_ms(before: dict[str, float], after: dict[str, float], route: str) -> dict[str, float]:
    """Mean ms per stage (decode, tokenize, triton, ...) and of the whole `route` request between two reads."""
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    return {
        name.split(":")[1] if name.startswith("stage") else "request": round(
            d[name] / d[name.replace(":sum", ":count")] * 1000, 2
        )
        for name in d
        if name.endswith(":sum")
        and d.get(name.replace(":sum", ":count"))
        and (name.startswith("stage") or name == f"request:{route}:sum")
    }
