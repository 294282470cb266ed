"""Cosine similarity as upstream computes it: raw embeddings, no logit scale, no softmax.

A zero vector has no direction, so its cosine with anything is defined as 0.0 (upstream
would divide by zero and emit NaN, which is not valid JSON). Results are clipped to [-1, 1]
so float rounding never reports a cosine of 1.0000001.
"""

from __future__ import annotations

import numpy as np


def cosine(subject: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Cosine of one vector [D] against each row of [N, D], in float64; zero/non-finite norms give 0.0."""
    a = np.asarray(subject, dtype=np.float64).reshape(-1)
    b = np.asarray(prompts, dtype=np.float64).reshape(-1, a.shape[0])
    denom = np.linalg.norm(b, axis=1) * np.linalg.norm(a)
    dots = b @ a
    ok = np.isfinite(dots) & np.isfinite(denom) & (denom > 0)
    out = np.zeros(len(b), dtype=np.float64)
    out[ok] = np.clip(dots[ok] / denom[ok], -1.0, 1.0)
    return out


def shape_similarity(values: np.ndarray, keys: list[str] | None) -> list[float] | dict[str, float]:
    """A list for list/str/single-image prompts, a dict (same key order) for named prompts."""
    floats = [float(v) for v in values]
    return dict(zip(keys, floats, strict=True)) if keys is not None else floats
