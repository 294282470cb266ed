"""open_clip 3.3.0's text cleaning (`tokenizer.get_clean_fn`), without torch.

Each exported text tower records which cleaning its tokenizer applies (`text_clean`): CLIP BPE
uses 'lower', SigLIP/SigLIP2 'canonicalize' (punctuation removed, lower-cased), other HF
tokenizers 'whitespace'. A different cleaning is a different token sequence, so these are
exact ports, checked against open_clip in tests/unit/test_cleaning.py.
"""

from __future__ import annotations

import html
import string
from collections.abc import Callable

import ftfy

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def basic_clean(text: str) -> str:
    """Fix mojibake, unescape HTML twice, strip."""
    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


def clean_lower(text: str) -> str:
    return whitespace_clean(basic_clean(text)).lower()


def clean_whitespace(text: str) -> str:
    return whitespace_clean(basic_clean(text))


def clean_canonicalize(text: str) -> str:
    """big_vision's `canonicalize_text` after basic_clean: '_' to space, no ASCII punctuation, lower-case."""
    text = basic_clean(text).replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split()).strip()


CLEANERS: dict[str, Callable[[str], str]] = {
    "lower": clean_lower,
    "whitespace": clean_whitespace,
    "canonicalize": clean_canonicalize,
}


def get_cleaner(mode: str) -> Callable[[str], str]:
    if mode not in CLEANERS:
        raise ValueError(f"unknown text cleaning {mode!r}; known: {', '.join(CLEANERS)}")
    return CLEANERS[mode]
