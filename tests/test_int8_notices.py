"""An int8 file's notices (its verdict, the CPU it was made for) are one line, printed once per file and user,
always shown in full by ``edgecls info``, and acknowledgeable (docs/export-and-int8.md, "Notices").

The models are the fixture classifier with a contract that records an unverified int8 verdict made for another
CPU (the notices read only the contract), run through the real command line in subprocesses that share the
test's own state folder (XDG_STATE_HOME, set per test by conftest.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import RuntimeModels, edgecls_in_process, run_edgecls, set_contract_metadata

from edgecls.runtime.cpu_isa import detect_isa
from edgecls.runtime.terminal.int8_notices import ModelNotice, int8_notices
from edgecls.runtime.terminal.notice_memory import line_to_print, state_dir

HERE = detect_isa()
OTHER = "arm64" if HERE.target.startswith("x86") else "x86-vnni"
VERDICT = ("top-1 fell 0.0 points (95% interval -6.2 to +6.2), budget 1, on 48 held-out images: unverified, one "
           "image is worth 2.08 points, more than the budget; the 95% interval is 12.4 points wide, wider than the "
           "budget")
QUANTIZATION = {"status": "unverified", "budget_met": True, "verdict": VERDICT, "validation_images": 48,
                "max_drop": 1.0, "target": OTHER, "activation_type": "QInt8" if OTHER == "arm64" else "QUInt8",
                "weight_type": "QInt8", "reduce_range": False}


def _int8_model(runtime_models: RuntimeModels, path: Path, **changes: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    provenance = {"variant": "int8", "quantization": {**QUANTIZATION, **changes}}
    doc = {**runtime_models.contract.to_dict(), "provenance": provenance}
    return set_contract_metadata(runtime_models.cnn, path, json.dumps(doc))


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """info's tables fold at 80 columns; the verdict is easier to find on one line."""
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.full((24, 24, 3), 128, np.uint8))
    return path


def _notice_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "int8 UNVERIFIED" in line or "int8 made for" in line]


def test_each_notice_is_one_short_line_and_the_detail_keeps_the_verdict():
    notices = {n.kind: n for n in int8_notices({"quantization": QUANTIZATION}, HERE)}
    assert set(notices) == {"unverified", "other_target"}
    unverified = notices["unverified"]
    assert unverified.line == "int8 UNVERIFIED: its 48 held-out images could not resolve the 1-point accuracy budget"
    assert VERDICT in unverified.detail and "edgecls eval MODEL DATA" in unverified.detail
    message = str(ModelNotice("m.int8.onnx", unverified))
    assert message.endswith("; details: edgecls info m.int8.onnx") and len(message) < 160


def test_a_file_made_for_another_device_is_not_called_wrong_on_this_cpu():
    line = next(n for n in int8_notices({"quantization": QUANTIZATION}, HERE) if n.kind == "other_target")
    assert line.line.startswith(f"int8 made for {OTHER}; on this {HERE.isa} CPU results may differ slightly")
    assert "expected off-device" in line.line and "quantize" not in line.line and "--target" not in line.line
    assert "If this CPU is the device" in line.detail and f"--target {HERE.target}" in line.detail


def test_run_prints_a_notice_once_per_file_even_renamed_and_again_for_a_new_file(runtime_models, tmp_path, image):
    model = _int8_model(runtime_models, tmp_path / "a" / "model.int8.onnx")
    first = run_edgecls("run", str(model), str(image))
    assert first.returncode == 0, first.stderr
    lines = _notice_lines(first.stderr)
    assert len(lines) == 2 and all(line.startswith(f"warning: {model}: ") for line in lines), first.stderr
    assert all(len(line.replace(str(model), "M")) < 170 and "re-quantize" not in line for line in lines), lines
    again = run_edgecls("run", str(model), str(image))
    copy = Path(shutil.copy(model, tmp_path / "renamed.onnx"))  # the same bytes: the same file
    renamed = run_edgecls("run", str(copy), str(image))
    assert again.returncode == renamed.returncode == 0
    assert _notice_lines(again.stderr) == [] and _notice_lines(renamed.stderr) == [], again.stderr + renamed.stderr
    other = _int8_model(runtime_models, tmp_path / "b" / "model.int8.onnx", validation_images=96)  # a new export
    assert len(_notice_lines(run_edgecls("run", str(other), str(image)).stderr)) == 2
    records = list((state_dir() / "notices").glob("*.json"))
    assert len(records) == 2 and all(json.loads(r.read_text())["told"] == {"unverified": "shown",
                                                                            "other_target": "shown"} for r in records)


def test_info_always_shows_the_notices_in_full_and_acknowledge_silences_them(runtime_models, tmp_path, image):
    model = _int8_model(runtime_models, tmp_path / "model.int8.onnx")
    assert len(_notice_lines(run_edgecls("run", str(model), str(image)).stderr)) == 2
    status, info = edgecls_in_process("info", str(model))  # still shown, in full, after the run printed it
    assert status == 0 and VERDICT in info and "already printed once for you" in info, info
    status, ack = edgecls_in_process("info", str(model), "--acknowledge")
    assert status == 0 and "acknowledged: no command prints these notices again" in ack
    fresh = _int8_model(runtime_models, tmp_path / "fresh.int8.onnx", validation_images=96)
    assert edgecls_in_process("info", str(fresh), "--ack")[0] == 0  # before any run printed them
    run = run_edgecls("run", str(fresh), str(image))
    assert run.returncode == 0 and _notice_lines(run.stderr) == [], run.stderr
    status, text = edgecls_in_process("info", str(fresh), "--json")
    as_json = json.loads(text)
    assert as_json["notices_told"] == {"unverified": "acknowledged", "other_target": "acknowledged"}
    assert any(VERDICT in w for w in as_json["int8_warnings"])


def test_selftest_prints_the_notices_once_too(runtime_models, tmp_path):
    model = _int8_model(runtime_models, tmp_path / "model.int8.onnx")
    shutil.copy(runtime_models.cnn.with_name("model.golden.npz"), tmp_path / "model.golden.npz")
    first, second = (json.loads(run_edgecls("selftest", str(model), "--json").stdout) for _ in range(2))
    assert any("int8 UNVERIFIED" in w for w in first["warnings"]) and second["warnings"] == []


def test_without_a_writable_state_folder_each_start_says_it_and_why(runtime_models, tmp_path, image, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    model = _int8_model(runtime_models, tmp_path / "model.int8.onnx")
    for _ in range(2):
        r = run_edgecls("run", str(model), str(image))
        lines = _notice_lines(r.stderr)
        assert r.returncode == 0 and len(lines) == 2, r.stderr
        assert all(line.endswith(f"(said at every start: {blocker}/edgecls cannot be written)") for line in lines)


def test_other_warnings_are_printed_every_time(runtime_models):
    assert line_to_print(RuntimeWarning("provider fell back to CPU")) == "provider fell back to CPU"
    assert line_to_print(RuntimeWarning("provider fell back to CPU")) == "provider fell back to CPU"
    notice = next(iter(int8_notices({"quantization": QUANTIZATION}, HERE)))
    bytes_model = ModelNotice("<bytes>", notice)  # no file to remember: once in this process
    assert line_to_print(bytes_model) == str(bytes_model) and line_to_print(bytes_model) is None
