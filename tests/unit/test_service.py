"""gateway/service.py with a fake Triton client that records every call (no tritonserver, no network).

What is faked is only the inference server: decoding, tokenizing, the cache, de-duplication, limits and
compare shaping are the real code. The fake's embeddings are a deterministic function of the exact input
rows it receives (a hash seeds a random vector), so equal inputs give equal vectors and the tests can tell
which rows reached "Triton". End-to-end behaviour against the real tritonserver is in tests/integration.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gateway.errors import (
    ImageLoadError,
    InvalidRequest,
    LimitExceeded,
    PayloadTooLarge,
    TritonUnavailable,
    UnknownVersion,
)
from gateway.images.decode import Preprocess
from gateway.images.fetch import ImageFetcher, UrlPolicy
from gateway.main import create_app, route_set
from gateway.metrics import Metrics
from gateway.schemas import InferenceRequestImage
from gateway.service import ClipService
from gateway.settings import Settings
from gateway.text.registry import TokenizerRegistry
from gateway.triton import IMAGE_INPUT, IMAGE_OUTPUT, TEXT_INPUT, TEXT_OUTPUT
from gateway.version_info import VersionInfo

DIM = 8
TOKENIZER = TokenizerRegistry()
CLIP_BPE = TOKENIZER.clip_bpe(77, "lower")


def version_info(name: str = "tiny", **changes: object) -> VersionInfo:
    info = VersionInfo(
        version=name,
        image_model=f"clip-{name}-image",
        text_model=f"clip-{name}-text",
        embed_dim=DIM,
        preprocess=Preprocess(size=8),
        context_length=77,
        text_buckets=(16, 32, 77),
        image_max_batch=4,
        text_max_batch=16,
        open_clip_model=name,
        pretrained="none",
        weights_random=True,
        precision="fp32",
        tokenizer_sha256=CLIP_BPE.sha256,
    )
    return replace(info, **changes)


def row_embedding(row: np.ndarray) -> np.ndarray:
    """The fake model: a random vector seeded by the row's bytes (text rows without their padding)."""
    data = np.trim_zeros(row, "b").tobytes() if row.dtype == np.int64 else row.tobytes()
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32)


class FakeTriton:
    """Records discover/infer/ready/close calls; answers like TritonClient."""

    def __init__(self, versions: dict[str, VersionInfo] | None = None, ready: bool = True) -> None:
        self.versions = versions if versions is not None else {"tiny": version_info()}
        self.is_ready = ready
        self.calls: list[dict] = []
        self.ready_calls: list[list[str]] = []
        self.closed = False

    async def discover(self) -> dict[str, VersionInfo]:
        return dict(self.versions)

    async def ready(self, models: list[str]) -> bool:
        self.ready_calls.append(list(models))
        return self.is_ready

    async def infer(
        self, model: str, input_name: str, output_name: str, batch: np.ndarray, max_batch: int
    ) -> np.ndarray:
        self.calls.append(
            {"model": model, "input": input_name, "output": output_name, "batch": batch.copy(), "max_batch": max_batch}
        )
        return np.stack([row_embedding(row) for row in batch])

    async def follow_replicas(self) -> None:
        """One fixed Triton: nothing to re-resolve."""

    async def fetch_file(self, model: str) -> bytes:
        raise AssertionError(f"no Hugging Face tokenizer in these tests (asked for {model})")

    async def close(self) -> None:
        self.closed = True

    def text_rows(self) -> list[int]:
        return [len(c["batch"]) for c in self.calls if c["input"] == TEXT_INPUT]


def text_embedding(text: str) -> np.ndarray:
    """What the fake returns for one text, tokenized independently of the service (16-token bucket)."""
    return row_embedding(CLIP_BPE.batch([text], truncate=False, buckets=(16, 32, 77))[0])


def png_b64(color: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image(color: tuple[int, int, int]) -> InferenceRequestImage:
    return InferenceRequestImage(type="base64", value=png_b64(color))


def cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
async def make_service():
    services: list[ClipService] = []

    async def make(triton: FakeTriton | None = None, **settings: object) -> tuple[ClipService, FakeTriton]:
        fake = triton or FakeTriton()
        service = ClipService(
            Settings(_env_file=None, clip_version_id="tiny", **settings),
            fake,
            ImageFetcher(UrlPolicy()),
            TOKENIZER,
            Metrics(),
        )
        await service.refresh_versions()
        services.append(service)
        return service, fake

    yield make
    for service in services:
        await service.fetcher.aclose()
        service.close()


def counter(service: ClipService, name: str) -> float:
    return service.metrics.registry.get_sample_value(name) or 0.0


# --- text cache and de-duplication ---------------------------------------------------------------------------


async def test_text_cache_hits_skip_triton(make_service) -> None:
    service, fake = await make_service()
    first = await service.embed_texts(["a dog", "a cat"], None, truncate=False)
    assert fake.text_rows() == [2]
    assert fake.calls[0]["model"] == "clip-tiny-text" and fake.calls[0]["output"] == TEXT_OUTPUT
    assert fake.calls[0]["max_batch"] == 16 and fake.calls[0]["batch"].shape == (2, 16)
    np.testing.assert_array_equal(first[0], text_embedding("a dog"))
    np.testing.assert_array_equal(first[1], text_embedding("a cat"))

    again = await service.embed_texts(["a cat", "a dog"], None, truncate=False)
    assert fake.text_rows() == [2]  # both from the cache: no new call
    np.testing.assert_array_equal(again, first[::-1])

    mixed = await service.embed_texts(["a dog", "a bird"], None, truncate=False)
    assert fake.text_rows() == [2, 1]  # only the miss goes to Triton
    np.testing.assert_array_equal(mixed[1], text_embedding("a bird"))
    assert counter(service, "clip_gateway_text_cache_hits_total") == 3
    assert counter(service, "clip_gateway_text_cache_misses_total") == 3


async def test_cache_key_includes_truncate_and_version(make_service) -> None:
    fake = FakeTriton({"tiny": version_info(), "other": version_info("other")})
    service, _ = await make_service(fake)
    await service.embed_texts(["a dog"], None, truncate=False)
    await service.embed_texts(["a dog"], None, truncate=True)
    await service.embed_texts(["a dog"], "other", truncate=False)
    assert [c["model"] for c in fake.calls] == ["clip-tiny-text", "clip-tiny-text", "clip-other-text"]


async def test_repeated_texts_are_sent_once(make_service) -> None:
    service, fake = await make_service()
    out = await service.embed_texts(["x", "y", "x", "x", "y"], None, truncate=False)
    assert fake.text_rows() == [2]
    assert out.shape == (5, DIM)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0], out[3])
    np.testing.assert_array_equal(out[1], out[4])
    assert not np.array_equal(out[0], out[1])


async def test_cache_off_still_deduplicates(make_service) -> None:
    service, fake = await make_service(text_cache_size=0)
    await service.embed_texts(["x", "x"], None, truncate=False)
    await service.embed_texts(["x"], None, truncate=False)
    assert fake.text_rows() == [1, 1]


async def test_cache_is_bounded_lru(make_service) -> None:
    service, fake = await make_service(text_cache_size=2)
    for text in ("a", "b", "a", "c", "a", "b"):  # "b" is evicted by "c" ("a" was used more recently)
        await service.embed_texts([text], None, truncate=False)
    assert fake.text_rows() == [1, 1, 1, 1]


async def test_long_lists_use_buckets(make_service) -> None:
    service, fake = await make_service()
    texts = [f"prompt number {i}" for i in range(10)] + ["word " * 40]
    await service.embed_texts(texts, None, truncate=False)
    assert fake.calls[0]["batch"].shape == (11, 77)  # one long text: the batch goes to the 77 bucket


# --- images --------------------------------------------------------------------------------------------------


async def test_images_are_decoded_and_batched(make_service) -> None:
    service, fake = await make_service()
    out = await service.embed_images([image((255, 0, 0)), image((0, 0, 255)), png_b64((0, 255, 0))], None)
    (call,) = fake.calls
    assert call["model"] == "clip-tiny-image" and call["input"] == IMAGE_INPUT and call["output"] == IMAGE_OUTPUT
    assert call["batch"].dtype == np.uint8 and call["batch"].shape == (3, 3, 8, 8) and call["max_batch"] == 4
    assert call["batch"][0, 0].min() == 255 and call["batch"][1, 2].min() == 255 and call["batch"][2, 1].min() == 255
    assert out.shape == (3, DIM)


async def test_bad_image_names_its_index_only_in_lists(make_service) -> None:
    service, fake = await make_service()
    bad = InferenceRequestImage(type="base64", value="bm90IGFuIGltYWdl")
    with pytest.raises(ImageLoadError, match="image at index 1"):
        await service.embed_images([image((1, 2, 3)), bad], None)
    with pytest.raises(ImageLoadError) as single:
        await service.embed_images([bad], None, listed=False)
    assert "index" not in str(single.value)
    with pytest.raises(ImageLoadError, match="numpy input is refused"):
        await service.embed_images([InferenceRequestImage(type="numpy", value="x")], None)
    assert fake.calls == []


# --- compare shaping -----------------------------------------------------------------------------------------


async def test_compare_list_prompt_gives_a_list(make_service) -> None:
    service, fake = await make_service()
    sim = await service.compare("a dog", "text", ["a dog", "a cat", "a car"], "text", None, False)
    assert isinstance(sim, list) and len(sim) == 3
    assert sim[0] == pytest.approx(1.0)
    assert sim[1] == pytest.approx(cos(text_embedding("a dog"), text_embedding("a cat")), abs=1e-6)
    assert sim[2] == pytest.approx(cos(text_embedding("a dog"), text_embedding("a car")), abs=1e-6)


async def test_compare_dict_prompt_keeps_keys_in_order(make_service) -> None:
    service, _ = await make_service()
    sim = await service.compare("a dog", "text", {"z": "a cat", "a": "a dog", "m": "a car"}, "text", None, False)
    assert isinstance(sim, dict) and list(sim) == ["z", "a", "m"]
    assert sim["a"] == pytest.approx(1.0)
    assert sim["z"] == pytest.approx(cos(text_embedding("a dog"), text_embedding("a cat")), abs=1e-6)


async def test_compare_single_prompts_give_one_element_lists(make_service) -> None:
    service, fake = await make_service()
    assert await service.compare("a dog", "text", "a dog", "text", None, False) == [pytest.approx(1.0)]
    red = image((255, 0, 0))
    sim = await service.compare(red, "image", red, "image", None, False)  # one image object as the prompt
    assert sim == [pytest.approx(1.0)]
    image_calls = [c for c in fake.calls if c["input"] == IMAGE_INPUT]
    assert [len(c["batch"]) for c in image_calls] == [1, 1]


async def test_compare_image_subject_against_texts(make_service) -> None:
    service, fake = await make_service()
    sim = await service.compare(image((0, 255, 0)), "image", ["a dog", "a dog"], "text", None, False)
    image_call = next(c for c in fake.calls if c["input"] == IMAGE_INPUT)
    expected = cos(row_embedding(image_call["batch"][0]), text_embedding("a dog"))
    assert sim == [pytest.approx(expected, abs=1e-6)] * 2
    assert fake.text_rows() == [1]  # the repeated prompt went to Triton once


# --- limits and errors: refused before any Triton call -------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda s: s.embed_images([image((0, 0, 0))] * 3, None),
            LimitExceeded,
            "images that can be embedded at once is 2",
        ),
        (lambda s: s.embed_images([], None), InvalidRequest, "At least one image"),
        (lambda s: s.embed_texts(["t"] * 5, None, False), PayloadTooLarge, "texts per request is 4"),
        (lambda s: s.embed_texts([], None, False), InvalidRequest, "At least one text"),
        (lambda s: s.embed_texts(["ok", "x" * 41], None, False), LimitExceeded, "index 1 has 41 characters"),
        (lambda s: s.compare("a", "text", ["p"] * 4, "text", None, False), LimitExceeded, "compared at once is 3"),
        (lambda s: s.compare("a", "text", [], "text", None, False), InvalidRequest, "At least one prompt"),
        (lambda s: s.compare("a", "video", "p", "text", None, False), InvalidRequest, "subject_type must be"),
        (lambda s: s.compare("a", "text", "p", "audio", None, False), InvalidRequest, "prompt_type must be"),
        (lambda s: s.embed_texts(["a"], "ViT-Z-99", False), UnknownVersion, "ViT-Z-99"),
    ],
)
async def test_limits_refuse_before_triton(make_service, call, error, message) -> None:
    service, fake = await make_service(
        CLIP_MAX_BATCH_SIZE=2, max_texts_per_request=4, max_text_chars=40, max_prompts_per_compare=3
    )
    with pytest.raises(error, match=message):
        await call(service)
    assert fake.calls == []


async def test_text_prompts_must_be_strings(make_service) -> None:
    service, _ = await make_service()
    with pytest.raises(InvalidRequest, match="must be strings"):
        await service.compare("a", "text", [1], "text", None, False)


async def test_no_version_yet_is_unavailable(make_service) -> None:
    service, fake = await make_service(FakeTriton({}))
    with pytest.raises(TritonUnavailable):
        await service.embed_texts(["a"], None, False)
    assert not await service.ready() and fake.ready_calls == []


async def test_foreign_tokenizer_versions_are_not_served(make_service) -> None:
    fake = FakeTriton({"tiny": version_info(), "odd": version_info("odd", tokenizer_sha256="f" * 64)})
    service, _ = await make_service(fake)
    assert [v.version for v in service.served()] == ["tiny"]
    assert await service.ready()
    assert fake.ready_calls == [["clip-tiny-image", "clip-tiny-text"]]


# --- create_app with the injected client ---------------------------------------------------------------------


def test_create_app_uses_the_injected_triton(monkeypatch) -> None:
    for name in ("GATEWAY_API_KEYS", "GATEWAY_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeTriton()
    app = create_app(Settings(_env_file=None, clip_version_id="tiny", log_json=False), triton=fake)
    with TestClient(app) as client:
        assert client.get("/readiness").json() == {"ready": True, "versions": ["tiny"]}
        body = client.post("/clip/embed_text", json={"text": "a dog"}).json()
        assert body["embeddings"] == [pytest.approx(text_embedding("a dog").tolist())]
        info = client.get("/info").json()
        assert [v["clip_version_id"] for v in info["versions"]] == ["tiny"] and info["random_weights"]
        metrics = client.get("/metrics").text
        assert 'clip_gateway_requests_total{route="/clip/embed_text",status="200"} 1.0' in metrics
        assert 'route="/readiness"' in metrics
        assert client.get("/nope").status_code == 404
        assert 'clip_gateway_requests_total{route="other",status="404"} 1.0' in client.get("/metrics").text
    assert fake.closed  # the lifespan closed it


def test_route_set_comes_from_the_routers() -> None:
    routes = route_set(create_app(Settings(_env_file=None)))
    assert routes.limited == {"/clip/embed_image", "/clip/embed_text", "/clip/compare"}
    assert routes.limited | {"/healthz", "/readiness", "/info", "/metrics", "/docs", "/openapi.json"} <= routes.known
