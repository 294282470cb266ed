"""The gateway end to end on the GPU configs: `tensor` and `encoded` image transports, 1 vs many workers, and the
mixed-traffic scenarios of issue 14, all driven by wrk (clipbench/mixed/wrk.py) against one Triton.

Triton comes from clipbench/stack.py (`local_triton`), the gateway from triton_clip/launch.py (`start_gateway`),
the request bodies and the mixed scenarios and their analysis from clipbench/mixed/run.py.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from clipbench.closedloop import Point
from clipbench.gpu.clock import Clock
from clipbench.gpu.plan import GatewayConfig, Plan
from clipbench.mixed import run as mixed_run
from clipbench.mixed import wrk
from clipbench.stack import gateway_env
from clipbench.tritonstats import stats_delta, sync_stats
from gateway.contract import encoded_model_names, model_names
from triton_clip.launch import Gateway, start_gateway
from triton_clip.server import TritonProcess

START_S = 20.0  # what one gateway start + warm-up may take before its points


def launch(plan: Plan, triton: TritonProcess, g: GatewayConfig, out: Path, timeout_s: float) -> Gateway:
    env = gateway_env(
        dict(os.environ),
        triton,
        plan.served_version,
        GATEWAY_IMAGE_TRANSPORT=g.transport,
        GATEWAY_TEXT_CACHE_SIZE="0",  # every text reaches the text tower
        GATEWAY_MAX_INFLIGHT="4096",
    )
    log = out / f"gateway-{g.workers}w-{g.transport}.log"
    return start_gateway(env, workers=g.workers, log_file=log, ready_timeout_s=timeout_s)


def served_transport(base_url: str, version: str) -> str:
    """What the gateway says it uses for `version` (`encoded` falls back to `tensor` without the ensemble)."""
    with urllib.request.urlopen(f"{base_url}/info", timeout=10) as r:
        info = json.load(r)
    return next((v["image_transport"] for v in info["versions"] if v["clip_version_id"] == version), "?")


def stats_models(version: str, op: str, transport: str) -> list[str]:
    image, text = model_names(version)
    if op == "text":
        return [text]
    return [*encoded_model_names(version), image] if transport == "encoded" else [image]


def wrk_point(url: str, kind: wrk.Kind, connections: int, seconds: float, label: tuple[str, str]) -> Point:
    row = wrk.result(wrk.start(url, kind, connections, seconds), kind, seconds)
    p = Point(label[0], label[1], connections, requests=row["requests"], errors=row["errors"])
    p.seconds, p.rps, p.items_per_s = row["seconds"], row["rps"], row["items_per_s"]
    p.p50_ms, p.p99_ms, p.mean_ms = row["p50_ms"], row["p99_ms"], row["mean_ms"]
    p.items = int(row["items_per_s"] * row["seconds"])
    return p


def gateway_points(plan: Plan, triton: TritonProcess, kinds: dict, out: Path, clock: Clock, record, errors) -> None:  # noqa: ANN001
    """Each gateway configuration of the plan: started, warmed, its levels measured, stopped. One that fails (its
    start, say) is recorded in `errors` and the next one runs."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(triton.opts.grpc_url)
    seconds = max(1.0, round(plan.point_s))
    for g in plan.gateways:
        if not clock.allows(START_S + seconds, f"gateway {g.workers}w {g.transport}"):
            continue
        try:
            one_gateway(plan, triton, g, kinds, out, clock, record, client)
        except Exception as exc:  # noqa: BLE001 - e.g. the encoded path failing on this host
            errors.append(f"gateway {g.workers}w {g.transport}: {type(exc).__name__}: {exc}")
            clock.log(f"gateway {g.workers}w {g.transport} FAILED: {exc}")
    client.close()


def one_gateway(
    plan: Plan, triton: TritonProcess, g: GatewayConfig, kinds: dict, out: Path, clock: Clock, record, client
) -> None:  # noqa: ANN001
    label, seconds = f"{g.workers}w {g.transport}", max(1.0, round(plan.point_s))
    gw = launch(plan, triton, g, out, min(120.0, clock.left()))
    try:
        transport = served_transport(gw.base_url, plan.served_version)
        for op in ("image", "text"):  # warm: connection pools, batch shapes
            wrk.result(wrk.start(gw.base_url, kinds[op], 2, 1), kinds[op], 1)
        for op, levels in (("image", g.image_levels), ("text", g.text_levels)):
            models = stats_models(plan.served_version, op, transport)
            for c in levels:
                if not clock.allows(seconds + 2, f"gateway {label} {op} c={c}"):
                    break
                before = {m: sync_stats(client, m) for m in models}
                p = wrk_point(gw.base_url, kinds[op], c, seconds, ("gateway", f"{op} {label}"))
                p.triton = stats_delta(before, {m: sync_stats(client, m) for m in models})
                p.extra = {"workers": g.workers, "transport": g.transport, "served_transport": transport}
                record(p)
    finally:
        gw.stop()


def mixed(plan: Plan, triton: TritonProcess, kinds: dict, out: Path, clock: Clock) -> dict:
    """Issue 14 on the GPU: images alone, texts alone, both at the same total connections, compare, and one text
    client next to an image flood; mixed/run.py's scenarios, measurement and analysis (shares, p99 ratios)."""
    many = max(g.workers for g in plan.gateways)
    g = GatewayConfig(many, "tensor", ())
    gw = launch(plan, triton, g, out, min(120.0, clock.left()))
    rows: list[dict] = []
    window = mixed_run.TritonWindow(triton.opts.grpc_url, plan.served_version, triton.pid)  # batch, stub CPU
    try:
        for kind in ("image", "text", "compare"):
            mixed_run.measure(gw.base_url, kinds, [(kind, 2)], 1)
        for scenario, loads in mixed_run.scenarios(plan.mixed_concurrency, True, plan.mixed_flood):
            what = f"mixed {scenario} {'+'.join(f'{k}x{c}' for k, c in loads)}"
            if not clock.allows(plan.mixed_point_s + 2, what):
                break
            for row in mixed_run.measure(gw.base_url, kinds, loads, plan.mixed_point_s, window):
                rows.append({**row, "round": 1, "variant": f"gpu {many}w", "scenario": scenario})
                clock.log(f"  {what}: {row['kind']} {row['items_per_s']:.1f}/s p99 {row['p99_ms']:.1f} ms")
    finally:
        gw.stop()
    try:
        analysis = mixed_run.analyse(rows)
    except (KeyError, ValueError) as exc:  # a scenario skipped for time: the rows stay, the shares do not
        analysis = {"error": f"{type(exc).__name__}: {exc}"}
    return {"rows": rows, "analysis": analysis}
