"""scripts/locustfile.py: its payload builders produce requests the gateway accepts.

The locustfile imports locust, which monkey-patches the standard library with gevent on import; that
must not happen inside the pytest process (other tests use asyncio and grpc), so the import and the
checks run in a subprocess that prints what it built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import io, json, random, sys
sys.path.insert(0, "scripts")
import locustfile as lf
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
print("RESULT " + json.dumps(out))
"""


def run_probe(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_payload_builders_make_valid_requests() -> None:
    result = run_probe()
    assert result["pool"] and all(max(w, h) <= 1280 for w, h in result["pool"])
    # the images decode, and several sizes are drawn
    assert len(result["decoded_sizes"]) >= 2
    assert all(list(s) in result["pool"] for s in map(tuple, result["decoded_sizes"]))
    assert result["locust_user"] == "ClipUser"


def test_scenarios_are_tagged() -> None:
    text = (ROOT / "scripts/locustfile.py").read_text()
    for tag in ("embed_image", "embed_image_batch", "embed_text", "embed_text_list", "compare", "compare_named"):
        assert f'@tag("{tag}", "mixed")' in text
