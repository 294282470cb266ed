"""CLIP text tokenization, id-for-id identical to `open_clip.get_tokenizer("ViT-B-32")`, without torch.

The gateway turns prompts into token ids itself and sends them to Triton's text tower, so it must
produce exactly the ids the model was trained and exported with. This is a port of open_clip 3.3.0's
`SimpleTokenizer` default path ('lower' cleaning, no reduction mask); any change here is a change in
embeddings, so `tests/unit/test_tokenize.py` checks parity against open_clip itself.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import regex

from gateway.contract import PAD_ID, TEXT_BUCKETS
from gateway.errors import TextTooLong
from gateway.text.cleaning import clean_lower, get_cleaner

DEFAULT_VOCAB_PATH = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
CONTEXT_LENGTH = TEXT_BUCKETS[-1]  # 77: every OpenAI CLIP text tower
DEFAULT_BUCKETS: tuple[int, ...] = TEXT_BUCKETS
SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
END_OF_WORD = "</w>"
# open_clip keeps merges[1 : 49152 - 256 - 2 + 1]: line 0 is a header, and the vocab is 49408 =
# 256 bytes + 256 end-of-word bytes + 48894 merges + 2 special tokens.
MERGES_END = 49152 - 256 - 2 + 1
WORD_CACHE_SIZE = 65_536  # distinct words kept; open_clip's cache is unbounded, ours must not be
TOKEN_DTYPE = np.int64  # what Triton's text tower takes (torch.long in open_clip)
# Special tokens come first so that a prompt literally containing "<start_of_text>" maps to the
# special id, exactly like open_clip (the model saw the same quirk).
TOKEN_PATTERN = (
    regex.escape(SOT_TOKEN)
    + "|"
    + regex.escape(EOT_TOKEN)
    + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


def bytes_to_unicode() -> dict[int, str]:
    """Byte -> printable character table, so BPE never sees whitespace/control characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    byte_values, code_points = printable[:], printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            code_points.append(256 + extra)
            extra += 1
    return dict(zip(byte_values, map(chr, code_points)))


clean = clean_lower  # open_clip's default for CLIP BPE ('lower')


def bucket_length(n_tokens: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= n_tokens: Triton only batches equal shapes, so lengths snap to a few."""
    fitting = [b for b in buckets if b >= n_tokens]
    if not fitting:
        raise ValueError(f"{n_tokens} tokens do not fit in any bucket of {tuple(buckets)}")
    return min(fitting)


class ClipTokenizer:
    """Torch-free OpenAI CLIP BPE tokenizer; thread-safe (the only shared state is an lru_cache)."""

    def __init__(
        self,
        vocab_path: Path | None = None,
        context_length: int = CONTEXT_LENGTH,
        sot_id: int | None = None,
        eot_id: int | None = None,
        clean: str = "lower",
    ) -> None:
        path = Path(vocab_path) if vocab_path is not None else DEFAULT_VOCAB_PATH
        raw = path.read_bytes()
        self._sha256 = hashlib.sha256(raw).hexdigest()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")[1:MERGES_END]
        merges = [tuple(line.split()) for line in lines]
        self._byte_encoder = bytes_to_unicode()
        symbols = list(self._byte_encoder.values())
        vocab = symbols + [s + END_OF_WORD for s in symbols] + ["".join(m) for m in merges]
        vocab += [SOT_TOKEN, EOT_TOKEN]
        self._encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self._ranks: dict[tuple[str, ...], int] = {m: i for i, m in enumerate(merges)}
        self._special: dict[str, int] = {t: self._encoder[t] for t in (SOT_TOKEN, EOT_TOKEN)}
        # Explicit ids (e.g. from the export manifest) are checked, not trusted: a mismatch means the
        # vocab file is not the one the model was exported with.
        for name, given, token in (("sot_id", sot_id, SOT_TOKEN), ("eot_id", eot_id, EOT_TOKEN)):
            actual = self._special[token]
            if given is not None and given != actual:
                raise ValueError(f"{name}={given} but the vocab at {path} says {actual}")
        self.sot_id: int = self._special[SOT_TOKEN]
        self.eot_id: int = self._special[EOT_TOKEN]
        self.context_length = context_length
        self._clean = get_cleaner(clean)
        self.vocab_size = len(self._encoder)
        self._pattern = regex.compile(TOKEN_PATTERN, regex.IGNORECASE)
        self._word_ids = lru_cache(maxsize=WORD_CACHE_SIZE)(self._word_ids_uncached)

    @property
    def sha256(self) -> str:
        """sha256 of the vocab file, to compare with the one recorded when the model was exported."""
        return self._sha256

    def _bpe(self, token: str) -> list[str]:
        """open_clip's greedy merge loop: repeatedly merge the lowest-ranked adjacent pair."""
        word: tuple[str, ...] = (*token[:-1], token[-1] + END_OF_WORD)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            first, second = min(pairs, key=lambda p: self._ranks.get(p, float("inf")))
            if (first, second) not in self._ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return list(word)

    def _word_ids_uncached(self, token: str) -> tuple[int, ...]:
        """Ids of one pre-tokenized word (a regex match); special-token literals map to their id."""
        if token in self._special:
            return (self._special[token],)
        symbols = "".join(self._byte_encoder[b] for b in token.encode("utf-8"))
        return tuple(self._encoder[piece] for piece in self._bpe(symbols))

    def encode(self, text: str) -> list[int]:
        """BPE ids of `text` without sot/eot; words go through a bounded LRU (prompts repeat a lot)."""
        ids: list[int] = []
        for token in self._pattern.findall(self._clean(text)):
            ids.extend(self._word_ids(token))
        return ids

    def tokenize(self, text: str, *, truncate: bool = False) -> list[int]:
        """[sot, ...ids, eot], unpadded; too long -> TextTooLong, or open_clip's truncation.

        open_clip truncates as `tokens[:context_length]` then overwrites the last one with eot, i.e.
        it keeps sot + the first context_length - 2 ids + eot.
        """
        tokens = [self.sot_id, *self.encode(text), self.eot_id]
        if len(tokens) > self.context_length:
            if not truncate:
                raise TextTooLong()
            tokens = tokens[: self.context_length]
            tokens[-1] = self.eot_id
        return tokens

    def batch(
        self, texts: Sequence[str], *, truncate: bool = False, buckets: Sequence[int] = DEFAULT_BUCKETS
    ) -> np.ndarray:
        """int64 [N, L] zero-padded after eot, L the smallest bucket holding the longest text.

        Equal to the first L columns of open_clip's [N, 77] tensor (the rest are zero there);
        raises TextTooLong(index=i) for the first text that does not fit and truncate is off.
        """
        if not buckets or max(buckets) != self.context_length:
            raise ValueError(f"buckets {tuple(buckets)} must end at context_length {self.context_length}")
        rows: list[list[int]] = []
        for i, text in enumerate(texts):
            try:
                rows.append(self.tokenize(text, truncate=truncate))
            except TextTooLong:
                raise TextTooLong(index=i) from None
        length = bucket_length(max((len(r) for r in rows), default=0), buckets)
        out = np.full((len(rows), length), PAD_ID, dtype=TOKEN_DTYPE)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out
