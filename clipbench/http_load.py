"""The gateway and the naive baseline over HTTP (httpx.AsyncClient), interleaved point by point.

Real 640x480 JPEGs and real short prompts (never repeated, so the gateway's text cache cannot help),
and compare requests whose class prompts do repeat, as a classifier's would.
"""

from __future__ import annotations

import httpx

from clipbench.closedloop import Send
from clipbench.metrics import gateway_cache, gateway_histograms, stage_means_ms
from clipbench.payloads import ROUTES, HttpBodies
from clipbench.session import Session

HEADERS = {"content-type": "application/json"}


def http_sender(client: httpx.AsyncClient, bodies: HttpBodies, op: str) -> Send:
    route = ROUTES[op]

    async def send(i: int) -> None:
        r = await client.post(route, content=bodies.body(op, i), headers=HEADERS)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        r.read()

    return send


async def warm(session: Session, bodies: HttpBodies) -> None:
    """First calls allocate, JIT-optimise and fill the tokenizer caches: three per route on both servers."""
    for base in (session.servers.gw_url, session.servers.naive_url):
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for op in ROUTES:
                for i in range(3):
                    await http_sender(client, bodies, op)(i)


async def gateway_point(session: Session, client: httpx.AsyncClient, bodies: HttpBodies, op: str, c: int) -> None:
    """One gateway point with its text-cache delta and mean per-stage times from its own histograms."""
    url = session.servers.gw_url
    before, hist0 = await gateway_cache(url), await gateway_histograms(url)
    p = await session.measure("gateway", op, c, http_sender(client, bodies, op))
    after, hist1 = await gateway_cache(url), await gateway_histograms(url)
    p.extra["cache"] = {k: after[k] - before[k] for k in after}
    p.extra["gateway_ms"] = stage_means_ms(hist0, hist1, ROUTES[op])


async def http_points(session: Session, bodies: HttpBodies) -> None:
    """Each of --http-levels: image, text, compare; gateway then naive at the same point."""
    await warm(session, bodies)
    url = session.servers.gw_url
    cache0 = await gateway_cache(url)
    for c in [] if session.args.only_ab else session.args.http_levels:
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        for op in ROUTES:
            for system, base in (("gateway", url), ("naive", session.servers.naive_url)):
                session.step(f"{system} {op} c={c}")
                async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
                    if system == "gateway":
                        await gateway_point(session, client, bodies, op, c)
                    else:
                        await session.measure(system, op, c, http_sender(client, bodies, op))
                session.advance()
    cache1 = await gateway_cache(url)
    session.extra["cache_all_http"] = {k: cache1[k] - cache0[k] for k in cache1}
