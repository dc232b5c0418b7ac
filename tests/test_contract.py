"""The service contract: one consistent description of options, models and tensors."""

from __future__ import annotations

import numpy as np
import pytest

from exatrkx.contract import (
    ALL_OPTIONS,
    ENSEMBLE_MODEL,
    FLOOR_MODELS,
    MODELS,
    NET_STAGES,
    OPTIONS,
    PIPELINE_MODEL,
    REMOTE_OPTIONS,
    STAGE_MODELS,
    STAGES,
    TENSORS,
    WHOLE_EVENT_OPTIONS,
    Option,
    option,
)


def test_options_are_numbered_0_to_5_as_in_the_original_study() -> None:
    assert [int(o) for o in ALL_OPTIONS] == [0, 1, 2, 3, 4, 5]
    assert Option(4) == 4 and str(int(Option.PIPELINE_MODEL)) == "5"
    assert REMOTE_OPTIONS == tuple(ALL_OPTIONS[1:])
    assert WHOLE_EVENT_OPTIONS == (Option.ENSEMBLE, Option.PIPELINE_MODEL)


def test_what_each_option_runs_where() -> None:
    assert OPTIONS[Option.IN_PROCESS].local_stages == STAGES
    assert OPTIONS[Option.NETS_REMOTE].remote_stages == NET_STAGES
    assert OPTIONS[Option.PYTHON_REMOTE].local_stages == NET_STAGES
    assert OPTIONS[Option.EVERY_STAGE_REMOTE].local_stages == ()
    assert OPTIONS[Option.ENSEMBLE].models == (ENSEMBLE_MODEL,)
    assert OPTIONS[Option.ENSEMBLE].stage_models == tuple(STAGE_MODELS[s].name for s in STAGES)
    assert OPTIONS[Option.PIPELINE_MODEL].stage_models == (PIPELINE_MODEL,)
    requests = {int(o): s.requests_per_event for o, s in OPTIONS.items()}
    assert requests == {0: 0, 1: 3, 2: 2, 3: 5, 4: 1, 5: 1}


@pytest.mark.parametrize("value", [6, -1, "x", None, "4.5"])
def test_unknown_options_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="0-5"):
        option(value)  # type: ignore[arg-type]


def test_the_stage_models_chain_from_features_to_labels() -> None:
    available = set(MODELS[ENSEMBLE_MODEL].inputs)
    for stage in STAGES:
        spec = STAGE_MODELS[stage]
        assert set(spec.inputs) <= available, (stage, spec.inputs, available)
        available |= set(spec.outputs)
    assert set(MODELS[ENSEMBLE_MODEL].outputs) <= available
    assert MODELS[PIPELINE_MODEL].inputs == MODELS[ENSEMBLE_MODEL].inputs
    assert MODELS[PIPELINE_MODEL].outputs == MODELS[ENSEMBLE_MODEL].outputs


def test_every_model_tensor_is_described() -> None:
    for spec in MODELS.values():
        for name in (*spec.inputs, *spec.outputs):
            assert name in TENSORS
    for model in FLOOR_MODELS.values():
        assert MODELS[model].kind.startswith("floor")


def test_tensor_bounds_per_hit() -> None:
    assert TENSORS["EDGES"].bytes_per_hit(10, 12) == 160  # 2 x k int64
    assert TENSORS["SCORES"].bytes_per_hit(10, 12) == 40
    assert TENSORS["EMBEDDING"].bytes_per_hit(10, 12) == 48
    assert TENSORS["FEATURES"].dims(8) == [-1, 3]
    assert TENSORS["EMBEDDING"].dims(12) == [-1, 12]
    assert TENSORS["LABELS"].numpy_dtype is np.int64


def test_message_bounds_and_the_grpc_limit() -> None:
    from exatrkx.contract import (
        DEFAULT_MAX_HITS,
        MAX_MESSAGE_BYTES,
        check_message_limits,
        message_bytes_bound,
    )

    bounds = message_bytes_bound(1000, 10, 8)
    # the filter takes features (12 B/hit) and edges (2 x 10 x 8 B/hit)
    assert bounds["filter request"] == 1000 * (12 + 160)
    assert bounds["label response"] == 1000 * 8
    assert bounds["embed response"] == 1000 * 32
    # the default limit fits with the default 64 neighbours per hit; 4M hits do not
    check_message_limits(DEFAULT_MAX_HITS, 64, 12)
    assert DEFAULT_MAX_HITS >= 500_000
    with pytest.raises(ValueError, match="label request"):
        check_message_limits(MAX_MESSAGE_BYTES // 1000, 64, 12)
