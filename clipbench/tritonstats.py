"""What Triton says about a load point: statistics deltas per model, and the exported model configs.

Image size, embedding size, tokenizer ids and text buckets are read from the exported config.pbtxt
(the exporter writes them as parameters), so the benchmark follows whatever version it runs.
"""

from __future__ import annotations

import re
from pathlib import Path

# The one import of the tensor names in clipbench (another branch moves them to a contract module).
from triton_clip.repository import TENSORS  # noqa: F401 - re-exported to the load modules

_PARAM = re.compile(r'parameters \{ key: "([^"]+)" value \{ string_value: "([^"]*)" \} \}')


def _int(x: object) -> int:
    return int(x or 0)


def _row(s: dict) -> dict[str, int]:
    inf = s.get("inference_stats", {})
    row = {"inference_count": _int(s.get("inference_count")), "execution_count": _int(s.get("execution_count"))}
    for k in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
        row[f"{k}_count"] = _int(inf.get(k, {}).get("count"))
        row[f"{k}_ns"] = _int(inf.get(k, {}).get("ns"))
    return row


async def triton_stats(client, models: list[str]) -> dict[str, dict]:  # noqa: ANN001 - tritonclient aio client
    return {m: _row((await client.get_inference_statistics(m, as_json=True))["model_stats"][0]) for m in models}


def sync_stats(client, model: str) -> dict[str, int]:  # noqa: ANN001 - tritonclient grpc client
    return _row(client.get_inference_statistics(model, as_json=True)["model_stats"][0])


def stats_delta(before: dict, after: dict) -> dict[str, dict]:
    out = {}
    for m in after:
        d = {k: after[m][k] - before[m].get(k, 0) for k in after[m]}
        n = d["success_count"]
        if not n:
            continue
        out[m] = {
            "requests": n,
            "inferences": d["inference_count"],
            "executions": d["execution_count"],
            "avg_batch": round(d["inference_count"] / max(d["execution_count"], 1), 2),
            "request_ms": round(d["success_ns"] / n / 1e6, 2),
            "queue_ms": round(d["queue_ns"] / n / 1e6, 2),
            "compute_ms": round((d["compute_input_ns"] + d["compute_infer_ns"] + d["compute_output_ns"]) / n / 1e6, 2),
        }
        if "stub_cpu_ms" in d:  # CPU of the model's backend stubs over the window (clipbench.mixed)
            out[m]["stub_cpu_ms"] = d["stub_cpu_ms"]
    return out


def model_parameters(repo: Path, model: str) -> dict[str, str]:
    """The string parameters the exporter wrote into `model`'s config.pbtxt (image_size, embed_dim, ...)."""
    return dict(_PARAM.findall((repo / model / "config.pbtxt").read_text()))


def read_config(repo: Path, model: str) -> dict[str, str]:
    """The batching knobs of one model, for the report's header."""
    text = (repo / model / "config.pbtxt").read_text()
    out = {
        "max_batch_size": re.search(r"max_batch_size: (\d+)", text).group(1),
        "queue_delay_us": re.search(r"max_queue_delay_microseconds: (\d+)", text).group(1),
        "instances": re.search(r"count: (\d+)", text).group(1),
    }
    out["num_threads"] = model_parameters(repo, model).get("num_threads", "?")
    return out
