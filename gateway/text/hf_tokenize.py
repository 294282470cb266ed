"""Hugging Face tokenizers (SigLIP, SigLIP2, ...) through the `tokenizers` library: no torch, no transformers.

The exporter writes the exact `tokenizers.Tokenizer` that transformers runs inside open_clip's
`HFTokenizer`, with open_clip's fixed padding and truncation to the model's context baked into
the file (`tokenizer.json`), and proves at export that it reproduces open_clip's ids. The gateway
receives that file from Triton (see gateway/text/registry.py), checks its sha256 against the one
in the text tower's config, and only adds the cleaning open_clip applies before tokenizing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from gateway.errors import TextTooLong
from gateway.text.cleaning import get_cleaner

TOKEN_DTYPE = np.int64


class HFTokenizer:
    """Thread-safe (`encode_batch` releases the GIL and keeps no per-call state on the object)."""

    def __init__(self, tokenizer_json: bytes, clean: str) -> None:
        self.sha256 = hashlib.sha256(tokenizer_json).hexdigest()
        spec = json.loads(tokenizer_json)
        padding, truncation = spec.get("padding") or {}, spec.get("truncation") or {}
        fixed = (padding.get("strategy") or {}).get("Fixed") if isinstance(padding.get("strategy"), dict) else None
        if not fixed or truncation.get("max_length") != fixed:
            raise ValueError("tokenizer.json must pad and truncate to the model's context (written by the exporter)")
        self.context_length = int(fixed)
        self.pad_id = int(padding["pad_id"])
        self._tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self._clean = get_cleaner(clean)

    def batch(self, texts: Sequence[str], *, truncate: bool = False, buckets: Sequence[int] = ()) -> np.ndarray:
        """int64 [N, context]: always the full context (these towers are never length-bucketed).

        Raises TextTooLong(index=i) for the first text over the context unless `truncate`, where it
        is cut exactly as open_clip's `HFTokenizer` cuts it (`truncation=True`).
        """
        if buckets and tuple(buckets) != (self.context_length,):
            raise ValueError(f"HF tokenizers pad to the full context {self.context_length}, not {tuple(buckets)}")
        encodings = self._tokenizer.encode_batch([self._clean(t) for t in texts])
        if not truncate:
            for i, encoding in enumerate(encodings):
                if encoding.overflowing:
                    raise TextTooLong(index=i)
        out = np.full((len(encodings), self.context_length), self.pad_id, dtype=TOKEN_DTYPE)
        for i, encoding in enumerate(encodings):
            out[i] = encoding.ids
        return out
