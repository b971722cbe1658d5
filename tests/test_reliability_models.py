"""Bad model files: each is one clear ``error:`` line naming the file (exit 2), and a typed exception from the
Python API; never a traceback, and never a run that starts and then produces nonsense.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fixtures_reliability import assert_one_clean_error, run_cli
from fixtures_runtime import set_contract_metadata

from edgecls.runtime.contract.schema import SCHEMA_VERSION
from edgecls.runtime.errors import ContractError, EdgeclsError, ModelLoadError
from edgecls.runtime.inference.classifier import Classifier

NOT_ONNX = "cannot load model (not an ONNX model: protobuf parsing failed)"


@pytest.fixture(scope="module")
def bad_models(runtime_models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, type, str]]:
    """case -> (model path, exception class from the Python API, fragment the one-line message must hold)."""
    d = tmp_path_factory.mktemp("bad_models")
    good = runtime_models.cnn
    contract = json.loads(runtime_models.contract.to_json())
    valid = good.read_bytes()
    (d / "truncated.onnx").write_bytes(valid[: len(valid) // 2])
    shutil.copy(Path(__file__), d / "script.onnx")  # text with a model's name
    newer_contract = json.dumps({**contract, "schema_version": SCHEMA_VERSION + 1})
    newer = set_contract_metadata(good, d / "newer_schema.onnx", newer_contract)
    labels = set_contract_metadata(good, d / "five_labels.onnx", json.dumps({**contract, "labels": list("abcde")}))
    garbage = set_contract_metadata(good, d / "garbage_contract.onnx", "{labels: [oops")
    return {
        "random_bytes": (runtime_models.corrupt, ModelLoadError, NOT_ONNX),
        "zero_bytes": (runtime_models.empty, ModelLoadError, "empty model file"),
        "truncated": (d / "truncated.onnx", ModelLoadError, NOT_ONNX),
        "text_named_onnx": (d / "script.onnx", ModelLoadError, NOT_ONNX),
        "rank3_output": (runtime_models.nonclassifier, ModelLoadError, "not an image classifier"),
        "two_inputs": (runtime_models.two_inputs, ModelLoadError, "not an image classifier"),
        "uint8_input": (runtime_models.int_input, ModelLoadError, "not an image classifier"),
        "newer_schema": (newer, ContractError, f"schema version {SCHEMA_VERSION + 1} is newer"),
        "labels_vs_outputs": (labels, ContractError, "outputs 3 classes but the contract has 5 labels"),
        "garbage_contract": (garbage, ContractError, "not valid JSON"),
        "missing_file": (d / "nowhere.onnx", ModelLoadError, "no such model file"),
        "directory": (d, ModelLoadError, str(d)),
    }


CASES = ["random_bytes", "zero_bytes", "truncated", "text_named_onnx", "rank3_output", "two_inputs",
         "uint8_input", "newer_schema", "labels_vs_outputs", "garbage_contract", "missing_file", "directory"]


@pytest.mark.parametrize("case", CASES)
def test_python_api_raises_one_typed_line(bad_models, case: str) -> None:
    path, error, fragment = bad_models[case]
    with pytest.raises(EdgeclsError) as info:
        Classifier(path)
    message = str(info.value)
    assert isinstance(info.value, error), (type(info.value), message)
    assert str(path) in message and fragment in message and "\n" not in message, message


@pytest.mark.slow  # a subprocess per bad model: 16 s at load 5-13
def test_cli_each_bad_model_is_one_error_line(bad_models, odd_images) -> None:
    """One subprocess per model, all started at once (each pays the interpreter start, not the others')."""
    import subprocess

    from fixtures_reliability import edgecls_cmd, edgecls_env

    image = str(odd_images.good["jpeg"])
    procs = {
        case: subprocess.Popen(edgecls_cmd("run", str(bad_models[case][0]), image, "--json"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=edgecls_env())
        for case in CASES
    }
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        path, _, fragment = bad_models[case]
        assert proc.returncode == 2, (case, err)
        assert out == "", (case, out)  # nothing was classified with a model that cannot be trusted
        assert_one_clean_error(err, str(path), fragment)


def test_contract_override_cannot_smuggle_a_mismatch(runtime_models, odd_images) -> None:
    """--labels with the wrong count for the graph's output is refused before any image is read."""
    r = run_cli("run", str(runtime_models.cnn), str(odd_images.good["jpeg"]), "--labels", "a,b,c,d")
    assert r.returncode == 2
    assert_one_clean_error(r.stderr, str(runtime_models.cnn), "4 labels")
