"""One pipeline per operation: validate → decode/tokenize (worker threads) → Triton → similarity.

No HTTP types here. This is the only place CPU-bound work leaves the event loop: Pillow's
decode/resize release the GIL, so a small thread pool keeps other requests flowing while
one image is decoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol, TypeVar

import numpy as np

from gateway.errors import (
    ImageLoadError,
    InvalidRequest,
    LimitExceeded,
    Overloaded,
    PayloadTooLarge,
    TritonUnavailable,
    UnknownVersion,
)
from gateway.images.decode import check_header, decode_base64, image_to_tensor
from gateway.images.fetch import ImageFetcher
from gateway.metrics import Metrics
from gateway.route_families import ROUTE_FAMILIES
from gateway.settings import Settings
from gateway.similarity import cosine, shape_similarity
from gateway.text.registry import TokenizerRegistry
from gateway.text_cache import TextCache
from gateway.triton import ENCODED_INPUT, IMAGE_INPUT, IMAGE_OUTPUT, TEXT_INPUT, TEXT_OUTPUT, TritonClient
from gateway.version_info import VersionInfo

log = logging.getLogger("gateway.service")
T = TypeVar("T")


class ImageRef(Protocol):
    """An image declaration (`{"type", "value"}`), whatever parsed it: no HTTP schema here."""

    type: str
    value: Any


ImageLike = ImageRef | str
_KINDS = ("image", "text")
_INLINE_TEXTS, _INLINE_CHARS = 4, 512  # tokenized on the event loop below these sizes (see _embed_unique)


class ClipService:
    def __init__(
        self,
        settings: Settings,
        triton: TritonClient,
        fetcher: ImageFetcher,
        tokenizers: TokenizerRegistry,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.triton = triton
        self.fetcher = fetcher
        self.tokenizers = tokenizers
        self.metrics = metrics
        self.versions: dict[str, VersionInfo] = {}
        self.cache = TextCache(settings.text_cache_size, metrics)
        self._pool = ThreadPoolExecutor(settings.cpu_workers, thread_name_prefix="cpu")
        self._refresh_lock = asyncio.Lock()
        self._no_encoded: set[str] = set()  # versions already logged as lacking the encoded ensemble

    # --- lifecycle ---------------------------------------------------------------------------
    async def refresh_versions(self) -> None:
        async with self._refresh_lock:
            found = await self.triton.discover()
            usable = {}
            for name, info in found.items():
                problem = await self.tokenizers.prepare(info, self.triton.fetch_file)
                if problem:
                    log.error("version %s is not served: %s", name, problem)
                    continue
                if self.settings.image_transport == "encoded" and not info.encoded_model:
                    if name not in self._no_encoded:
                        log.error(
                            "version %s has no encoded-image ensemble (exported before it?): its images use "
                            "the tensor transport; re-export it for GATEWAY_IMAGE_TRANSPORT=encoded",
                            name,
                        )
                        self._no_encoded.add(name)
                if info.weights_random:
                    log.warning("version %s serves RANDOM weights (exported with --pretrained none)", name)
                usable[name] = info
            if set(usable) != set(self.versions):
                log.info("served CLIP versions: %s", ", ".join(sorted(usable)) or "none")
            self.versions = usable

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def served(self) -> list[VersionInfo]:
        """The usable versions, sorted by name (for /info and /readiness)."""
        return [self.versions[name] for name in sorted(self.versions)]

    async def ready(self) -> bool:
        """Triton is ready and so is every model of every served version (False while none is served)."""
        models = [m for info in self.versions.values() for m in (info.image_model, info.text_model)]
        models += [info.encoded_model for info in self.versions.values() if self.image_transport(info) == "encoded"]
        return bool(models) and await self.triton.ready(models)

    def image_transport(self, info: VersionInfo) -> str:
        """How this version's images reach Triton: `encoded` only where the version exported its ensemble."""
        return "encoded" if self.settings.image_transport == "encoded" and info.encoded_model else "tensor"

    def version(self, requested: str | None, route: str = "clip") -> VersionInfo:
        """The served version a route family may use (gateway/route_families.py says which)."""
        family = ROUTE_FAMILIES[route]
        name = requested or getattr(self.settings, family.default_setting)
        if name not in self.versions or not family.serves(self.versions[name].family):
            if not self.versions:
                raise TritonUnavailable("No CLIP version is loaded yet (is Triton up?); retry shortly.")
            served = sorted(n for n, info in self.versions.items() if family.serves(info.family))
            raise UnknownVersion(name, served, family.label)
        return self.versions[name]

    async def _offload(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.metrics.stage.labels(stage).observe(time.perf_counter() - start)

    async def _triton(self, model: str, inp: str, out: str, batch: np.ndarray, max_batch: int) -> np.ndarray:
        start = time.perf_counter()
        try:
            return await self.triton.infer(model, inp, out, batch, max_batch)
        except Exception as exc:
            self.metrics.triton_errors.labels(type(exc).__name__).inc()
            if isinstance(exc, Overloaded):  # Triton's queue policy refused it (max_queue_size / queue timeout)
                self.metrics.rejected.labels("triton_queue").inc()
            raise
        finally:
            self.metrics.stage.labels("triton").observe(time.perf_counter() - start)

    # --- images ------------------------------------------------------------------------------
    async def _image_source(self, image: ImageLike) -> bytes | str:
        """URL images are fetched here; base64 stays a string, decoded in the worker thread."""
        if isinstance(image, str):  # a bare string where an image is expected: upstream infers its type
            kind, value = ("url", image) if image.startswith("http") else ("base64", image)
        else:
            kind, value = image.type.lower(), image.value
        if kind in ("numpy", "numpy_object"):
            raise ImageLoadError(
                "numpy input is refused: it is a pickle, and unpickling client data runs code.", reason="numpy"
            )
        if kind not in ("base64", "url"):
            raise ImageLoadError("Image declaration contains not recognised image type.", reason="type")
        if not isinstance(value, str):
            raise ImageLoadError(f"`value` of a {kind} image must be a string.", reason="value")
        if kind == "url":
            try:
                return await self.fetcher.fetch(value)
            except ImageLoadError as exc:
                self.metrics.url_failures.labels(exc.reason).inc()
                raise
        return value

    def _tensor(self, data: bytes | str, info: VersionInfo) -> np.ndarray:
        s = self.settings
        raw = decode_base64(data) if isinstance(data, str) else data  # ~1 ms/MB: not on the event loop
        return image_to_tensor(
            raw, info.preprocess, max_pixels=s.max_image_pixels, min_side=s.min_image_side, draft=s.jpeg_draft
        )

    async def _one_image(self, image: ImageLike, info: VersionInfo, index: int | None) -> np.ndarray:
        try:
            data = await self._image_source(image)
            return await self._offload("decode", self._tensor, data, info)
        except ImageLoadError as exc:
            self.metrics.image_errors.labels(exc.reason).inc()
            raise exc.at_index(index) if index is not None else exc

    def _checked_bytes(self, data: bytes | str) -> bytes:
        """Encoded transport: the file's bytes once its header passed the same checks as a full decode."""
        s = self.settings
        raw = decode_base64(data) if isinstance(data, str) else data
        check_header(raw, max_pixels=s.max_image_pixels, min_side=s.min_image_side)
        return raw

    async def _one_encoded(self, image: ImageLike, info: VersionInfo, index: int | None) -> np.ndarray:
        """Encoded transport, one image: header checked here, decoded next to the tower (one Triton request)."""
        try:
            data = await self._image_source(image)
            raw = await self._offload("header", self._checked_bytes, data)
            pixels = np.frombuffer(raw, dtype=np.uint8)[None]  # UINT8 [1, n], ragged-batched by Triton
            return (await self._triton(info.encoded_model, ENCODED_INPUT, IMAGE_OUTPUT, pixels, 1))[0]
        except ImageLoadError as exc:  # the header here, or the decode inside Triton (gateway/errors.py)
            self.metrics.image_errors.labels(exc.reason).inc()
            raise exc.at_index(index) if index is not None else exc

    async def embed_images(
        self, images: list[ImageLike], version: str | None, *, listed: bool = True, route: str = "clip"
    ) -> np.ndarray:
        info = self.version(version, route)
        if not images:
            raise InvalidRequest("At least one image is required.")
        if len(images) > self.settings.max_images_per_request:
            raise LimitExceeded(
                f"The maximum number of images that can be embedded at once is {self.settings.max_images_per_request}."
            )
        if self.image_transport(info) == "encoded":
            return np.stack(
                await asyncio.gather(
                    *(self._one_encoded(img, info, i if listed else None) for i, img in enumerate(images))
                )
            )
        tensors = await asyncio.gather(
            *(self._one_image(img, info, i if listed else None) for i, img in enumerate(images))
        )
        batch = np.stack(tensors)
        return await self._triton(info.image_model, IMAGE_INPUT, IMAGE_OUTPUT, batch, info.image_max_batch)

    # --- texts -------------------------------------------------------------------------------
    async def embed_texts(
        self, texts: list[str], version: str | None, truncate: bool, route: str = "clip"
    ) -> np.ndarray:
        info = self.version(version, route)
        s = self.settings
        if not texts:
            raise InvalidRequest("At least one text is required.")
        if len(texts) > s.max_texts_per_request:
            raise PayloadTooLarge(f"The maximum number of texts per request is {s.max_texts_per_request}.")
        for i, text in enumerate(texts):
            if len(text) > s.max_text_chars:
                raise LimitExceeded(f"Text at index {i} has {len(text)} characters; the limit is {s.max_text_chars}.")
        return await self.cache.embed(
            info.version, truncate, texts, info.embed_dim, lambda unique: self._embed_unique(unique, info, truncate)
        )

    async def _embed_unique(self, texts: list[str], info: VersionInfo, truncate: bool) -> np.ndarray:
        """Distinct texts, none cached: tokenized to a bucket, sent in one Triton request."""
        if len(texts) <= _INLINE_TEXTS and sum(map(len, texts)) <= _INLINE_CHARS:
            # A few short prompts tokenize in ~0.1 ms: cheaper on the loop than a thread hop.
            start = time.perf_counter()
            ids = self._tokenize(texts, info, truncate)
            self.metrics.stage.labels("tokenize").observe(time.perf_counter() - start)
        else:
            ids = await self._offload("tokenize", self._tokenize, texts, info, truncate)
        return await self._triton(info.text_model, TEXT_INPUT, TEXT_OUTPUT, ids, info.text_max_batch)

    def _tokenize(self, texts: list[str], info: VersionInfo, truncate: bool) -> np.ndarray:
        return self.tokenizers.get(info).batch(texts, truncate=truncate, buckets=info.text_buckets)

    # --- compare -----------------------------------------------------------------------------
    async def _embed_any(
        self, kind: str, items: list[Any], version: str | None, truncate: bool, listed: bool, route: str
    ) -> np.ndarray:
        if kind == "text":
            if not all(isinstance(t, str) for t in items):
                raise InvalidRequest("Text prompts/subjects must be strings.")
            return await self.embed_texts(items, version, truncate, route)
        return await self.embed_images(items, version, listed=listed, route=route)

    async def compare(
        self,
        subject: Any,
        subject_type: str,
        prompt: Any,
        prompt_type: str,
        version: str | None,
        truncate: bool,
        route: str = "clip",
    ) -> list[float] | dict[str, float]:
        for name, value in (("subject_type", subject_type), ("prompt_type", prompt_type)):
            if value not in _KINDS:
                raise InvalidRequest(f"{name} must be 'image' or 'text', got {value!r}.")
        keys: list[str] | None = None
        if isinstance(prompt, dict):  # named prompts (one image declaration arrives parsed, not as a dict)
            keys, prompts = list(prompt.keys()), list(prompt.values())
        elif isinstance(prompt, list):
            prompts = prompt
        else:
            prompts = [prompt]
        if not prompts:
            raise InvalidRequest("At least one prompt is required.")
        if len(prompts) > self.settings.max_prompts_per_compare:
            raise LimitExceeded(
                "The maximum number of prompts that can be compared at once is "
                f"{self.settings.max_prompts_per_compare}."
            )
        self.version(version, route)  # 404/503 before any decoding
        subject_vec, prompt_vecs = await asyncio.gather(
            self._embed_any(subject_type, [subject], version, truncate, listed=False, route=route),
            self._embed_any(prompt_type, prompts, version, truncate, listed=len(prompts) > 1, route=route),
        )
        return shape_similarity(cosine(subject_vec[0], prompt_vecs), keys)
