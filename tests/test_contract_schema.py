"""Malformed contract metadata is refused with one line naming the field, never a traceback.

The CLI cases are real ONNX models (the serve tests' colour classifier) whose ``edgecls.contract`` metadata was
rewritten the way a hostile or broken exporter could: ``provenance`` as a string or list, the JSON nested 100k
deep, ``input_size`` as the string "32", a negative or future ``schema_version``. ``run``, ``info``, ``serve``
and ``batch`` each exit 2 with one ``error:`` line. The property-based part feeds the parser arbitrary JSON and
mutated valid contracts: the answer is a contract or a ContractError, nothing else.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fixtures_reliability import assert_one_clean_error, run_cli
from fixtures_runtime import set_contract_metadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.schema import MAX_CONTRACT_CHARS, MAX_LABELS, MAX_NESTING, nesting_depth
from edgecls.runtime.errors import ContractError

VALID: dict[str, Any] = ModelContract(labels=("red", "green", "blue"), input_size=(32, 32)).to_dict()
DEEP = 100_000


def _with(**changes: Any) -> str:
    return json.dumps({**VALID, **changes})


# name -> (metadata text, the field the one-line refusal must name)
CASES: dict[str, tuple[str, str]] = {
    "provenance_string": (_with(provenance="trained by me"), "provenance"),
    "provenance_list": (_with(provenance=[1, 2]), "provenance"),
    "nested_100k": (_with()[:-1] + ', "provenance": {"x": ' + "[" * DEEP + "]" * DEEP + "}}", "nested"),
    "input_size_string": (_with(input_size="32"), "input_size"),
    "negative_schema_version": (_with(schema_version=-1), "schema_version"),
    "future_schema_version": (_with(schema_version=99), "schema version 99 is newer"),
}


def _cases(names: list[str], fast: str) -> list:
    """``names`` as parameters: the fast tier (``-m "not slow"``) runs ``fast`` alone, ``make test`` every one;
    each case costs two CLI processes."""
    return [pytest.param(name, marks=() if name == fast else pytest.mark.slow) for name in names]


@pytest.fixture(scope="module")
def bad_models(colour_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_contracts")
    return {name: set_contract_metadata(colour_model, root / f"{name}.onnx", text) for name, (text, _) in CASES.items()}


@pytest.fixture(scope="module")
def one_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("one_image")
    cv2.imwrite(str(folder / "red.png"), np.full((24, 24, 3), (0, 0, 255), np.uint8))
    return folder


@pytest.mark.parametrize("case", _cases(sorted(CASES), fast="nested_100k"))
def test_run_and_info_refuse_a_malformed_contract_in_one_line(case, bad_models, one_image):
    field = CASES[case][1]
    for args in (("info", str(bad_models[case])), ("run", str(bad_models[case]), str(one_image / "red.png"))):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert_one_clean_error(proc.stderr, field)


@pytest.mark.parametrize(
    "case", _cases(["provenance_string", "nested_100k", "input_size_string"], fast="input_size_string")
)
def test_serve_and_batch_refuse_a_malformed_contract_in_one_line(case, bad_models, one_image, tmp_path):
    field = CASES[case][1]
    proc = run_cli("serve", str(bad_models[case]), "--port", "0", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert_one_clean_error(proc.stderr, field)
    images = tmp_path / "in"
    shutil.copytree(one_image, images)
    proc = run_cli("batch", str(bad_models[case]), str(images), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert_one_clean_error(proc.stderr, field)


def test_input_size_must_be_two_integers_not_a_string():
    with pytest.raises(ContractError, match=r"input_size: expected array, got str"):
        ModelContract(labels=("a", "b"), input_size="32")  # type: ignore[arg-type]
    with pytest.raises(ContractError, match=r"input_size\[1\]: expected int, got bool"):
        ModelContract.from_json(_with(input_size=[32, True]))


def test_sizes_are_capped_before_parsing():
    huge = _with(labels=["x" * 100] * (MAX_CONTRACT_CHARS // 100))
    with pytest.raises(ContractError, match="characters of JSON, more than"):
        ModelContract.from_json(huge)
    with pytest.raises(ContractError, match=f"nested {MAX_NESTING + 1} deep"):
        ModelContract.from_json(_with()[:-1] + ', "provenance": ' + "[" * MAX_NESTING + "]" * MAX_NESTING + "}")
    n = MAX_NESTING - 2  # the contract object and provenance are the first two levels
    assert ModelContract.from_json(_with()[:-1] + ', "provenance": {"x": ' + "[" * n + "]" * n + "}}").provenance
    with pytest.raises(ContractError, match=f"labels: expected array of length <= {MAX_LABELS}"):
        ModelContract.from_json(_with(labels=[str(i) for i in range(MAX_LABELS + 1)]))
    assert nesting_depth('{"a": "[[[[", "b": [{"c": "\\"]]"}]}') == 3  # brackets in strings do not count


# --- property-based: any JSON in, a contract or the one refusal out ------------------------------------------
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _parse(text: str) -> ModelContract | None:
    try:
        contract = ModelContract.from_json(text)
    except ContractError as e:  # the one refusal: a single line
        assert "\n" not in str(e) and str(e), repr(e)
        return None
    # What was accepted is usable as it is and survives a round trip.
    assert len(contract.input_size) == 2 and all(isinstance(v, int) for v in contract.input_size)
    assert isinstance(contract.provenance, dict) and len(contract.labels) >= 2
    assert ModelContract.from_json(contract.to_json()) == contract
    return contract


@FUZZ
@given(value=_JSON)
def test_any_json_value_is_a_contract_or_one_refusal(value: Any) -> None:
    _parse(json.dumps(value))


@FUZZ
@given(field=st.sampled_from(sorted(VALID) + ["unknown"]), value=_JSON,
       mode=st.sampled_from(["replace", "delete", "wrap", "nest"]), depth=st.integers(1, 200))
def test_mutated_valid_contracts_are_a_contract_or_one_refusal(field: str, value: Any, mode: str, depth: int) -> None:
    doc = dict(VALID)
    if mode == "replace":
        doc[field] = value
    elif mode == "delete":
        doc.pop(field, None)
    elif mode == "wrap":  # the right value one level down: [["a", "b"]], {"x": 32}, ...
        doc[field] = [doc.get(field, value)]
    text = json.dumps(doc)
    if mode == "nest":
        text = text[:-1] + f', "{field}": ' + "[" * depth + json.dumps(value) + "]" * depth + "}"
    _parse(text)
