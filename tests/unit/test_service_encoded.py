"""ClipService with GATEWAY_IMAGE_TRANSPORT=encoded against the recording fake Triton (tests/unit/test_service.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from gateway.contract import ENCODED_INPUT, IMAGE_OUTPUT, format_image_error
from gateway.errors import ImageLoadError, image_error_from_triton
from tests.unit.test_service import DIM, FakeTriton, image, make_service, version_info  # noqa: F401 - fixture

ENSEMBLE = "clip-tiny-image-encoded"


class EncodedTriton(FakeTriton):
    """Answers the ensemble like Triton: a file that is not decodable fails with the preprocessing model's error."""

    async def infer(self, model, input_name, output_name, batch, max_batch):  # noqa: ANN001, ANN201
        if model == ENSEMBLE and batch.tobytes().endswith(b"TRUNCATED"):
            self.calls.append({"model": model, "input": input_name, "batch": batch.copy()})
            message = f"in ensemble '{model}', " + format_image_error("not_image", "Data is not image.")
            raise image_error_from_triton(message)
        if model == ENSEMBLE:
            self.calls.append(
                {
                    "model": model,
                    "input": input_name,
                    "output": output_name,
                    "batch": batch.copy(),
                    "max_batch": max_batch,
                }
            )
            return np.full((1, DIM), float(len(batch[0])), dtype=np.float32)
        return await super().infer(model, input_name, output_name, batch, max_batch)


def png(color=(10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 10), color).save(buf, "PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_encoded_sends_each_files_bytes_to_the_ensemble(make_service) -> None:  # noqa: F811
    fake = EncodedTriton({"tiny": version_info(encoded_model=ENSEMBLE)})
    service, _ = await make_service(fake, image_transport="encoded")
    files = [png((1, 2, 3)), png((200, 0, 0))]
    out = await service.embed_images([b64(f) for f in files], None)
    assert [c["model"] for c in fake.calls] == [ENSEMBLE, ENSEMBLE]
    assert all(c["input"] == ENCODED_INPUT and c["output"] == IMAGE_OUTPUT for c in fake.calls)
    assert [c["batch"].tobytes() for c in fake.calls] == files and fake.calls[0]["batch"].shape == (1, len(files[0]))
    assert out.shape == (2, DIM) and out[1, 0] == len(files[1])
    assert ENSEMBLE in (await _ready_models(service, fake))


async def _ready_models(service, fake) -> list[str]:  # noqa: ANN001
    await service.ready()
    return fake.ready_calls[-1]


async def test_header_errors_stay_in_the_gateway_decode_errors_come_from_triton(make_service) -> None:  # noqa: F811
    fake = EncodedTriton({"tiny": version_info(encoded_model=ENSEMBLE)})
    service, _ = await make_service(fake, image_transport="encoded")
    with pytest.raises(ImageLoadError, match="image at index 1: Data is not image"):
        await service.embed_images([b64(png()), b64(b"not an image at all")], None)
    assert [c["batch"].tobytes() for c in fake.calls] == [png()]  # the bad header never reached Triton
    fake.calls.clear()
    with pytest.raises(ImageLoadError) as err:
        await service.embed_images([b64(png()), b64(png()), b64(png() + b"TRUNCATED")], None)
    assert err.value.message == "Could not load input image. Cause: image at index 2: Data is not image."
    assert err.value.status_code == 400 and len(fake.calls) == 3


async def test_version_without_ensemble_stays_on_tensor(make_service, caplog) -> None:  # noqa: F811
    fake = EncodedTriton({"tiny": version_info()})
    service, _ = await make_service(fake, image_transport="encoded")
    assert service.image_transport(service.versions["tiny"]) == "tensor"
    assert "no encoded-image ensemble" in caplog.text
    await service.embed_images([image((255, 0, 0))], None)
    assert fake.calls[0]["model"] == "clip-tiny-image"


async def test_default_is_tensor_even_with_an_ensemble(make_service) -> None:  # noqa: F811
    fake = EncodedTriton({"tiny": version_info(encoded_model=ENSEMBLE)})
    service, _ = await make_service(fake)
    await service.embed_images([image((255, 0, 0))], None)
    assert fake.calls[0]["model"] == "clip-tiny-image"
