"""Request payloads for the benchmarks: photographic JPEGs, unique and class prompts, JSON bodies.

Random pixels compress unlike photos (the JPEG decoder's cost depends on the DCT content), and a repeated
prompt would be served by the gateway's text cache, so both are generated to look like real traffic.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np

NOUNS = (
    "dog",
    "cat",
    "car",
    "bicycle",
    "person",
    "tree",
    "house",
    "boat",
    "airplane",
    "bird",
    "horse",
    "pizza",
    "laptop",
    "chair",
    "bottle",
    "clock",
    "flower",
    "mountain",
    "beach",
    "street",
)
ADJ = ("red", "small", "large", "old", "shiny", "blurry", "dark", "bright", "wet", "wooden")
CLASS_PROMPTS = [f"a photo of a {n}" for n in NOUNS]
ROUTES = {"image": "/clip/embed_image", "text": "/clip/embed_text", "compare": "/clip/compare"}


def photographic_jpeg(width: int, height: int, seed: int = 0, noise_sd: float = 6.0, quality: int = 90) -> bytes:
    """skimage's astronaut, upscaled, with sensor-like noise so the DCT has real high frequencies."""
    from PIL import Image
    from skimage import data

    base = Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0.0, noise_sd, (height, width, 3))
    pixels = np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg_640x480(seed: int) -> bytes:
    return photographic_jpeg(640, 480, seed)


def unique_prompt(i: int) -> str:
    """Short (<= 16 tokens with SOT/EOT), never repeated: the gateway's LRU cannot help."""
    return f"a photo of a {ADJ[i % len(ADJ)]} {NOUNS[(i // len(ADJ)) % len(NOUNS)]} {i}"


class HttpBodies:
    """The three routes' JSON bodies: 8 photos, 64 compare requests of 4 class prompts, fresh text each call."""

    def __init__(self, photos: int = 8, compares: int = 64) -> None:
        jpegs = [base64.b64encode(jpeg_640x480(s)).decode() for s in range(photos)]
        self.image = [json.dumps({"image": {"type": "base64", "value": j}}).encode() for j in jpegs]
        rng = np.random.default_rng(1)
        self.compare = []
        for i in range(compares):
            prompts = [CLASS_PROMPTS[k] for k in rng.choice(len(CLASS_PROMPTS), 4, replace=False)]
            self.compare.append(
                json.dumps(
                    {
                        "subject": {"type": "base64", "value": jpegs[i % len(jpegs)]},
                        "subject_type": "image",
                        "prompt": prompts,
                        "prompt_type": "text",
                    }
                ).encode()
            )
        self.texts = 0

    def body(self, op: str, i: int) -> bytes:
        if op == "image":
            return self.image[i % len(self.image)]
        if op == "text":
            self.texts += 1
            return json.dumps({"text": unique_prompt(100_000 + self.texts)}).encode()
        return self.compare[i % len(self.compare)]
