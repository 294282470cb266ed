"""Scenarios, interleaved across plans: images alone, texts alone, both at once (same total connections),
and compare; then the shares, latency ratios and compare-vs-prediction of docs/benchmarks.md."""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
from pathlib import Path

from rich.console import Console

from clipbench.mixed import wrk
from clipbench.mixed.stack import VARIANTS, Stack
from clipbench.payloads import jpeg_640x480, unique_prompt
from clipbench import procstat
from clipbench.repos import ensure_exported
from clipbench.results import run_folder
from clipbench.servers import machine_info
from clipbench.tritonstats import stats_delta, sync_stats
from gateway.contract import model_names
from triton_clip import threads

console = Console()
INFINITY = {"image": 9.1, "text": 9.1}  # infinity-emb under the same mixed load on this machine (issue 14)
PROMPTS_PER_COMPARE = 4


def request_kinds(folder: Path, n_images: int = 4, n_texts: int = 20_000) -> dict[str, wrk.Kind]:
    """640x480 JPEGs (photographic, so decode costs what it does for real photos) and unique short prompts."""
    images = [base64.b64encode(jpeg_640x480(seed)).decode() for seed in range(n_images)]
    prompts = [unique_prompt(i) for i in range(n_texts)]
    compare = [
        json.dumps(
            {
                "subject": {"type": "base64", "value": images[i % n_images]},
                "prompt": prompts[i * PROMPTS_PER_COMPARE : (i + 1) * PROMPTS_PER_COMPARE],
            }
        )
        for i in range(64)
    ]
    return {
        "image": wrk.write_kind(
            folder,
            "image",
            "/clip/embed_image",
            [json.dumps({"image": {"type": "base64", "value": b}}) for b in images],
        ),
        "text": wrk.write_kind(folder, "text", "/clip/embed_text", [json.dumps({"text": p}) for p in prompts]),
        "compare": wrk.write_kind(folder, "compare", "/clip/compare", compare),
    }


def scenarios(concurrency: int, with_compare: bool, flood: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """Same total connections alone and mixed; `flood`: many image connections against one text client."""
    half = max(1, concurrency // 2)
    out = [
        ("alone", [("image", concurrency)]),
        ("alone", [("text", concurrency)]),
        ("mixed", [("image", half), ("text", concurrency - half)]),
    ]
    out += [("alone", [("compare", concurrency)])] if with_compare else []
    return out + ([("alone", [("text", 1)]), ("flood", [("image", flood), ("text", 1)])] if flood else [])


class TritonWindow:
    """Triton's statistics over one load window: batch size and compute per execution of each tower,
    the profile behind a sum of shares below 1 (smaller batches when a modality has half the connections)."""

    def __init__(self, grpc_url: str, version: str, triton_pid: int) -> None:
        import tritonclient.grpc as grpcclient

        self.client, self.models = grpcclient.InferenceServerClient(grpc_url), list(model_names(version))
        self.pid = triton_pid

    def read(self) -> dict[str, dict]:
        """Statistics per model, plus `stub_cpu_ms`: CPU milliseconds of that model's backend stubs so far."""
        cpu = procstat.seconds_by_cmdline(self.pid, {m: f"/{m}/" for m in self.models})
        return {m: {**sync_stats(self.client, m), "stub_cpu_ms": round(cpu[m] * 1000)} for m in self.models}


def measure(
    url: str,
    kinds: dict[str, wrk.Kind],
    loads: list[tuple[str, int]],
    seconds: float,
    triton: TritonWindow | None = None,
) -> list[dict]:
    """Run the loads at the same time; every row carries the CPU share used by processes not ours
    and (with `triton`) Triton's per-model statistics of the window."""
    window = procstat.CpuWindow({"ours": os.getpid()})  # our descendants: Triton and its stubs, the gateway, wrk
    before = triton.read() if triton else {}
    window.start()
    procs = [(kinds[k], c, wrk.start(url, kinds[k], c, seconds, offset=1000 * n)) for n, (k, c) in enumerate(loads)]
    rows = [{"kind": kind.name, "connections": c, **wrk.result(p, kind, seconds)} for kind, c, p in procs]
    cpu = window.stop()
    extra = {"others_cpu": round(cpu["others_cpu_share"], 3), "our_cpu_s": round(cpu["ours_cpu_s"], 2)}
    if triton:
        extra["triton"] = stats_delta(before, triton.read())
    return [{**row, **extra} for row in rows]


def run_variant(name: str, args, kinds: dict[str, wrk.Kind], round_no: int) -> list[dict]:
    variant = VARIANTS[name]
    console.print(f"[bold]round {round_no} · {name}[/]: starting Triton + gateway")
    stack = Stack(variant, args.repository, args.version, args.out, args.cores, args.gateway_workers)
    rows: list[dict] = []
    try:
        stack.wait_ready()
        triton = TritonWindow(stack.triton.opts.grpc_url, args.version, stack.triton.pid)
        for kind in ("image", "text", "compare"):  # warm every path (batch shapes, connection pools)
            measure(stack.url, kinds, [(kind, 2)], args.warm_seconds)
        for scenario, loads in scenarios(args.concurrency, not args.no_compare, args.flood):
            for row in measure(stack.url, kinds, loads, args.seconds, triton):
                row.update(
                    round=round_no,
                    variant=name,
                    scenario=scenario,
                    triton_env=stack.triton_env,
                    triton_args=stack.triton_args,
                )
                rows.append(row)
                console.print(
                    f"  {scenario:5s} {row['kind']:7s} c={row['connections']}: "
                    f"{row['items_per_s']:6.1f} items/s  p50 {row['p50_ms']:7.1f} ms  "
                    f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  "
                    f"others' CPU {row['others_cpu']:.0%}"
                )
    finally:
        stack.stop()
    return rows


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else float("nan")


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _per_cpu_s(rows: list[dict]) -> float:
    """Items per CPU-second of our processes: robust to neighbours, and spin-waiting lowers it."""
    return statistics.median(r["items_per_s"] * r["seconds"] / r["our_cpu_s"] for r in rows if r["our_cpu_s"])


def cpu_share_sum(pick: dict[tuple[str, str], list[dict]]) -> float:
    """The sum of shares with CPU time in place of wall time: the fraction of our CPU time under mixed
    load that did useful work at the single-modality efficiency (equals the wall-clock sum when the
    machine is ours alone; unlike it, it does not move with what the neighbours take)."""
    try:
        image, text = _per_cpu_s(pick[("alone", "image")]), _per_cpu_s(pick[("alone", "text")])
        rounds = zip(pick[("mixed", "image")], pick[("mixed", "text")])
        sums = [
            (i["items_per_s"] * i["seconds"] / image + t["items_per_s"] * t["seconds"] / text) / i["our_cpu_s"]
            for i, t in rounds
            if i["our_cpu_s"]
        ]
        return round(statistics.median(sums), 3)
    except (statistics.StatisticsError, ZeroDivisionError):
        return float("nan")


def compare_cpu_ratio(pick: dict[tuple[str, str], list[dict]]) -> float:
    """compare per CPU-second against 1 image + 4 texts per CPU-second (the towers' costs, alone)."""
    try:
        image, text = _per_cpu_s(pick[("alone", "image")]), _per_cpu_s(pick[("alone", "text")])
        return round(_per_cpu_s(pick[("alone", "compare")]) * (1 / image + PROMPTS_PER_COMPARE / text), 3)
    except (statistics.StatisticsError, ZeroDivisionError):
        return float("nan")


def _tower_stats(row: dict, kind: str) -> dict | None:
    return next((v for m, v in row.get("triton", {}).items() if m.endswith(f"-{kind}")), None)


def triton_profile(pick: dict[tuple[str, str], list[dict]]) -> dict[str, float]:
    """Per tower, alone vs mixed: average batch and execution time per item (Triton's compute time of a
    request is its whole batch's; divided by the batch it is the tower's cost per embedding)."""
    out = {}
    for s in ("alone", "mixed"):
        for k in ("image", "text"):
            stats = [t for t in (_tower_stats(r, k) for r in pick[(s, k)]) if t]
            if stats:
                out[f"{s}_{k}_avg_batch"] = round(statistics.median(t["avg_batch"] for t in stats), 2)
                per_item = [t["compute_ms"] / max(t["avg_batch"], 1e-9) for t in stats]
                out[f"{s}_{k}_ms_per_item"] = round(statistics.median(per_item), 1)
                cpu = [t["stub_cpu_ms"] / t["inferences"] for t in stats if t.get("inferences")]
                if cpu:
                    out[f"{s}_{k}_cpu_ms_per_item"] = round(statistics.median(cpu), 1)
    return out


def analyse(rows: list[dict]) -> dict[str, dict]:
    """Per variant (median over rounds): rates, shares, p99 ratios, compare against the towers' costs."""
    out = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        pick = {
            (s, k): [
                r
                for r in mine
                if r["scenario"] == s and r["kind"] == k and (s != "alone" or k == "compare" or r["connections"] > 1)
            ]
            for s in ("alone", "mixed")
            for k in ("image", "text", "compare")
        }
        pick[("single", "text")] = [
            r for r in mine if r["scenario"] == "alone" and r["kind"] == "text" and r["connections"] == 1
        ]
        pick[("flood", "image")] = [r for r in mine if r["scenario"] == "flood" and r["kind"] == "image"]
        pick[("flood", "text")] = [r for r in mine if r["scenario"] == "flood" and r["kind"] == "text"]
        m = {
            f"{s}_{k}_{q}": _median(v, q)
            for (s, k), v in pick.items()
            if v
            for q in ("items_per_s", "rps", "p50_ms", "p99_ms")
        }
        a = {"rounds": len(pick[("alone", "image")]), **{k: round(v, 2) for k, v in m.items()}}
        for k in ("image", "text"):
            a[f"share_{k}"] = _ratio(m[f"mixed_{k}_items_per_s"], m[f"alone_{k}_items_per_s"])
            a[f"p99_ratio_{k}"] = _ratio(m[f"mixed_{k}_p99_ms"], m[f"alone_{k}_p99_ms"])
            a[f"vs_infinity_{k}"] = _ratio(m[f"mixed_{k}_items_per_s"], INFINITY[k])
        a["share_sum"] = round(a["share_image"] + a["share_text"], 3)
        a["cpu_share_sum"] = cpu_share_sum(pick)
        if "flood_text_p99_ms" in m:  # one text client next to an image flood, against that client alone
            a["flood_text_p99_ratio"] = _ratio(m["flood_text_p99_ms"], m["single_text_p99_ms"])
        if "alone_compare_rps" in m:
            image, text = m["alone_image_items_per_s"], m["alone_text_items_per_s"]
            predicted = 1 / (1 / image + PROMPTS_PER_COMPARE / text) if image and text else float("nan")
            a["compare_predicted_rps"] = round(predicted, 2)
            a["compare_vs_prediction"] = _ratio(m["alone_compare_rps"], predicted)
            a["compare_vs_prediction_cpu"] = compare_cpu_ratio(pick)
        a.update(triton_profile(pick))
        others = [r["others_cpu"] for r in mine]
        a["others_cpu_mean"], a["others_cpu_max"] = round(statistics.mean(others), 3), max(others)
        out[name] = a
    return out


def run_all(args) -> list[dict]:
    ensure_exported(args.version, args.repository)
    kinds = request_kinds(args.out)
    before = set(threads.repository_plans(args.repository).values())
    rows: list[dict] = []
    try:
        for round_no in range(1, args.rounds + 1):
            order = args.variants if round_no % 2 else list(reversed(args.variants))  # A B, then B A
            for name in order:
                rows += run_variant(name, args, kinds, round_no)
    finally:  # leave the repository on the plan it had (when a variant rewrote it)
        if len(before) == 1 and any(VARIANTS[v].plan for v in args.variants):
            threads.refresh_repository(args.repository, before.pop(), args.cores)
    return rows


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so the servers are stopped by the finally blocks


def main(args) -> int:  # args: clipbench/mixed/cli.py's namespace
    signal.signal(signal.SIGTERM, _interrupt)
    args.out = run_folder(args.out, "mixed")
    rows = json.loads(args.from_json.read_text())["rows"] if args.from_json else run_all(args)
    from clipbench.mixed.report import plot, table

    analysis = analyse(rows)
    result = {
        "machine": machine_info(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "infinity_reference": INFINITY,
        "analysis": analysis,
        "rows": rows,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    text = table(analysis, args.concurrency)
    (args.out / "report.md").write_text(text)
    console.print(text)
    plot(analysis, args.out / "benchmarks-mixed.png", args.version, args.concurrency)
    if args.docs:
        (args.docs / "benchmarks-mixed.png").write_bytes((args.out / "benchmarks-mixed.png").read_bytes())
    console.print(f"results: {args.out}")
    return 0
