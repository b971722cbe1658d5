"""edgecls info: contract and graph summary, with onnx or with onnxruntime alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_cli import cli_in_process

from edgecls.export.info import model_info
from edgecls.runtime.errors import ModelLoadError

REPO = Path(__file__).resolve().parents[1]


def test_info_reads_graph_and_contract(exported_tiny):
    fp32 = model_info(exported_tiny / "model.onnx", use_onnx=True)
    int8 = model_info(exported_tiny / "model.int8.onnx", use_onnx=True)
    assert fp32.source == "onnx" and fp32.opset == 17 and fp32.parameters > 1000
    assert fp32.contract["provenance"]["variant"] == "fp32" and not fp32.quantized
    assert int8.quantized and int8.op_counts.get("QuantizeLinear", 0) > 0
    assert int8.size_bytes < fp32.size_bytes
    assert fp32.inputs[0].shape[1:] == [3, 32, 32] and fp32.outputs[0].shape[-1] == 5


def test_info_falls_back_to_session_metadata(exported_tiny):
    info = model_info(exported_tiny / "model.int8.onnx", use_onnx=False)
    assert info.source == "onnxruntime" and info.parameters is None and info.op_counts == {}
    assert info.contract["provenance"]["variant"] == "int8" and info.outputs[0].name == "logits"


def test_info_in_a_process_without_onnx(exported_tiny):
    # Block the onnx (and torch) imports the way a runtime-only device lacks them.
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['torch'] = None\n"
        "from edgecls.export.info import model_info\n"
        f"i = model_info({str(exported_tiny / 'model.onnx')!r})\n"
        "assert i.source == 'onnxruntime' and i.contract['labels'], i\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_info_cli(exported_tiny, capsys):
    code, out, err = cli_in_process(["info", str(exported_tiny / "model.int8.onnx"), "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["contract"]["provenance"]["quantization"]["images"] == 64
    code, out, _ = cli_in_process(["info", str(exported_tiny / "model.onnx")], capsys)
    assert code == 0 and "contract" in out and "circle" in out and "Conv" in out


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage that is not protobuf"])
def test_info_on_corrupt_files(tmp_path, content, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ModelLoadError):
        model_info(bad)
    code, _, err = cli_in_process(["info", str(bad)], capsys)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    code, _, err = cli_in_process(["info", str(tmp_path / "missing.onnx")], capsys)
    assert code == 2 and "no such model file" in err


def test_describe_is_the_command_as_a_library_call(exported_tiny, capsys):
    import dataclasses

    from edgecls.export.info import InfoOptions, describe

    model = exported_tiny / "model.int8.onnx"
    plain = describe(InfoOptions(model=model))
    assert plain.engine is None and plain.providers_here and plain.model.contract["provenance"]["variant"] == "int8"
    on_cpu = describe(InfoOptions(model=model, provider="cpu"))
    assert on_cpu.engine["used"][0] == "CPUExecutionProvider" and on_cpu.engine["line"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        InfoOptions(model=model).provider = "cpu"  # type: ignore[misc]
    # the command prints exactly the library's report
    code, out, err = cli_in_process(["info", str(model), "--provider", "cpu", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(on_cpu.to_dict()))
