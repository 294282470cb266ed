"""One tokenizer per served version, built from what its text tower's model config says.

The text tower's config names the tokenizer kind (`clip-bpe` or `hf`), its sha256, the context
length, the cleaning and the length buckets. CLIP BPE uses the vocabulary shipped with the
gateway (its hash must equal the exported one); a Hugging Face `tokenizer.json` is fetched once
from the version's tokenizer model in Triton (triton_clip/tokenizer_model.py) and hash-checked.
A version whose tokenizer cannot be matched is not served: wrong ids would be silently wrong
embeddings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from gateway.text.hf_tokenize import HFTokenizer
from gateway.text.tokenize import ClipTokenizer

FetchFile = Callable[[str], Awaitable[bytes]]


class Tokenizer(Protocol):
    context_length: int

    def batch(self, texts: Sequence[str], *, truncate: bool = False, buckets: Sequence[int] = ...) -> np.ndarray: ...


class TokenizerFacts(Protocol):
    """The fields of gateway.version_info.VersionInfo this module reads."""

    version: str
    tokenizer: str
    tokenizer_sha256: str
    tokenizer_model: str
    text_clean: str
    context_length: int


def text_buckets(params: Mapping[str, str]) -> tuple[int, ...]:
    """Length buckets the gateway may pad to: only those the export proved exact, else the full context.

    `text_buckets_exact` is written by every export since non-causal towers are served; a config
    without it predates them, when only causal towers (verified at bucket 16) could be exported.
    """
    context = int(params["context_length"])
    if params.get("text_buckets_exact", "true") != "true":
        return (context,)
    buckets = tuple(sorted(int(b) for b in params.get("text_buckets", str(context)).split(",") if b.strip()))
    return buckets if buckets and buckets[-1] == context else (context,)


class TokenizerRegistry:
    def __init__(self) -> None:
        self._clip: dict[tuple[int, str], ClipTokenizer] = {}
        self._hf: dict[str, HFTokenizer] = {}

    def clip_bpe(self, context: int, clean: str) -> ClipTokenizer:
        key = (context, clean)
        if key not in self._clip:
            self._clip[key] = ClipTokenizer(context_length=context, clean=clean)
        return self._clip[key]

    def get(self, info: TokenizerFacts) -> Tokenizer:
        if info.tokenizer == "hf":
            return self._hf[info.tokenizer_sha256]
        return self.clip_bpe(info.context_length, info.text_clean)

    async def prepare(self, info: TokenizerFacts, fetch: FetchFile) -> str | None:
        """Make `get(info)` work; returns why the version cannot be served, or None."""
        try:
            if info.tokenizer == "clip-bpe":
                tok = self.clip_bpe(info.context_length, info.text_clean)
                if info.tokenizer_sha256 and info.tokenizer_sha256 != tok.sha256:
                    return "it was exported with another CLIP BPE vocabulary than the gateway's"
                return None
            if info.tokenizer != "hf":
                return f"its tokenizer kind {info.tokenizer!r} is unknown to this gateway"
            if info.tokenizer_sha256 in self._hf:
                return None
            try:
                data = await fetch(info.tokenizer_model)
            except Exception as exc:  # noqa: BLE001 - retried at the next refresh; other versions stay served
                return f"its tokenizer model {info.tokenizer_model} could not be read ({type(exc).__name__})"
            if hashlib.sha256(data).hexdigest() != info.tokenizer_sha256:
                return f"the tokenizer file served by {info.tokenizer_model} does not match the text tower's sha256"
            tok = HFTokenizer(data, info.text_clean)
        except ValueError as exc:
            return f"its tokenizer cannot be built ({exc})"
        if tok.context_length != info.context_length:
            return f"its tokenizer pads to {tok.context_length}, the text tower takes {info.context_length}"
        self._hf[info.tokenizer_sha256] = tok
        return None
