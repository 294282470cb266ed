"""The text embeddings' LRU cache and the de-duplication of repeated texts (no Triton, no tokenizer here).

Class prompts repeat across compare calls, and one request may repeat a text: each distinct text that is
not cached is computed once, by the function the service passes in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Awaitable, Callable

import numpy as np

from gateway.metrics import Metrics

Key = tuple[str, bool, str]  # (version, truncate, text)


class TextCache:
    """Bounded LRU of text embeddings (size 0: nothing is kept, repeated texts are still sent once)."""

    def __init__(self, size: int, metrics: Metrics) -> None:
        self.size = size
        self.metrics = metrics
        self._items: OrderedDict[Key, np.ndarray] = OrderedDict()

    def get(self, key: Key) -> np.ndarray | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Key, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    async def embed(
        self,
        version: str,
        truncate: bool,
        texts: list[str],
        dim: int,
        compute: Callable[[list[str]], Awaitable[np.ndarray]],
    ) -> np.ndarray:
        """One row per text: cached rows as they are; the others computed once per distinct text, then cached."""
        keys = [(version, truncate, t) for t in texts]
        out = np.empty((len(texts), dim), dtype=np.float32)
        missing = []
        for i, key in enumerate(keys):
            cached = self.get(key)
            if cached is None:
                missing.append(i)
            else:
                out[i] = cached
        self.metrics.cache_hits.inc(len(texts) - len(missing))
        self.metrics.cache_misses.inc(len(missing))
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            by_text = dict(zip(unique, await compute(unique), strict=True))
            for i in missing:
                out[i] = by_text[texts[i]]
                self.put(keys[i], out[i].copy())
        return out
