"""One Triton + gateway serving a small model of each non-CLIP family, exported as users export them.

Each family is a tiny open_clip config that keeps what makes the family different: MobileCLIP2's
real FastViT image tower (`fastvit_mci0`, 256 px) and its non-causal text tower; Perception
Encoder's real PE-Core-T image tower (384 px) and its 32-token causal text tower; SigLIP2's
non-causal, last-token-pooled text tower behind a Hugging Face tokenizer (built here offline with
the `tokenizers` library and saved as a folder `transformers` loads, named in the config's
`hf_tokenizer_name`) with canonicalize cleaning; EVA02-B-16's timm EVA-CLIP image tower (rotary
position embeddings, SwiGLU, separate q/k/v, class-token pooling) at toy size behind a causal CLIP
text tower (tests/families/eva_tiny.py registers that timm variant). Random weights are saved as a checkpoint and
registered as a pretrained tag carrying the preprocessing of the family's real tag in open_clip
(squash and mean/std 0.5 for SigLIP/PE, bilinear and mean 0/std 1 for MobileCLIP2-S0), so the
exporter and the reference both go through open_clip's real pretrained-tag path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, GatewayServer, TritonEndpoints, run_triton, start_gateway, stop_process

TAG = "localrandom"  # open_clip normalises tags (lower case, - to _): keep it plain
SIGLIP2 = "ViT-tiny-SigLIP2"
PE_CORE = "PE-Core-tiny-16-384"
EVA = "EVA02-tiny-16"


@dataclass(frozen=True)
class Family:
    version: str
    family: str
    real_tag: tuple[str, str]  # (open_clip model, tag) whose preprocessing the test tag copies
    causal: bool


FAMILIES = [
    Family("MobileCLIP2-tiny", "mobileclip2", ("MobileCLIP2-S0", "dfndr2b"), causal=False),
    Family("PE-Core-tiny-16-384", "pe-core", ("PE-Core-T-16-384", "meta"), causal=True),
    Family(SIGLIP2, "siglip2", ("ViT-B-16-SigLIP2", "webli"), causal=False),
    Family(EVA, "eva", ("EVA02-B-16", "merged2b_s8b_b131k"), causal=True),
]
BY_VERSION = {f.version: f for f in FAMILIES}


def build_tiny_hf_tokenizer(folder: Path) -> int:
    """A Gemma-like byte-fallback BPE (pad 0, eos 1 appended), saved as a folder transformers loads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "a photo of a dog",
        "a photo of a cat",
        "the quick brown fox jumps over the lazy dog",
        "a diagram of a cell",
        "two people riding bikes in the city at night",
    ] * 20
    special = ["<pad>", "</s>", "<s>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>", unk_token="<unk>"
    )
    hf.save_pretrained(folder)
    return len(hf)


def siglip2_config(tokenizer_dir: Path, vocab_size: int) -> dict:
    """ViT-B-16-SigLIP2's text settings at toy width; a timm ViT-Tiny with SigLIP's MAP head."""
    return {
        "embed_dim": 192,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {
            "image_size": 224,
            "timm_model_name": "vit_tiny_patch16_224",
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
        },
        "text_cfg": {
            "context_length": 64,
            "vocab_size": vocab_size,
            "hf_tokenizer_name": str(tokenizer_dir),
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": 64,
            "heads": 2,
            "layers": 2,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
            "act_kwargs": {"approximate": "tanh"},
        },
    }


@pytest.fixture(scope="session")
def family_open_clip(tmp_path_factory):
    """open_clip with the family configs registered and a local pretrained tag per family."""
    import open_clip
    import torch
    from open_clip import pretrained

    from tests.families import eva_tiny  # registers the timm tower EVA02-tiny-16 names

    work = tmp_path_factory.mktemp("families")
    vocab = build_tiny_hf_tokenizer(work / "tiny-gemma-tokenizer")
    (work / f"{SIGLIP2}.json").write_text(json.dumps(siglip2_config(work / "tiny-gemma-tokenizer", vocab)))
    for path in (
        FIXTURES / "MobileCLIP2-tiny.json",
        FIXTURES / "PE-Core-tiny-16-384.json",
        work / f"{SIGLIP2}.json",
        FIXTURES / f"{EVA}.json",
    ):
        open_clip.add_model_config(path)
    for family in FAMILIES:
        torch.manual_seed(0)
        model = open_clip.create_model(family.version, pretrained=None)
        if family.family == "eva":
            eva_tiny.sharpen_attention(model)
        checkpoint = work / f"{family.version}.pt"
        torch.save(model.state_dict(), checkpoint)
        model_name, tag = family.real_tag
        cfg = {**pretrained.get_pretrained_cfg(model_name, tag), "url": "", "hf_hub": "", "file": str(checkpoint)}
        pretrained._PRETRAINED[family.version] = {TAG: cfg}
    return open_clip


@pytest.fixture(scope="session")
def family_repository(tmp_path_factory, family_open_clip) -> Path:
    from triton_clip.export import ExportRequest, export_version

    repo = tmp_path_factory.mktemp("family-repo") / "model_repository"
    for family in FAMILIES:
        export_version(ExportRequest(family.version, TAG, "cpu", cpu_threads=1), repo)
    for config in repo.glob("*/config.pbtxt"):
        # Warm-up runs (batch 32 at 384 px...) cost minutes on 2 shared cores and check nothing here.
        text = config.read_text()
        config.write_text(text[: text.index("model_warmup")] if "model_warmup" in text else text)
    return repo


@pytest.fixture(scope="session")
def family_triton(family_repository, tmp_path_factory) -> Iterator[TritonEndpoints]:
    yield from run_triton(family_repository, tmp_path_factory.mktemp("family-logs"), ready_s=300)


@pytest.fixture(scope="session")
def family_gateway(family_triton, tmp_path_factory) -> Iterator[GatewayServer]:
    log_file = tmp_path_factory.mktemp("family-gw") / "gateway.log"
    server = start_gateway(
        family_triton,
        log_file,
        CLIP_VERSION_ID=FAMILIES[0].version,
        PERCEPTION_ENCODER_VERSION_ID=PE_CORE,
        GATEWAY_TEXT_CACHE_SIZE="0",
    )
    try:
        yield server
    finally:
        stop_process(server.proc)


@pytest.fixture(scope="session")
def eager(family_open_clip):
    """version -> (model, eval transform, tokenizer): open_clip's own pipeline, nothing from this repo."""
    out = {}
    for family in FAMILIES:
        model, _, transform = family_open_clip.create_model_and_transforms(family.version, pretrained=TAG)
        out[family.version] = (model.eval(), transform, family_open_clip.get_tokenizer(family.version))
    return out
