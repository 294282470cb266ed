"""Family facts the gateway relies on: cleaning modes, context lengths and the bucket rule, against open_clip."""

from __future__ import annotations

import numpy as np
import open_clip.tokenizer as open_clip_tokenizer
import pytest

from gateway.text.cleaning import CLEANERS
from gateway.text.hf_tokenize import HFTokenizer
from gateway.text.registry import text_buckets
from gateway.text.tokenize import ClipTokenizer
from tests.integration.test_parity import OVER, TEXTS
from triton_clip.families import family_of

HOSTILE = [*TEXTS, *OVER, "snake_case_words and under_scores", "Punctuation!? (yes) [no] {maybe} #tag @user"]


@pytest.mark.parametrize("mode", sorted(CLEANERS))
def test_cleaning_equals_open_clip(mode: str) -> None:
    reference = open_clip_tokenizer.get_clean_fn(mode)
    assert [CLEANERS[mode](t) for t in HOSTILE] == [reference(t) for t in HOSTILE]


def test_cleaning_modes_differ_on_the_corpus() -> None:
    """Sensitivity: a gateway using the wrong mode would be caught by the parity above."""
    outputs = {mode: [fn(t) for t in HOSTILE] for mode, fn in CLEANERS.items()}
    assert len({tuple(v) for v in outputs.values()}) == len(CLEANERS)


def test_clip_bpe_at_perception_encoders_context_of_32() -> None:
    import open_clip

    reference = open_clip.get_tokenizer("PE-Core-T-16-384")
    assert reference.context_length == 32
    tok = ClipTokenizer(context_length=32)
    got = np.stack([tok.batch([t], truncate=True, buckets=(32,))[0] for t in HOSTILE])
    assert np.array_equal(got, reference(HOSTILE).numpy())


def test_buckets_only_when_the_export_proved_them_exact() -> None:
    exact = {"context_length": "77", "text_buckets": "16,32,77", "text_buckets_exact": "true"}
    assert text_buckets(exact) == (16, 32, 77)
    assert text_buckets({"context_length": "77", "text_buckets": "16,32,77", "text_buckets_exact": "false"}) == (77,)
    assert text_buckets({"context_length": "64", "text_buckets": "64", "text_buckets_exact": "false"}) == (64,)
    # Exports from before non-causal towers were served: only causal towers, verified at bucket 16.
    assert text_buckets({"context_length": "77", "text_buckets": "16,32,77"}) == (16, 32, 77)
    assert text_buckets({"context_length": "32", "text_buckets": "16,77"}) == (32,)  # must end at the context


def test_hf_tokenizer_file_must_pad_to_a_fixed_context() -> None:
    from tokenizers import Tokenizer, models

    bare = Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")).to_str().encode()
    with pytest.raises(ValueError, match="pad and truncate"):
        HFTokenizer(bare, "whitespace")


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ViT-B-16", "clip"),
        ("ViT-B-16-SigLIP", "siglip"),
        ("ViT-SO400M-14-SigLIP2", "siglip2"),
        ("PE-Core-L-14-336", "pe-core"),
        ("MobileCLIP-S1", "mobileclip"),
        ("MobileCLIP2-S0", "mobileclip2"),
        ("EVA02-B-16", "eva"),
        ("EVA01-g-14", "eva"),
        ("EVA02-L-14-336", "eva"),
    ],
)
def test_family_names(name: str, family: str) -> None:
    assert family_of(name) == family


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_tokenizer_model_config_parses_and_serves_the_file(tmp_path, target: str) -> None:
    import torch
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from triton_clip.tokenizer_model import write_tokenizer_model

    data = '{"ünïcode": true}'.encode() * 3
    folder = tmp_path / "clip-x-tokenizer"
    write_tokenizer_model(folder, "x", target, "tokenizer.json", data, {"tokenizer": "hf", "tokenizer_sha256": "abc"})
    cfg = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert cfg.parameters["tower"].string_value == "tokenizer" and cfg.parameters["clip_version"].string_value == "x"
    assert (cfg.platform == "pytorch_libtorch") == (target == "gpu")
    module = torch.jit.load(str(folder / "1" / "model.pt"))
    out = module(torch.zeros(2, 1, dtype=torch.uint8))
    assert out.shape == (2, len(data)) and bytes(out[1].numpy()) == data == (folder / "tokenizer.json").read_bytes()
