"""One spec per architecture: every --arch has one, registered by its own model file; a spec's partial contract
(what its weights imply) and train's contract flags reach the exported ONNX contract; configs written before
the img_size -> input_size rename (and before flags could override the weights) still load and resume."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_cli import cli_in_process
from fixtures_training import stripes_folder
from torch import nn

import edgecls.models
from edgecls.models.pretrained.mapping import bn_entries, conv_entries, head_entries
from edgecls.models.registry import ARCHITECTURES, architecture, build_model
from edgecls.models.spec import ArchitectureSpec, PartialContract, WeightsSpec
from edgecls.runtime.contract.model_contract import IMAGENET_MEAN, ModelContract
from edgecls.training.checkpoint import load_checkpoint
from edgecls.training.config import TrainConfig
from edgecls.training.train import train

MODELS_DIR = Path(edgecls.models.__file__).parent


def _arch_help_names() -> list[str]:
    """The names ``edgecls train --help`` offers for --arch (the choices of its type)."""
    from edgecls.cli.train_cmd import train_command

    choice = inspect.signature(train_command, eval_str=True).parameters["arch"].annotation.__origin__
    return [member.value for member in choice]


def _registered_in(path: Path) -> list[str]:
    """Names given in the ``register(ArchitectureSpec(name=...))`` (or ``register(replace(SPEC, name=...))``)
    calls of a model file's source."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register":
            spec = node.args[0]
            assert isinstance(spec, ast.Call) and getattr(spec.func, "id", None) in ("ArchitectureSpec", "replace")
            names += [kw.value.value for kw in spec.keywords if kw.arg == "name"]  # type: ignore[attr-defined]
    return names


def test_every_arch_has_one_spec_registered_by_its_own_model_file() -> None:
    assert sorted(_arch_help_names()) == sorted(ARCHITECTURES)
    by_file = {p.stem: _registered_in(p) for p in MODELS_DIR.glob("*.py")}
    assert by_file["registry"] == [] and by_file["spec"] == []  # the table holds specs, it defines none
    registered = [name for names in by_file.values() for name in names]
    assert sorted(registered) == sorted(ARCHITECTURES)  # each exactly once
    for stem, names in by_file.items():
        for name in names:
            spec = architecture(name)
            assert spec.build.__module__ == f"edgecls.models.{stem}", name  # the constructor lives beside it
            model = build_model(name, 3, 32)
            assert isinstance(model.get_submodule(spec.head), nn.Linear), name
            assert model.get_submodule(spec.head).out_features == 3
    with pytest.raises(TypeError):
        architecture("cnn").defaults["width"] = 8  # type: ignore[index]  (frozen, kwargs included)


def test_weights_specs_carry_the_partial_contract() -> None:
    with_weights = {name: spec for name, spec in ARCHITECTURES.items() if spec.weights is not None}
    assert sorted(with_weights) == ["efficientnet_lite0", "mobilenetv2", "resnet18"]
    lite0 = with_weights["efficientnet_lite0"].contract
    assert lite0 is not None and np.allclose(lite0.mean, 127 / 255) and lite0.interpolation == "cubic"
    assert with_weights["mobilenetv2"].contract == PartialContract(224, IMAGENET_MEAN, (0.229, 0.224, 0.225), "linear")
    assert ARCHITECTURES["cnn"].contract is None
    # a spec's fields are ModelContract's own: they make a contract as they are
    c = ModelContract(labels=("a", "b"), **with_weights["resnet18"].contract.fields())  # type: ignore[union-attr]
    assert c.input_size == (224, 224) and c.crop_fraction == 0.875


class TinyNet(nn.Module):
    """conv(3->4) + BN + ReLU -> global pool -> Linear head ``fc``: a network with "published" weights."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.body(x)), 1))


TINY_CONTRACT = PartialContract(
    40, mean=(0.3, 0.4, 0.5), std=(0.2, 0.25, 0.3), interpolation="area", crop_fraction=0.75
)


@pytest.fixture
def tiny_arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A spec registered as a model file would, with weights in a local file ("published" with 10 classes)."""
    published = tmp_path / "tiny_published.pt"
    torch.manual_seed(0)
    torch.save({k.replace("body.", "stem."): v for k, v in TinyNet(10).state_dict().items()}, published)
    spec = ArchitectureSpec(
        name="tiny_test_net",
        description="test network",
        build=TinyNet,
        head="fc",
        sized=False,
        weights=WeightsSpec(
            name="tiny test weights",
            contract=TINY_CONTRACT,
            table=lambda: conv_entries("stem.0", "body.0", (4, 3, 3, 3))
            + bn_entries("stem.1", "body.1", 4)
            + head_entries("fc", "fc", 4, 10),
            package_file=lambda: str(published),
        ),
    )
    monkeypatch.setitem(ARCHITECTURES, spec.name, spec)
    return spec.name


@pytest.mark.slow  # trains and exports: 9.5 s at load 5-13
def test_a_specs_partial_contract_and_trains_flags_reach_the_exported_contract(tiny_arch: str, tmp_path: Path) -> None:
    from fixtures_export import fast_export_options

    from edgecls.export.export_run import export_checkpoint
    from edgecls.export.metadata import read_contract_file
    from edgecls.training.resume import AugmentOverrides, train_or_resume

    data = stripes_folder(tmp_path / "data", per_class=8)
    run = tmp_path / "run"
    # A registered spec is not a built-in --arch choice (the command line lists those without importing torch), so
    # the config is built as `edgecls train` builds it (test_train_takes_the_contract_flags_... checks that part).
    # Two of the weights' fields are overridden; the others (size 40, mean/std) come from the spec.
    config = TrainConfig(data=str(data), arch=tiny_arch, pretrained=True, epochs=1, batch_size=8, out=str(run),
                         interpolation="nearest", crop_fraction=0.9)
    train_or_resume(config, AugmentOverrides(), trust_checkpoint=False)
    export_checkpoint(run, fast_export_options(tmp_path / "export"), log=lambda _m: None)  # type: ignore[arg-type]
    exported = read_contract_file(tmp_path / "export" / "model.onnx")
    assert exported is not None
    assert exported.input_size == (40, 40) and exported.mean == TINY_CONTRACT.mean and exported.std == TINY_CONTRACT.std
    assert exported.resize_mode == "shorter_side_crop"
    assert (exported.interpolation, exported.crop_fraction) == ("nearest", 0.9)
    assert exported.provenance["pretrained"]["weights"] == "tiny test weights"
    # the backbone came from the weights file (frozen BatchNorm keeps its published statistics)
    published = torch.load(tmp_path / "tiny_published.pt", weights_only=True)
    assert torch.equal(load_checkpoint(run).model_state["body.1.running_mean"], published["stem.1.running_mean"])


def test_train_takes_the_contract_flags_that_mean_something_for_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgecls.training.resume as resume
    from edgecls.training.run_contract import make_contract

    data = stripes_folder(tmp_path / "data", per_class=4)
    # every given flag lands in the config (parsed as the other commands parse it) and wins in the contract
    seen: list[TrainConfig] = []

    def capture(config: TrainConfig, *_a: object, **_k: object) -> Path:
        seen.append(resume.config_to_run(config))
        return tmp_path

    monkeypatch.setattr(resume, "train_or_resume", capture)
    flags = ["--input-size", "48", "--mean", "0.5", "--std", "0.25,0.5,1", "--scale", "0.5", "--resize-mode",
             "stretch", "--crop-fraction", "0.8", "--interpolation", "cubic", "--color-order", "bgr",
             "--jpeg-decode", "full"]  # fmt: skip
    argv = ["train", str(data), "--arch", "cnn", *flags, "--out", str(tmp_path / "r")]
    code, _out, err = cli_in_process(argv, capsys)
    assert code == 0, err
    from edgecls.data.load import load_data

    c = make_contract(seen[0], load_data(str(data), seed=0))
    assert c.input_size == (48, 48) and c.mean == (0.5, 0.5, 0.5) and c.std == (0.25, 0.5, 1.0) and c.scale == 0.5
    assert (c.resize_mode, c.crop_fraction, c.interpolation, c.color_order, c.jpeg_decode) == (
        "stretch", 0.8, "cubic", "BGR", "full"
    )
    # labels come from the data and training makes logits: those two flags are not offered
    for flag, value in (("--labels", "a,b"), ("--output-kind", "probabilities")):
        code, _out, err = cli_in_process(["train", str(data), flag, value], capsys)
        assert code == 2 and "No such option" in err, err
    # a bad value is one line naming the field, before any training
    monkeypatch.undo()  # the real training command: the value is refused before any data is read
    out = tmp_path / "bad"
    code, _out, err = cli_in_process(["train", str(data), "--interpolation", "bilinear", "--out", str(out)], capsys)
    refusal = " ".join(err.replace("│", " ").split())  # typer's usage box, its lines joined
    assert code == 2 and "'--interpolation'" in refusal and "'bilinear' is not one of 'nearest'" in refusal
    assert "Traceback" not in err and not out.exists()


def _v1(config: dict) -> dict:
    """A config.json as edgecls wrote it before: ``img_size``, no version, mean/std always stored."""
    old = {k: v for k, v in config.items() if k not in ("config_version", "input_size")}
    old = {k: v for k, v in old.items() if k not in ("scale", "crop_fraction", "color_order", "jpeg_decode")}
    return {**old, "img_size": config["input_size"], "mean": list(IMAGENET_MEAN), "std": [0.229, 0.224, 0.225]}


def test_an_old_config_with_img_size_still_resumes(tmp_path: Path) -> None:
    config = TrainConfig(
        data="builtin:shapes", arch="cnn", epochs=2, input_size=32, batch_size=32, out=str(tmp_path / "run"),
        max_train_batches=2, arch_kwargs={"width": 8},
    )  # fmt: skip

    def stop_after_epoch_1(msg: str) -> None:
        if msg.startswith("epoch   1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, log=stop_after_epoch_1, show_progress=False)
    saved = tmp_path / "run" / "config.json"
    before = json.loads((tmp_path / "run" / "contract.json").read_text())
    saved.write_text(json.dumps(_v1(json.loads(saved.read_text()))))
    from edgecls.training.resume import train_or_resume

    run = train_or_resume(TrainConfig(data="ignored", out=str(tmp_path / "run"), resume=True), show_progress=False)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt.raw["epoch"] == 1 and ckpt.contract.input_size == (32, 32)
    after = ckpt.contract.to_dict()
    assert all(after[k] == before[k] for k in ("input_size", "mean", "std", "resize_mode", "interpolation"))
    # an old checkpoint's train_config is read the same way (export's QAT path reads it)
    old = {**ckpt.raw["train_config"], "img_size": 32}
    del old["input_size"]
    assert TrainConfig.from_dict(old).input_size == 32
    assert build_model("cnn", 5, img_size=32, width=8)(torch.zeros(1, 3, 32, 32)).shape == (1, 5)  # old keyword


def test_an_old_fine_tuning_config_keeps_the_weights_preprocessing(tiny_arch: str, tmp_path: Path) -> None:
    """Version 1 stored ImageNet's mean/std in every config while the weights' won: resuming such a run must
    feed what it was trained with, not the stored defaults that now would win."""
    from edgecls.data.load import load_data
    from edgecls.training.resume import config_to_run
    from edgecls.training.run_contract import make_contract

    data = stripes_folder(tmp_path / "data", per_class=4)
    run = tmp_path / "run"
    run.mkdir()
    new = TrainConfig(data=str(data), arch=tiny_arch, pretrained=True, out=str(run))
    (run / "config.json").write_text(json.dumps(_v1(new.to_dict())))
    resumed = config_to_run(TrainConfig(data="ignored", out=str(run), resume=True))
    c = make_contract(resumed, load_data(str(data), seed=0))
    assert (c.mean, c.std, c.interpolation, c.input_size) == (TINY_CONTRACT.mean, TINY_CONTRACT.std, "area", (40, 40))
    # the same config written now (version 2) keeps a mean given on purpose
    (run / "config.json").write_text(json.dumps({**new.to_dict(), "mean": [0.5, 0.5, 0.5]}))
    c2 = make_contract(config_to_run(TrainConfig(data="ignored", out=str(run), resume=True)), load_data(str(data)))
    assert c2.mean == (0.5, 0.5, 0.5) and c2.std == TINY_CONTRACT.std
