"""gateway.similarity: plain cosine as upstream computes it, made safe for JSON (no NaN, clipped)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gateway.similarity import cosine, shape_similarity


def one(a, b) -> float:
    out = cosine(np.asarray(a, dtype=np.float32), np.asarray([b], dtype=np.float32))
    assert out.shape == (1,)
    return float(out[0])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 0, 0], [3, 0, 0], 1.0),  # parallel
        ([1, 2, 3], [-1, -2, -3], -1.0),  # antiparallel
        ([1, 0], [0, 5], 0.0),  # orthogonal
        ([1, 1, 0, 0], [0, 0, 2, -2], 0.0),
        ([1, 0], [1, 1], math.sqrt(0.5)),  # 45 degrees
        ([1, 0], [0.5, math.sqrt(3) / 2], 0.5),  # 60 degrees
        ([1, 0], [-0.5, math.sqrt(3) / 2], -0.5),  # 120 degrees
    ],
)
def test_known_vectors(a, b, expected):
    assert one(a, b) == pytest.approx(expected, abs=1e-7)


def test_matches_upstream_formula_on_random_vectors():
    rng = np.random.default_rng(0)
    a = rng.normal(size=512).astype(np.float32)
    b = rng.normal(size=(9, 512)).astype(np.float32)
    # roboflow/inference core/utils/postprocess.py: np.dot(a, b) / np.sqrt(np.vdot(a, a) * np.vdot(b, b))
    want = [float(np.dot(a, r) / np.sqrt(np.vdot(a, a) * np.vdot(r, r))) for r in b]
    np.testing.assert_allclose(cosine(a, b), want, rtol=1e-5, atol=1e-6)


def test_scale_invariant():
    rng = np.random.default_rng(1)
    a = rng.normal(size=32)
    b = rng.normal(size=(4, 32))
    base = cosine(a, b)
    for s_a, s_b in [(1e-3, 1.0), (1.0, 1e4), (7.5, 0.25), (1e-20, 1e20)]:
        np.testing.assert_allclose(cosine(a * s_a, b * s_b), base, rtol=1e-12, atol=1e-12)
    # a negative scale flips the sign only
    np.testing.assert_allclose(cosine(-a, b), -base, rtol=1e-12, atol=1e-12)


def test_float64_result_for_float32_input():
    out = cosine(np.ones(4, dtype=np.float32), np.ones((2, 4), dtype=np.float32))
    assert out.dtype == np.float64
    assert out.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("a", "rows"),
    [
        ([0, 0, 0], [[1, 2, 3], [0, 1, 0]]),  # zero subject
        ([1, 2, 3], [[0, 0, 0]]),  # zero prompt
        ([0, 0], [[0, 0]]),  # both zero
    ],
)
def test_zero_vectors_give_zero_not_nan(a, rows):
    with np.errstate(all="raise"):  # no division by zero happens at all
        out = cosine(np.asarray(a, dtype=np.float32), np.asarray(rows, dtype=np.float32))
    assert out.tolist() == [0.0] * len(rows)
    assert json.loads(json.dumps(shape_similarity(out, None))) == [0.0] * len(rows)


def test_zero_prompt_among_others_only_zeroes_that_row():
    out = cosine(np.array([1.0, 0.0]), np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]))
    assert out.tolist() == [1.0, 0.0, -1.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_gives_zero(bad):
    a = np.array([1.0, bad, 0.0])
    b = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with np.errstate(invalid="ignore"):  # inf * 0 inside the dot product
        assert cosine(a, b).tolist() == [0.0, 0.0]
        assert cosine(b[0], np.array([[1.0, 0.0, 0.0], a])).tolist() == [1.0, 0.0]
        body = json.dumps(shape_similarity(cosine(a, b), ["x", "y"]), allow_nan=False)  # strict JSON
    assert json.loads(body) == {"x": 0.0, "y": 0.0}


def test_overflowing_norm_gives_zero_not_nan():
    huge = np.array([1e200, 1e200])
    with np.errstate(over="ignore", invalid="ignore"):
        out = cosine(huge, huge[None, :])  # finite input whose dot and norms overflow to inf
    assert np.isfinite(out).all()


def test_clipped_to_unit_interval():
    # float32 rows that are exact copies: the float math may land a hair outside [-1, 1]
    rng = np.random.default_rng(2)
    for _ in range(200):
        v = rng.normal(size=77).astype(np.float32) * rng.uniform(1e-3, 1e3)
        out = cosine(v, np.stack([v, -v, v * 3]))
        assert out.max() <= 1.0 and out.min() >= -1.0
        assert out[0] == pytest.approx(1.0, abs=1e-12) and out[1] == pytest.approx(-1.0, abs=1e-12)


def test_shape_similarity_list():
    values = np.array([0.25, -0.5, 1.0])
    out = shape_similarity(values, None)
    assert out == [0.25, -0.5, 1.0]
    assert all(type(v) is float for v in out)  # plain floats: JSON-serialisable, no numpy scalars
    json.dumps(out)


def test_shape_similarity_dict_keeps_key_order():
    keys = ["zebra", "apple", "Key2", "Key1", "m"]
    values = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    out = shape_similarity(values, keys)
    assert isinstance(out, dict)
    assert list(out) == keys  # request order, not sorted
    assert out == {"zebra": 0.1, "apple": 0.2, "Key2": 0.3, "Key1": 0.4, "m": 0.5}
    assert all(type(v) is float for v in out.values())
    assert json.loads(json.dumps(out)) == out


def test_shape_similarity_single_prompt_is_a_list_of_one():
    assert shape_similarity(np.array([0.7]), None) == [0.7]


def test_shape_similarity_key_count_mismatch_raises():
    with pytest.raises(ValueError):
        shape_similarity(np.array([0.1, 0.2]), ["only-one"])
