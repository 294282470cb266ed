"""The naive baseline: what a user writes without this project (benchmark reference only).

One FastAPI app serving the same three Roboflow routes with eager open_clip in-process: open_clip's
own preprocess (PIL -> float tensor) and tokenizer (always padded to 77 tokens), 2 torch threads,
and one request at a time (a global lock around decode + forward). No dynamic batching, no cache.

    .venv/bin/python -m clipbench.naive --version ViT-B-32 --pretrained none --port 9101

Random weights (`--pretrained none`, seed 0 as the exporter) are fine for speed.
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import threading
import warnings
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from PIL import Image

_DATA_URI = re.compile(r"^data:image\/[a-z]+;base64,")


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


class NaiveModel:
    """Eager open_clip with its own preprocess and tokenizer."""

    def __init__(self, version: str, pretrained: str, threads: int) -> None:
        warnings.filterwarnings("ignore", category=FutureWarning)
        import open_clip

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        tag = {} if pretrained == "none" else open_clip.get_pretrained_cfg(version, pretrained)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(  # a tag as trained (QuickGELU)
            version,
            pretrained=None if pretrained == "none" else pretrained,
            force_quick_gelu=bool(tag.get("quick_gelu", False)),
        )
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(version)

    def image_tensor(self, item: object) -> torch.Tensor:
        value = item["value"] if isinstance(item, dict) else item
        data = base64.b64decode(_DATA_URI.sub("", value))
        return self.preprocess(Image.open(io.BytesIO(data)).convert("RGB"))

    def images(self, items: list) -> torch.Tensor:
        return self.model.encode_image(torch.stack([self.image_tensor(i) for i in items]))

    def texts(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts))


def build_app(version: str, pretrained: str, threads: int = 2) -> FastAPI:
    m = NaiveModel(version, pretrained, threads)
    lock = threading.Lock()  # one request at a time, like a plain single-worker server
    app = FastAPI(title="naive open_clip server")

    @app.post("/clip/embed_image")
    def embed_image(body: dict) -> JSONResponse:
        with lock, torch.inference_mode():
            out = m.images(_as_list(body["image"]))
        return JSONResponse({"embeddings": out.tolist()})

    @app.post("/clip/embed_text")
    def embed_text(body: dict) -> JSONResponse:
        with lock, torch.inference_mode():
            out = m.texts(_as_list(body["text"]))
        return JSONResponse({"embeddings": out.tolist()})

    @app.post("/clip/compare")
    def compare(body: dict) -> JSONResponse:
        prompt = body["prompt"]
        keys = list(prompt) if isinstance(prompt, dict) else None
        prompts = list(prompt.values()) if keys else _as_list(prompt)
        embed = {"image": m.images, "text": m.texts}
        with lock, torch.inference_mode():
            subject = embed[body.get("subject_type", "image")]([body["subject"]])
            others = embed[body.get("prompt_type", "text")](prompts)
            sims = torch.nn.functional.cosine_similarity(subject, others).tolist()
        return JSONResponse({"similarity": dict(zip(keys, sims)) if keys else sims})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--pretrained", default="none", help="open_clip pretrained tag or 'none' (random, seed 0)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--model-config",
        type=Path,
        action="append",
        default=[],
        help="extra open_clip model config JSON (e.g. tests/fixtures/clip-tiny.json)",
    )
    args = parser.parse_args(argv)
    if args.model_config:
        import open_clip

        for path in args.model_config:
            open_clip.add_model_config(path)
    app = build_app(args.version, args.pretrained, args.threads)
    # Sync handlers run in AnyIO's thread pool; the global lock serialises them.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
