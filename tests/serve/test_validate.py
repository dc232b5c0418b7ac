"""The served models' input checks, in-process: every input is accepted or refused with an
InputError that names the tensor; property-based over random shapes, dtypes and values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from exatrkx.contract import MODELS
from exatrkx.errors import InputError
from exatrkx.serve.validate import (
    CHECKED_KINDS,
    as_tensor,
    check_edges,
    check_features,
    validate_inputs,
)

MAX_HITS = 50
K = 4


def good_inputs(model: str, n: int = 6) -> list[np.ndarray]:
    """A valid request to ``model`` with ``n`` hits."""
    rng = np.random.default_rng(n)
    feats = rng.random((n, 3), dtype=np.float32)
    edges = (np.array([[1, 2, n - 1], [0, 1, 0]], np.int64) if n >= 3
             else np.zeros((2, 0), np.int64))
    return {"embed": [feats], "exatrkx_pipeline": [feats],
            "build": [rng.random((n, 8), dtype=np.float32)],
            "filter": [feats, edges], "gnn": [feats, edges],
            "label": [feats, edges, np.full(edges.shape[1], 0.7, np.float32)]}[model]

#: Models whose inputs the served adapters check (the contract's stage and pipeline models).
CHECKED_MODELS = [name for name, spec in MODELS.items() if spec.kind in CHECKED_KINDS]


@pytest.mark.parametrize("model", sorted(CHECKED_MODELS))
def test_good_requests_pass(model: str) -> None:
    validate_inputs(model, good_inputs(model), MAX_HITS, K, 8)
    validate_inputs(model, [torch.from_numpy(a) for a in good_inputs(model, 1)], MAX_HITS, K)


NAN = np.float32("nan")


@pytest.mark.parametrize(("model", "index", "bad", "message"), [
    ("embed", 0, np.zeros((0, 3), np.float32), "FEATURES is empty"),
    ("embed", 0, np.zeros((MAX_HITS + 1, 3), np.float32), f"limit of {MAX_HITS}"),
    ("embed", 0, np.zeros((5, 4), np.float32), r"FEATURES has shape \[5, 4\]"),
    ("embed", 0, np.zeros(15, np.float32), "rank 1"),
    ("embed", 0, np.zeros((5, 3), np.float64), "FEATURES has data type torch.float64"),
    ("embed", 0, np.array([[0, 0, 0], [1, NAN, 0]], np.float32), "non-finite .* row 1"),
    ("exatrkx_pipeline", 0, np.array([[np.inf, 0, 0]], np.float32), "non-finite .* row 0"),
    ("build", 0, np.zeros((5, 7), np.float32), r"EMBEDDING has shape \[5, 7\]"),
    ("build", 0, np.full((5, 8), NAN, np.float32), "EMBEDDING has a non-finite"),
    ("filter", 1, np.array([[6], [0]]), r"EDGES refers to hits outside 0..5"),
    ("filter", 1, np.array([[-1], [0]]), "outside"),
    ("filter", 1, np.zeros((2, 6 * K + 1), np.int64), f"more than {K} per hit"),
    ("filter", 1, np.zeros((3, 2), np.int64), r"EDGES has shape \[3, 2\]"),
    ("gnn", 1, np.zeros((2, 2), np.int32), "EDGES_KEPT has data type torch.int32"),
    ("label", 2, np.zeros(2, np.float32), "SCORES has 2 values for 3 edges"),
    ("label", 2, np.full(3, NAN, np.float32), "SCORES has a NaN"),
])
def test_bad_requests_name_the_problem(model: str, index: int, bad: np.ndarray,
                                       message: str) -> None:
    inputs = good_inputs(model)
    inputs[index] = bad
    with pytest.raises(InputError, match=message):
        validate_inputs(model, inputs, MAX_HITS, K, 8)


def test_wrong_inputs_and_models() -> None:
    with pytest.raises(InputError, match="takes 2 inputs"):
        validate_inputs("filter", good_inputs("embed"), MAX_HITS)
    with pytest.raises(InputError, match="no input checks"):
        validate_inputs("nosuchmodel", [], MAX_HITS)
    with pytest.raises(InputError, match="must be a tensor"):
        as_tensor("FEATURES", [[1.0, 2.0, 3.0]])
    with pytest.raises(InputError, match="unsupported data type"):
        as_tensor("FEATURES", np.array(["a"], dtype=object))


def test_large_finite_values_are_accepted() -> None:
    """The sum of finite features may overflow; the exact scan then finds nothing."""
    check_features(torch.full((4, 3), 3e38), MAX_HITS)
    check_edges(torch.zeros((2, 0), dtype=torch.int64), 0)


DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.int8,
                          np.uint8, np.bool_, np.complex64])
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8)))
#: Mostly well-formed arrays with odd values: features and edges of the right dtypes.
FEATURES = hnp.arrays(np.float32, st.tuples(st.integers(0, 60), st.sampled_from([3, 3, 2])),
                      elements=st.floats(width=32, allow_nan=True, allow_infinity=True))
EDGES = hnp.arrays(np.int64, st.tuples(st.sampled_from([2, 2, 1]), st.integers(0, 40)),
                   elements=st.integers(-3, 70))
SCORES = hnp.arrays(np.float32, st.integers(0, 40),
                    elements=st.floats(width=32, allow_nan=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(sorted(CHECKED_MODELS)), data=st.data())
def test_any_request_is_accepted_or_refused_with_input_error(model: str,
                                                             data: st.DataObject) -> None:
    names = list(MODELS[model].inputs)
    typed = {"FEATURES": FEATURES, "EMBEDDING": ARRAYS, "EDGES": EDGES, "EDGES_KEPT": EDGES,
             "SCORES": SCORES}
    inputs = [data.draw(st.one_of(typed[name], ARRAYS), label=name) for name in names]
    try:
        validate_inputs(model, inputs, MAX_HITS, K)
    except InputError as exc:
        assert str(exc)
        return
    # accepted: then the invariants the stages rely on hold
    feats = torch.from_numpy(inputs[0])
    assert feats.dtype == torch.float32 and feats.ndim == 2
    assert feats.shape[0] <= MAX_HITS
    assert bool(torch.isfinite(feats).all())
    if model != "build":
        assert feats.shape == (feats.shape[0], 3) and feats.shape[0] >= 1
    if len(inputs) > 1:
        edges = inputs[1]
        assert edges.dtype == np.int64 and edges.shape[0] == 2
        assert edges.size == 0 or (edges.min() >= 0 and edges.max() < feats.shape[0])
        assert edges.shape[1] <= K * feats.shape[0]
    if len(inputs) > 2:
        assert inputs[2].shape == (inputs[1].shape[1],) and not np.isnan(inputs[2]).any()
