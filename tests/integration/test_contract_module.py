"""gateway/contract.py is the one place both sides take names from: a freshly exported config, read back
from the real Triton, agrees with it and with what the gateway derives from it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

from gateway import contract
from gateway.contract import Param
from gateway.version_info import versions_from_configs

ROOT = Path(__file__).resolve().parents[2]
TINY = "clip-tiny"


def _configs(triton) -> list[dict]:  # noqa: ANN001
    names = contract.model_names(TINY)
    return [httpx.get(triton.url(f"/v2/models/{n}/config"), timeout=10).json() for n in names]


def test_exported_configs_and_gateway_agree_through_the_contract(triton) -> None:
    image, text = _configs(triton)
    assert (image["name"], text["name"]) == contract.model_names(TINY)
    assert (image["input"][0]["name"], image["output"][0]["name"]) == contract.TENSORS["image"]
    assert (text["input"][0]["name"], text["output"][0]["name"]) == contract.TENSORS["text"]
    params = {k: v["string_value"] for k, v in text["parameters"].items()}
    assert int(params[Param.SOT_ID]) == contract.SOT_ID and int(params[Param.EOT_ID]) == contract.EOT_ID
    context = int(params[Param.CONTEXT_LENGTH])
    assert contract.parse_buckets(params[Param.TEXT_BUCKETS]) == contract.text_buckets(context)
    # Every parameter key the exporter writes for the gateway is one the contract names.
    keys = {v for k, v in vars(Param).items() if not k.startswith("_")}
    assert {Param.CLIP_VERSION, Param.TOWER, Param.EMBED_DIM, Param.ACTIVATION} <= set(params) & keys

    info = versions_from_configs([image, text])[TINY]
    assert (info.image_model, info.text_model) == contract.model_names(TINY)
    assert info.text_buckets == contract.text_buckets(context) and info.context_length == context
    assert info.activation == params[Param.ACTIVATION]


def test_tokenizer_special_ids_are_the_contract_ones() -> None:
    from gateway.text.tokenize import ClipTokenizer

    tok = ClipTokenizer()
    assert (tok.sot_id, tok.eot_id) == (contract.SOT_ID, contract.EOT_ID)


def test_contract_is_dependency_free_and_shipped_to_both_images() -> None:
    tree = ast.parse((ROOT / "gateway" / "contract.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "re", "collections"}
    assert "COPY gateway/ gateway/" in (ROOT / "gateway" / "Dockerfile").read_text()
    for dockerfile in ("docker/export.Dockerfile", "docker/triton-cpu.Dockerfile"):
        assert "COPY gateway/__init__.py gateway/contract.py gateway/" in (ROOT / dockerfile).read_text()


def test_bucket_rule() -> None:
    assert contract.text_buckets(77) == (16, 32, 77)
    assert contract.text_buckets(64) == (16, 32, 64) and contract.text_buckets(16) == (16,)
