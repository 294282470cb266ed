"""clipbench/locustfile.py (entry file scripts/locustfile.py): its payload builders and scenarios make valid requests.

The locustfile imports locust, which monkey-patches the standard library with gevent on import; that
must not happen inside the pytest process (other tests use asyncio and grpc), so the import and the
checks run in a subprocess that prints what it built. The scenarios (the user's tasks) are run with a
stand-in for the HTTP client that records each request instead of sending it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib.util, io, json, random, sys, types
spec = importlib.util.spec_from_file_location("locustfile", "scripts/locustfile.py")
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)   # the file locust is given: it must expose the user class
import clipbench.locustfile as lf
assert entry.ClipUser is lf.ClipUser
from gateway.schemas import ClipCompareRequest, ClipImageEmbeddingRequest, ClipTextEmbeddingRequest
from gateway.images.decode import decode_base64, load_image
from gateway.text.tokenize import ClipTokenizer

rng = random.Random(0)
pool = lf.image_pool(1280)          # skip the 1920x1080 and 4000x3000 images: fast
tok = ClipTokenizer()
out = {"pool": [list(size) for size, _ in pool]}
sizes = set()
for _ in range(20):
    body = lf.embed_image_payload(rng, pool)
    req = ClipImageEmbeddingRequest.model_validate(body)
    img = load_image(decode_base64(req.image.value), max_pixels=40_000_000)
    sizes.add(img.size)
    count = rng.randint(1, lf.MAX_IMAGES)
    batch = ClipImageEmbeddingRequest.model_validate(lf.embed_image_payload(rng, pool, count))
    assert isinstance(batch.image, list) and len(batch.image) == count
    text = ClipTextEmbeddingRequest.model_validate(lf.embed_text_payload(rng))
    assert isinstance(text.text, str) and tok.batch([text.text], truncate=False).shape[1] == 16, text.text
    texts = ClipTextEmbeddingRequest.model_validate(lf.embed_text_payload(rng, 5))
    assert len(texts.text) == 5
    n = rng.randint(1, lf.MAX_PROMPTS)
    cmp = ClipCompareRequest.model_validate(lf.compare_payload(rng, pool, n))
    assert cmp.subject_type == "image" and cmp.prompt_type == "text" and len(cmp.prompt) == n
    named = ClipCompareRequest.model_validate(lf.compare_payload(rng, pool, n, named=True))
    assert isinstance(named.prompt, dict) and len(named.prompt) == n
    assert all(v in lf.CLASS_PROMPTS for v in named.prompt.values())
    json.dumps(body)
out["decoded_sizes"] = sorted(list(s) for s in sizes)
out["locust_user"] = lf.ClipUser.__name__

# Every scenario, as locust would run it: its tags, weight, and the requests it sends.
SCHEMAS = {"/clip/embed_image": ClipImageEmbeddingRequest, "/clip/embed_text": ClipTextEmbeddingRequest,
           "/clip/compare": ClipCompareRequest}
scenarios = {}
for fn in dict.fromkeys(lf.ClipUser.tasks):
    sent = []
    user = types.SimpleNamespace(rng=random.Random(1), pool=pool,
                                 _post=lambda route, body, name: sent.append((route, body, name)))
    for _ in range(12):
        fn(user)
    shapes = []
    for route, body, name in sent:
        req = SCHEMAS[route].model_validate(json.loads(json.dumps(body)))
        if route == "/clip/embed_image":
            images = req.image if isinstance(req.image, list) else [req.image]
            for image in images:
                load_image(decode_base64(image.value), max_pixels=40_000_000)
            shapes.append(len(images) if isinstance(req.image, list) else "one")
        elif route == "/clip/embed_text":
            shapes.append(len(req.text) if isinstance(req.text, list) else "one")
        else:
            load_image(decode_base64(req.subject.value), max_pixels=40_000_000)
            shapes.append(["dict" if isinstance(req.prompt, dict) else "list", len(req.prompt)])
    scenarios[fn.__name__] = {"tags": sorted(fn.locust_tag_set), "weight": lf.ClipUser.tasks.count(fn),
                              "routes": sorted({r for r, _, _ in sent}), "names": sorted({n for _, _, n in sent}),
                              "shapes": shapes}
out["scenarios"] = scenarios
print("RESULT " + json.dumps(out))
"""


def run_probe(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def probe() -> dict:
    return run_probe()


def test_payload_builders_make_valid_requests(probe: dict) -> None:
    result = probe
    assert result["pool"] and all(max(w, h) <= 1280 for w, h in result["pool"])
    # the images decode, and several sizes are drawn
    assert len(result["decoded_sizes"]) >= 2
    assert all(list(s) in result["pool"] for s in map(tuple, result["decoded_sizes"]))
    assert result["locust_user"] == "ClipUser"


SCENARIOS = {  # tag: (route, request shape)
    "embed_image": ("/clip/embed_image", "one image"),
    "embed_image_batch": ("/clip/embed_image", "2-8 images"),
    "embed_text": ("/clip/embed_text", "one text"),
    "embed_text_list": ("/clip/embed_text", "2-32 texts"),
    "compare": ("/clip/compare", "1-8 listed prompts"),
    "compare_named": ("/clip/compare", "1-8 named prompts"),
}


def test_scenarios_are_tagged_and_send_valid_requests(probe: dict) -> None:
    scenarios = probe["scenarios"]
    by_tag = {tag: s for s in scenarios.values() for tag in s["tags"] if tag != "mixed"}
    assert set(by_tag) == set(SCENARIOS) and len(scenarios) == len(SCENARIOS)
    for tag, (route, _) in SCENARIOS.items():
        scenario = by_tag[tag]
        assert scenario["tags"] == sorted([tag, "mixed"]), tag
        assert scenario["routes"] == [route] and scenario["weight"] > 0, tag
        assert len(scenario["shapes"]) == 12 and len(scenario["names"]) == 1, tag
    assert sum(s["weight"] for s in scenarios.values()) == 100  # the mixed weights are percentages
    assert set(by_tag["embed_image"]["shapes"]) == {"one"} and set(by_tag["embed_text"]["shapes"]) == {"one"}
    assert all(2 <= n <= 8 for n in by_tag["embed_image_batch"]["shapes"])
    assert all(2 <= n <= 32 for n in by_tag["embed_text_list"]["shapes"])
    assert all(kind == "list" and 1 <= n <= 8 for kind, n in by_tag["compare"]["shapes"])
    assert all(kind == "dict" and 1 <= n <= 8 for kind, n in by_tag["compare_named"]["shapes"])
