"""Shared fixtures. Each area keeps its own fixtures in tests/fixtures_<area>.py (loaded below)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures_training import tiny_config

from edgecls.training.config import TrainConfig

_HERE = Path(__file__).parent
pytest_plugins = [
    name
    # a fixture module comes after the ones it imports (fixtures_serve uses fixtures_streams' servers), so pytest can
    # rewrite each one's asserts as it loads it
    for name in ("fixtures_export", "fixtures_runtime", "fixtures_streams", "fixtures_bench", "fixtures_reliability",
                 "fixtures_serve", "fixtures_quant", "fixtures_deploy", "fixtures_systemd")
    if (_HERE / f"{name}.py").exists()
]

# Keep the 2-core CI box responsive: torch would otherwise spin up a thread per core in every worker.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: beside any other busy process, spinning torch threads slowed a
# tiny training run by two orders of magnitude on this 2-core box, while on a quiet box the policy costs nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own XDG_STATE_HOME (subprocesses inherit it): what one test's run remembers (an int8 file's
    notices are printed once per file and user) must not silence another test's, nor touch the user's own."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """The options ``tiny_run`` is trained with (the object the trainer was handed)."""
    return tiny_config(tmp_path_factory.mktemp("runs"), "cnn")


@pytest.fixture(scope="session")
def tiny_run(tiny_run_config: TrainConfig) -> Path:
    """A real training run in a few seconds: classic CNN, builtin:shapes, 32 px, 3 epochs (well above chance)."""
    from edgecls.training.train import train

    return train(tiny_run_config, show_progress=False)


@pytest.fixture(scope="session")
def tiny_run_mnv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default edge architecture (width 0.5), builtin:shapes, 32 px, 3 epochs."""
    from edgecls.training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "mobilenetv2_050"), show_progress=False)


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ImageFolder tree on disk (PNG and JPEG files) made from the built-in shapes."""
    import cv2

    from edgecls.data.builtin import shapes_set

    root = tmp_path_factory.mktemp("imagefolder")
    images = shapes_set()
    for i in range(0, 150):
        cls = images.classes[images.label(i)]
        (root / cls).mkdir(exist_ok=True)
        ext = ".png" if i % 2 else ".jpg"
        cv2.imwrite(str(root / cls / f"img_{i:04d}{ext}"), images.load(i))
    return root
