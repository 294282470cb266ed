"""Locust scenarios for the CLIP gateway (Roboflow Inference Server CLIP API).

Scenarios are locust tags; without `--tags` every task runs with the mixed weights below.

| tag            | request                                                                 | mixed weight |
|----------------|-------------------------------------------------------------------------|--------------|
| embed_image    | 1 base64 JPEG, size drawn from 320x240 ... 4000x3000                    | 30           |
| embed_image_batch | 2-8 base64 JPEGs of mixed sizes in one request                       | 8            |
| embed_text     | one short prompt (<= 16 tokens)                                         | 20           |
| embed_text_list| a list of 2-32 short prompts                                            | 8            |
| compare        | image subject vs 1-8 class prompts (a list), prompts repeat             | 25           |
| compare_named  | image subject vs a dict of 1-8 named prompts                            | 9            |
| mixed          | every task above (the tag selects all of them)                          |              |

Run (scripts/loadtest.sh wraps this; scripts/locustfile.py is its locust entry file, also in docker-compose's
locust service, which mounts this package next to it):

    locust -f scripts/locustfile.py --headless -u 8 -r 2 -t 30s --host http://127.0.0.1:9001 --tags compare

Test images are photographic-looking (scikit-image sample photos, resized, plus sensor noise;
no downloads) and generated once per process, at first use. Extra options: `--clip-version ID`
(default: the server's default version) and `--max-image-side N` (drop images larger than N on
either side, e.g. 1280 for a quick run).

The payload builders (`embed_image_payload`, ...) are plain functions of a `random.Random`, so
`tests/unit/test_locustfile.py` checks them without starting any load.
"""

from __future__ import annotations

import base64
import io
import random
from functools import lru_cache

import numpy as np
from locust import HttpUser, between, events, tag, task
from PIL import Image

from clipbench.payloads import ADJ, CLASS_PROMPTS, NOUNS  # compare: class prompts repeat (gateway LRU)

# (width, height) of the generated test images: thumbnails, webcam, HD, full HD, 12 MP phone photo.
IMAGE_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (1280, 720), (1920, 1080), (4000, 3000))
# Draw weights per size: most real traffic is small/medium, a few phone photos.
IMAGE_WEIGHTS: tuple[int, ...] = (20, 40, 20, 12, 8)
MAX_IMAGES = 8  # Roboflow's CLIP_MAX_BATCH_SIZE default
MAX_PROMPTS = 8

TEMPLATES = (
    "a photo of a {}",
    "a {a} {n} on the street",
    "a close-up photo of a {a} {n}",
    "a painting of a {n}",
    "an image showing a {a} {n} and a {n2}",
    "{n}",
)

_options: dict[str, object] = {"clip_version": None, "max_image_side": 0}


def photographic_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB array: a scikit-image sample photo resized, with sensor-like noise."""
    try:
        from skimage import data

        sources = (data.astronaut, data.chelsea, data.coffee, data.rocket)
        base = sources[seed % len(sources)]()
    except Exception:  # noqa: BLE001 - no scikit-image: smooth gradients + shapes still compress like a photo
        yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
        base = np.stack([xx / 640 * 255, yy / 480 * 255, (xx + yy) / 1120 * 255], axis=-1).astype(np.uint8)
    img = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0.0, 5.0, (height, width, 3))
    return np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(width: int, height: int, seed: int = 0, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photographic_rgb(width, height, seed)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@lru_cache(maxsize=None)
def image_pool(max_side: int = 0) -> tuple[tuple[tuple[int, int], str], ...]:
    """((size, base64 JPEG), ...), two variants per size, generated once per process."""
    pool = []
    for w, h in IMAGE_SIZES:
        if max_side and max(w, h) > max_side:
            continue
        for seed in range(2):
            pool.append(((w, h), base64.b64encode(jpeg_bytes(w, h, seed)).decode("ascii")))
    return tuple(pool)


def _pick_image(rng: random.Random, pool) -> str:  # noqa: ANN001
    sizes = sorted({size for size, _ in pool})
    weights = [IMAGE_WEIGHTS[IMAGE_SIZES.index(s)] if s in IMAGE_SIZES else 1 for s in sizes]
    size = rng.choices(sizes, weights=weights)[0]
    return rng.choice([b64 for s, b64 in pool if s == size])


def prompt(rng: random.Random) -> str:
    """A short prompt (<= 16 CLIP tokens)."""
    nouns = rng.sample(NOUNS, 2)
    return rng.choice(TEMPLATES).format(nouns[0], a=rng.choice(ADJ), n=nouns[0], n2=nouns[1])


def _versioned(body: dict) -> dict:
    if _options["clip_version"]:
        body["clip_version_id"] = _options["clip_version"]
    return body


def embed_image_payload(rng: random.Random, pool, count: int | None = None) -> dict:  # noqa: ANN001
    """One image (a dict) when count is None, else a list of `count` images of mixed sizes."""
    if count is None:
        return _versioned({"image": {"type": "base64", "value": _pick_image(rng, pool)}})
    return _versioned({"image": [{"type": "base64", "value": _pick_image(rng, pool)} for _ in range(count)]})


def embed_text_payload(rng: random.Random, count: int | None = None) -> dict:
    if count is None:
        return _versioned({"text": prompt(rng)})
    return _versioned({"text": [prompt(rng) for _ in range(count)]})


def compare_payload(rng: random.Random, pool, prompts: int, named: bool = False) -> dict:  # noqa: ANN001
    """An image subject against `prompts` class prompts (repeated across calls: cacheable)."""
    chosen = rng.sample(CLASS_PROMPTS, prompts)
    body = {
        "subject": {"type": "base64", "value": _pick_image(rng, pool)},
        "subject_type": "image",
        "prompt_type": "text",
        "prompt": {p.removeprefix("a photo of a "): p for p in chosen} if named else chosen,
    }
    return _versioned(body)


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("--clip-version", default="", help="clip_version_id sent with every request")
    parser.add_argument("--max-image-side", type=int, default=0, help="skip test images larger than this (0: all)")


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:  # noqa: ANN001
    opts = environment.parsed_options
    if opts is not None:
        _options["clip_version"] = opts.clip_version or None
        _options["max_image_side"] = opts.max_image_side
    pool = image_pool(int(_options["max_image_side"]))  # generate once, before the first request
    print(
        f"locustfile: {len(pool)} test images ready "
        f"({', '.join(sorted({f'{w}x{h}' for (w, h), _ in pool}, key=lambda s: int(s.split('x')[0])))})"
    )


class ClipUser(HttpUser):
    """One client of the CLIP API; tasks are the scenarios, weights the mixed traffic."""

    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.pool = image_pool(int(_options["max_image_side"]))

    def _post(self, route: str, body: dict, name: str) -> None:
        with self.client.post(route, json=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            data = response.json()
            key = "similarity" if route.endswith("compare") else "embeddings"
            if key not in data:
                response.failure(f"no {key!r} in response")

    @tag("embed_image", "mixed")
    @task(30)
    def embed_image(self) -> None:
        self._post("/clip/embed_image", embed_image_payload(self.rng, self.pool), "embed_image")

    @tag("embed_image_batch", "mixed")
    @task(8)
    def embed_image_batch(self) -> None:
        count = self.rng.randint(2, MAX_IMAGES)
        self._post("/clip/embed_image", embed_image_payload(self.rng, self.pool, count), "embed_image[2-8]")

    @tag("embed_text", "mixed")
    @task(20)
    def embed_text(self) -> None:
        self._post("/clip/embed_text", embed_text_payload(self.rng), "embed_text")

    @tag("embed_text_list", "mixed")
    @task(8)
    def embed_text_list(self) -> None:
        self._post("/clip/embed_text", embed_text_payload(self.rng, self.rng.randint(2, 32)), "embed_text[list]")

    @tag("compare", "mixed")
    @task(25)
    def compare(self) -> None:
        body = compare_payload(self.rng, self.pool, self.rng.randint(1, MAX_PROMPTS))
        self._post("/clip/compare", body, "compare")

    @tag("compare_named", "mixed")
    @task(9)
    def compare_named(self) -> None:
        body = compare_payload(self.rng, self.pool, self.rng.randint(1, MAX_PROMPTS), named=True)
        self._post("/clip/compare", body, "compare[named]")
