"""Training: a real run writes everything export needs; resume replays exactly; DDP runs 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_training import big_block_is_mmapped, tiny_config

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError
from edgecls.training.checkpoint import load_checkpoint
from edgecls.training.config import TrainConfig
from edgecls.training.train import train


def test_run_directory_carries_the_full_config(tiny_run: Path) -> None:
    for name in (
        "best.pt",
        "last.pt",
        "config.json",
        "contract.json",
        "split.json",
        "history.csv",
        "history.json",
        "curves.png",
        "summary.json",
        "eval/metrics.json",
        "eval/confusion.png",
    ):
        assert (tiny_run / name).is_file(), name
    contract = ModelContract.from_dict(json.loads((tiny_run / "contract.json").read_text()))
    assert contract.labels == ("circle", "square", "triangle", "star", "cross")
    assert contract.input_size == (32, 32) and contract.resize_mode == "stretch"
    assert contract.provenance["arch"] == "cnn" and "test_top1" in contract.provenance["metrics"]
    ckpt = load_checkpoint(tiny_run)  # run dir -> best.pt
    assert ckpt.contract == contract and ckpt.arch == "cnn"
    model = ckpt.build_model()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
    history = json.loads((tiny_run / "history.json").read_text())
    assert len(history) == 3 and history[0]["train_loss"] > 0
    assert (tiny_run / "history.csv").read_text().startswith("epoch,train_loss,train_acc,val_loss,val_acc")


def _config(out: Path, epochs: int = 3, **kw: object) -> TrainConfig:
    return TrainConfig(
        data="builtin:shapes",
        arch="cnn",
        epochs=epochs,
        input_size=32,
        batch_size=32,
        out=str(out),
        max_train_batches=4,
        **kw,
    )  # type: ignore[arg-type]


@pytest.mark.slow  # three training runs: 27 s at load 5-13
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    train(_config(tmp_path / "full"), show_progress=False)

    def interrupt_after_epoch_2(msg: str) -> None:
        if msg.startswith("epoch   2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path / "cut"), log=interrupt_after_epoch_2, show_progress=False)
    assert load_checkpoint(tmp_path / "cut" / "last.pt").raw["epoch"] == 1
    with pytest.raises(EdgeclsError, match="--resume"):
        train(_config(tmp_path / "cut"), show_progress=False)
    train(_config(tmp_path / "cut", resume=True), show_progress=False)
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert b.raw["epoch"] == 2
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key


@pytest.mark.slow  # two training runs: 10 s at load 5-13
def test_seeded_runs_are_identical(tmp_path: Path) -> None:
    train(_config(tmp_path / "a", epochs=1), show_progress=False)
    train(_config(tmp_path / "b", epochs=1), show_progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert all(torch.equal(v, b.model_state[k]) for k, v in a.model_state.items())


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "run"  # a path under a regular file cannot be created, even by root
    else:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
    with pytest.raises(EdgeclsError, match="cannot create output directory|not writable"):
        train(_config(out), show_progress=False)


@pytest.mark.slow  # two DDP training processes: 41 s at load 5-13
def test_distributed_two_cpu_processes(tmp_path: Path) -> None:
    """torchrun with 2 processes (gloo): only rank 0 writes, and the run is complete."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "edgecls",
        "train",
        "builtin:shapes",
        "--arch",
        "cnn",
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--batch-size",
        "64",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes (DDP)" in proc.stderr
    assert (out / "best.pt").is_file() and (out / "eval" / "metrics.json").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1  # one epoch logged once, by rank 0 only


def test_unreadable_training_images_are_skipped_named_and_counted(
    shapes_folder: Path, tmp_path: Path
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes_folder, data)
    for cls in ("circle", "star"):  # one broken file in each of two classes
        (data / cls / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    messages: list[str] = []
    cfg = TrainConfig(
        data=str(data), arch="cnn", epochs=1, input_size=32, batch_size=16, out=str(tmp_path / "run")
    )
    run = train(cfg, log=messages.append, show_progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["skipped_images"] == 2
    named = [m for m in messages if m.startswith("warning: skipped unreadable image")]
    assert len(named) == 2 and all("zz_broken.png" in m for m in named)
    assert any("2 unreadable image(s) skipped" in m for m in messages)
    contract = json.loads((run / "contract.json").read_text())
    assert contract["resize_mode"] == "shorter_side_crop"  # folders default to the timm/torchvision eval crop


def test_trainer_allocator_tuning_applies_on_glibc(tiny_run: Path) -> None:
    """Observed, not restated: glibc maps a 48 MiB block of its own in a fresh process, and no longer does in this
    one once the trainer has run here (``tiny_run`` trains in-process; nothing else in the suite calls mallopt)."""
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the tuning is glibc's mallopt(3): other C libraries keep their own allocator policy")
    probe = "import sys; sys.path.insert(0, 'tests'); import fixtures_training as f; print(f.big_block_is_mmapped())"
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).resolve().parents[1])
    assert fresh.returncode == 0 and fresh.stdout.strip() == "True", fresh.stderr  # the probe sees the default
    assert tiny_run.is_dir() and not big_block_is_mmapped()  # after train(): served from the heap, kept for reuse


def test_resume_trains_the_saved_config_and_a_new_run_merges_augmentation(tmp_path: Path) -> None:
    from edgecls.data.augment import AugmentConfig
    from edgecls.training.resume import AugmentOverrides, config_to_run

    # a new run: the data's augmentation (digits: no flips) with only the given fields replaced
    new = config_to_run(TrainConfig(data="builtin:digits", out=str(tmp_path / "new")), AugmentOverrides(noise_std=0.0))
    default = TrainConfig(data="builtin:digits").resolved_augment()
    assert new.augment == AugmentConfig(**{**default.__dict__, "noise_std": 0.0}) and new.augment.hflip is False
    # resuming: the saved config wins over what is given (even from a config.json that says img_size)
    run = tmp_path / "run"
    run.mkdir()
    saved = {**TrainConfig(data="builtin:shapes", arch="cnn", epochs=5, seed=3).to_dict(), "img_size": 40}
    del saved["input_size"]
    (run / "config.json").write_text(json.dumps(saved))
    given = TrainConfig(data="builtin:digits", arch="resnet18", epochs=1, input_size=64, out=str(run), resume=True)
    resumed = config_to_run(given, AugmentOverrides(hflip=False))
    assert (resumed.data, resumed.arch, resumed.epochs, resumed.seed, resumed.input_size) == (
        "builtin:shapes", "cnn", 5, 3, 40
    )
    assert resumed.resume and resumed.out == str(run) and resumed.augment.hflip is True  # shapes' saved default


def test_training_input_size_is_square_and_bad_choices_fail_early() -> None:
    from edgecls.training.config import square_input_size

    assert square_input_size("48") == 48 and square_input_size("48x48") == 48 and square_input_size(None) is None
    with pytest.raises(EdgeclsError, match="--input-size 48x64: training makes square inputs"):
        square_input_size("48x64")
    with pytest.raises(EdgeclsError, match="--optimizer must be adamw or sgd"):
        TrainConfig(data="builtin:shapes", optimizer="adam")  # type: ignore[arg-type]
    with pytest.raises(EdgeclsError, match="--head names the classifier of --model"):
        TrainConfig(data="builtin:shapes", head="fc")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--input-size", "32x48"], "error: --input-size 32x48: training makes square inputs"),
        (["--img-size", "32"], "No such option: --img-size"),  # the old spelling is gone
    ],
)
def test_train_cli_refuses_non_square_and_old_flags(tmp_path: Path, flags: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgecls", "train", "builtin:shapes", *flags, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_run_options_cannot_change_under_the_run(tiny_run: Path, tiny_run_config: TrainConfig) -> None:
    """TrainConfig (saved into every checkpoint) and DemoOptions refuse every assignment, and a run leaves the
    options it was handed as they were built and records exactly those: config.json and both checkpoints."""
    import dataclasses

    from edgecls.demo_results import DemoOptions

    for options in (tiny_run_config, DemoOptions()):
        for f in dataclasses.fields(options):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(options, f.name, getattr(options, f.name))
    as_built = tiny_config(Path(tiny_run_config.out).parent, "cnn").to_dict()  # the same arguments, built afresh
    assert tiny_run_config.to_dict() == as_built  # nothing in the run edited the caller's object (nor its dicts)
    recorded = json.loads(json.dumps(as_built))  # as JSON stores it (tuples become lists)
    assert json.loads((tiny_run / "config.json").read_text()) == recorded
    for name in ("best.pt", "last.pt"):
        assert json.loads(json.dumps(load_checkpoint(tiny_run / name).raw["train_config"])) == recorded, name
