"""Parity of gateway.text.tokenize with open_clip's ViT-B-32 tokenizer (the reference, torch allowed here).

Any id that differs from open_clip is a different embedding in production, so every case compares
against the real open_clip tokenizer rather than against hard-coded ids.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import open_clip
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import TextTooLong
from gateway.text.tokenize import (
    CONTEXT_LENGTH,
    DEFAULT_BUCKETS,
    DEFAULT_VOCAB_PATH,
    WORD_CACHE_SIZE,
    ClipTokenizer,
    bucket_length,
)


REPO_ROOT = Path(__file__).resolve().parents[2]
ONE_TOKEN_WORD = "cat"  # a single BPE token; asserted below with open_clip itself


def words_for_total(total: int) -> str:
    """Text whose tokenization is exactly `total` ids including sot and eot."""
    return " ".join([ONE_TOKEN_WORD] * (total - 2))


TEXT_76, TEXT_77, TEXT_78 = (words_for_total(n) for n in (76, 77, 78))

CORPUS: list[str] = [
    # plain / mixed case
    "a photo of a cat",
    "A Photo Of A Dog",
    "HeLLo WoRLD",
    "ALL CAPS PROMPT",
    "x",
    # unicode letters, CJK, RTL
    "café naïve résumé façade",
    "Ångström über straße",
    "東京タワーの写真",
    "一只猫坐在垫子上",
    "한국어 문장입니다",
    "مرحبا بالعالم",
    "שלום עולם",
    "abc \u200fمرحبا\u200e def",
    "Ελληνικά κείμενα",
    "Привет, мир!",
    "हिन्दी पाठ",
    "İstanbul ıi",
    "ﬁne ligature",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
    # emoji and sequences
    "😀",
    "a dog 🐶 on a 🛹",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "🇺🇸🇯🇵🇫🇷 flags",
    "👍🏽👍🏿 thumbs",
    "❤️ love",
    "🏳️\u200d🌈",
    "#️⃣ keycap",
    # HTML entities, including double escaping (open_clip unescapes twice)
    "tom &amp; jerry",
    "&lt;b&gt;bold&lt;/b&gt;",
    "it&#39;s",
    "&amp;amp; twice",
    "&amp;amp;amp; thrice",
    "&quot;quoted&quot; &nbsp;space",
    "&#x1F600; hex entity",
    "&unknown; entity",
    # mojibake ftfy repairs
    "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
    "cafÃ©",
    "Ã¼ber",
    "â€œsmart quotesâ€\x9d",
    # odd whitespace and control characters
    "tab\tseparated\twords",
    "line\nbreaks\r\nhere",
    "nbsp\xa0here",
    "zero\u200bwidth",
    "ideographic\u3000space",
    "  leading and trailing  ",
    "\x00nul\x1b[31mansi",
    "\ud800 lone surrogate",
    # empty / whitespace / punctuation / numbers
    "",
    " ",
    "\t\n \u3000\xa0",
    "!!!",
    "...?!",
    "--- *** ---",
    "12345",
    "3.14159",
    "1,000,000 dollars",
    "2024-01-01T00:00:00Z",
    "½ ² ٣ numbers",
    "#hashtag @mention https://example.com/a?b=c",
    # contractions
    "it's don't they're we've i'm you'll he'd",
    "IT'S DON'T THEY'RE",
    "rock 'n' roll",
    "o'clock y'all",
    # special-token literals (open_clip maps them to the special ids; we must too)
    "<start_of_text>",
    "before <end_of_text> after",
    "<START_OF_TEXT>",
    "<|endoftext|>",
    # long words and long texts
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "a" * 300,
    "ab" * 100,
    "lorem ipsum dolor sit amet " * 30,
    TEXT_76,
    TEXT_77,
    TEXT_78,
]


@pytest.fixture(scope="module")
def ref():
    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return ClipTokenizer()


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 60


def test_length_fixtures_are_what_they_claim(ref):
    assert len(ref.encode(ONE_TOKEN_WORD)) == 1
    for text, total in ((TEXT_76, 76), (TEXT_77, 77), (TEXT_78, 78)):
        assert len(ref.encode(text)) + 2 == total


def test_vit_b_16_uses_the_same_tokenizer(ref):
    other = open_clip.get_tokenizer("ViT-B-16")
    assert other(CORPUS[:20]).equal(ref(CORPUS[:20]))


@pytest.mark.parametrize("text", CORPUS)
def test_ids_match_open_clip(tok: ClipTokenizer, ref, text: str):
    expected = ref([text])[0].numpy()
    ids = tok.tokenize(text, truncate=True)
    assert ids == expected[: len(ids)].tolist()
    assert not expected[len(ids) :].any()
    assert ids[0] == tok.sot_id == 49406 and ids[-1] == tok.eot_id == 49407
    if len(ref.encode(text)) + 2 <= CONTEXT_LENGTH:
        assert tok.encode(text) == ref.encode(text)
        assert tok.tokenize(text) == ids


def test_77_passes_78_raises(tok: ClipTokenizer, ref):
    assert len(tok.tokenize(TEXT_76)) == 76
    assert tok.tokenize(TEXT_77) == ref([TEXT_77])[0].tolist()
    with pytest.raises(TextTooLong):
        tok.tokenize(TEXT_78)


def test_truncate_matches_open_clip(tok: ClipTokenizer, ref):
    for text in (TEXT_78, "a photo of a cat. " * 20, "lorem ipsum dolor sit amet " * 30):
        ids = tok.tokenize(text, truncate=True)
        assert len(ids) == CONTEXT_LENGTH
        assert ids == ref([text])[0].tolist()
        # open_clip's rule: keep the first 77 (sot + 76 ids), then overwrite the last with eot.
        assert ids[1:-1] == tok.encode(text)[: CONTEXT_LENGTH - 2]


@pytest.mark.parametrize(
    ("n", "expected"), [(0, 16), (1, 16), (2, 16), (16, 16), (17, 32), (32, 32), (33, 77), (77, 77)]
)
def test_bucket_length(n: int, expected: int):
    assert bucket_length(n, DEFAULT_BUCKETS) == expected
    assert bucket_length(n, tuple(reversed(DEFAULT_BUCKETS))) == expected


def test_bucket_length_too_long():
    with pytest.raises(ValueError):
        bucket_length(78, DEFAULT_BUCKETS)


def test_batch_matches_open_clip_columns(tok: ClipTokenizer, ref):
    for start in range(0, len(CORPUS), 7):
        texts = CORPUS[start : start + 7]
        out = tok.batch(texts, truncate=True)
        expected = ref(texts).numpy()
        longest = max(len(tok.tokenize(t, truncate=True)) for t in texts)
        length = bucket_length(longest, DEFAULT_BUCKETS)
        assert out.dtype == np.int64 and out.shape == (len(texts), length)
        np.testing.assert_array_equal(out, expected[:, :length])
        assert not expected[:, length:].any()


@pytest.mark.parametrize(
    ("texts", "length"),
    [
        (["a photo of a cat", ""], 16),
        ([ONE_TOKEN_WORD] * 3, 16),
        ([words_for_total(16)], 16),
        ([words_for_total(17), "x"], 32),
        ([words_for_total(33)], 77),
        ([TEXT_77, "x"], 77),
    ],
)
def test_batch_picks_the_bucket(tok: ClipTokenizer, ref, texts: list[str], length: int):
    out = tok.batch(texts)
    assert out.shape == (len(texts), length)
    np.testing.assert_array_equal(out, ref(texts).numpy()[:, :length])


def test_batch_empty(tok: ClipTokenizer):
    assert tok.batch([]).shape == (0, min(DEFAULT_BUCKETS))


def test_batch_too_long_names_first_index(tok: ClipTokenizer):
    with pytest.raises(TextTooLong) as err:
        tok.batch(["ok", TEXT_77, TEXT_78, "a" * 300])
    assert "text at index 2" in err.value.message
    assert tok.batch(["ok", TEXT_78], truncate=True).shape == (2, CONTEXT_LENGTH)


def test_batch_custom_buckets(tok: ClipTokenizer, ref):
    out = tok.batch(["a photo of a cat"], buckets=(8, 77))
    np.testing.assert_array_equal(out, ref(["a photo of a cat"]).numpy()[:, :8])
    with pytest.raises(ValueError):
        tok.batch(["x"], buckets=(16, 32))


def test_sha256_and_special_ids(tok: ClipTokenizer):
    shipped = DEFAULT_VOCAB_PATH.read_bytes()
    reference = Path(open_clip.tokenizer.default_bpe()).read_bytes()
    assert shipped == reference
    assert tok.sha256 == hashlib.sha256(reference).hexdigest()
    assert ClipTokenizer(sot_id=49406, eot_id=49407).eot_id == 49407
    with pytest.raises(ValueError):
        ClipTokenizer(eot_id=0)


def test_word_cache_is_bounded(tok: ClipTokenizer):
    tok.encode("a photo of a cat")
    assert tok._word_ids.cache_info().maxsize == WORD_CACHE_SIZE


# Raw unicode finds encoding/regex surprises; the piece alphabet hits entities, contractions, emoji
# modifiers and whitespace far more often than uniform sampling would.
PIECES = [
    "cat",
    "Photo",
    " ",
    "\t",
    "\xa0",
    "\u3000",
    "\u200b",
    "\u200d",
    "&amp;",
    "&lt;",
    "&#39;",
    "'s",
    "'LL",
    "Ã©",
    "é",
    "東京",
    "مرحبا",
    "👍",
    "🏽",
    "🇺",
    "!",
    "?..",
    "42",
    "½",
    "<end_of_text>",
    "straße",
]
TEXTS = st.one_of(st.text(max_size=120), st.lists(st.sampled_from(PIECES), max_size=60).map("".join))


@settings(max_examples=200, deadline=None, database=None)
@given(TEXTS)
def test_random_unicode_matches_open_clip(text: str):
    ref, tok = _reference_and_port()
    expected = ref([text])[0].numpy()
    ids = tok.tokenize(text, truncate=True)
    assert ids == expected[: len(ids)].tolist() and not expected[len(ids) :].any()
    if len(ref.encode(text)) + 2 <= CONTEXT_LENGTH:
        assert tok.tokenize(text) == ids


@functools.cache
def _reference_and_port() -> tuple:
    """Built once: hypothesis tests cannot take function-scoped fixtures, and both are slow to build."""
    return open_clip.get_tokenizer("ViT-B-32"), ClipTokenizer()


def test_import_does_not_pull_torch():
    code = (
        "import sys, gateway.text.tokenize as t; t.ClipTokenizer().batch(['a cat']); "
        "bad = [m for m in ('torch', 'open_clip') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
