"""The soak's mixed scenario: images of mixed sizes and counts, unique and listed texts, compare with class prompts."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time

import httpx

from clipbench.payloads import CLASS_PROMPTS, photographic_jpeg

JPEG_SIZES = ((640, 480), (640, 480), (1280, 720), (320, 240), (1920, 1080))
CLASSES = tuple(CLASS_PROMPTS[:14])  # the 14 class prompts compare repeats (cacheable), as before
HEADERS = {"content-type": "application/json"}


def jpegs() -> list[str]:
    return [base64.b64encode(photographic_jpeg(w, h, seed)).decode() for seed, (w, h) in enumerate(JPEG_SIZES)]


def request_body(i: int, rng: random.Random, images: list[str]) -> tuple[str, bytes]:
    """(route, JSON body) of request number i: 30/8 % images, 17/10 % texts, 35 % compare."""
    r = rng.random()
    if r < 0.30:
        body: dict = {"image": {"type": "base64", "value": rng.choice(images)}}
        return "embed_image", json.dumps(body).encode()
    if r < 0.38:
        body = {"image": [{"type": "base64", "value": rng.choice(images)} for _ in range(rng.randint(2, 4))]}
        return "embed_image", json.dumps(body).encode()
    if r < 0.55:  # unique prompts: cache misses, the LRU keeps evicting (bounded: its size is the cap)
        return "embed_text", json.dumps({"text": f"a photo of a thing number {i}"}).encode()
    if r < 0.65:
        return "embed_text", json.dumps({"text": [f"prompt {i} {j}" for j in range(rng.randint(2, 16))]}).encode()
    body = {
        "subject": {"type": "base64", "value": rng.choice(images)},
        "prompt": rng.sample(CLASSES, rng.randint(1, 8)),
    }
    return "compare", json.dumps(body).encode()


async def load(
    base: str, concurrency: int, seconds: float, counters: dict, rng: random.Random, latencies: dict[str, list[float]]
) -> None:
    """`concurrency` closed-loop clients until the deadline; counts per outcome and route, latency per route."""
    images, deadline, numbers = jpegs(), time.monotonic() + seconds, iter(range(1, 2**62))
    async with httpx.AsyncClient(
        base_url=base, timeout=120, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def client_loop() -> None:
            while time.monotonic() < deadline:
                route, payload = request_body(next(numbers), rng, images)
                start = time.perf_counter()
                try:
                    ok = (await client.post(f"/clip/{route}", content=payload, headers=HEADERS)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                counters["ok" if ok else "errors"] += 1
                counters[route] = counters.get(route, 0) + 1
                if ok:  # latency per route (issue 14): a mixed load must not starve one route
                    latencies.setdefault(route, []).append(time.perf_counter() - start)

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
