"""Bring your own torch model: the same export, contract and parity; clear errors for broken factories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures_cli import cli_in_process, leftovers
from fixtures_export import USER_NET_PY

from edgecls.export.byo_model import ModelFactoryError, build_user_model, prepare_user_model
from edgecls.export.metadata import read_contract_file
from edgecls.runtime.contract.options import ContractOptions, read_labels
from edgecls.runtime.errors import ContractError


@pytest.fixture()
def user_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "net.py").write_text(USER_NET_PY)
    (tmp_path / "broken.py").write_text("def build(:\n")
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    (tmp_path / "labels.json").write_text('["cat", "dog", "bird"]')
    import importlib.util

    spec = importlib.util.spec_from_file_location("byo_net", tmp_path / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.build().state_dict(), tmp_path / "net.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    return {
        "dir": tmp_path,
        "net": tmp_path / "net.py",
        "labels": tmp_path / "labels.txt",
        "weights": tmp_path / "net.pt",
    }


def test_byo_export_end_to_end(user_files, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = cli_in_process(
        [
            "export",
            "--model",
            f"{user_files['net']}:build",
            "--weights",
            str(user_files["weights"]),
            "--labels",
            str(user_files["labels"]),
            "--input-size",
            "48",
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.25,0.25,0.25",
            "--resize-mode",
            "stretch",
            "--interpolation",
            "area",
            "--color-order",
            "BGR",
            "--exporter",
            "torchscript",
            "--out",
            str(out),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(stdout.strip().splitlines()[-1])
    # Recorded fp32 parity against a bound tighter than the export's gate (which raises past 1e-4).
    (fp32,) = [p for p in report["parity"] if p["variant"] == "fp32"]
    assert fp32["images"] >= 8 and fp32["top1_mismatches"] == 0 and 0 <= fp32["max_abs_diff"] < 1e-5, fp32
    c = read_contract_file(out / "model.onnx")
    assert c.labels == ("cat", "dog", "bird") and c.input_size == (48, 48) and c.color_order == "BGR"
    assert c.mean == (0.5, 0.5, 0.5) and c.std == (0.25, 0.25, 0.25) and c.interpolation == "area"
    assert c.provenance["arch"].startswith("user:") and len(c.provenance["checkpoint_sha256"]) == 64
    assert (out / "model.golden.npz").is_file()


@pytest.mark.parametrize(
    ("model_arg", "weights", "labels", "message"),
    [
        ("{dir}/missing.py:build", None, "labels.txt", "no such file"),
        ("{dir}/broken.py:build", None, "labels.txt", "cannot import"),
        ("no_such_module_xyz:build", None, "labels.txt", "cannot import no_such_module_xyz"),
        ("{dir}/net.py:nope", None, "labels.txt", "has no callable 'nope'"),
        ("{dir}/net.py:not_a_module", None, "labels.txt", "not a torch nn.Module"),
        ("{dir}/net.py:explodes", None, "labels.txt", "calling the factory failed"),
        ("{dir}/net.py:build_five", None, "labels.txt", "they must match"),
        ("{dir}/net.py:build", "bad.pt", "labels.txt", "not a readable state dict"),
        ("{dir}/net.py", None, "labels.txt", "expected FILE.py:FACTORY"),
    ],
)
def test_bad_user_models_are_one_line_errors(user_files, capsys, model_arg, weights, labels, message):
    d = user_files["dir"]
    out = d / "out"
    argv = [
        "export",
        "--model",
        model_arg.format(dir=d),
        "--labels",
        str(d / labels),
        "--input-size",
        "32",
        "--out",
        str(out),
    ]
    if weights:
        argv += ["--weights", str(d / weights)]
    code, _, err = cli_in_process(argv, capsys)
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert leftovers(out) == []


def test_weights_that_do_not_fit(user_files, tmp_path):
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "w.pt")
    with pytest.raises(Exception, match="does not fit the model"):
        build_user_model(f"{user_files['net']}:build", tmp_path / "w.pt")


def test_labels_files(user_files, tmp_path):
    assert read_labels(user_files["labels"]) == ["cat", "dog", "bird"]
    assert read_labels(user_files["dir"] / "labels.json") == ["cat", "dog", "bird"]
    (tmp_path / "one.txt").write_text("only\n")
    with pytest.raises(ContractError, match="at least 2"):
        read_labels(tmp_path / "one.txt")
    with pytest.raises(ContractError, match="no such file"):
        read_labels(tmp_path / "missing.txt")


def test_module_factory_and_contract_flags(user_files):
    with pytest.raises(ModelFactoryError):
        build_user_model("edgecls.models.simple_cnn:SimpleCNN")  # needs num_classes: calling fails
    spec = f"{user_files['net']}:build"
    with pytest.raises(ContractError, match="--input-size"):  # a torch model states no input size of its own
        prepare_user_model(spec, None, ContractOptions(labels=str(user_files["labels"])))
    _, c = prepare_user_model(spec, None, ContractOptions(labels="cat,dog,bird", input_size="40x32", scale=1.0))
    assert c.labels == ("cat", "dog", "bird") and c.input_size == (40, 32) and c.scale == 1.0
    assert c.provenance["arch"] == f"user:{spec}" and c.provenance["source"] == "byo"
