"""Shared fixtures. Each area keeps its own fixtures in tests/fixtures_<area>.py (loaded below)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).parent
pytest_plugins = [
    name
    for name in ("fixtures_export", "fixtures_runtime", "fixtures_bench", "fixtures_reliability", "fixtures_serve",
                 "fixtures_streams", "fixtures_quant", "fixtures_deploy",
                 "fixtures_systemd")
    if (_HERE / f"{name}.py").exists()
]

# Keep the 2-core CI box responsive: torch would otherwise spin up a thread per core in every worker.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: beside any other busy process, spinning torch threads slowed a
# tiny training run by two orders of magnitude on this 2-core box, while on a quiet box the policy costs nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _tiny_run(root: Path, arch: str, data: str = "builtin:shapes", epochs: int = 3, **kw: object) -> Path:
    from edgecls.training.config import TrainConfig
    from edgecls.training.train import train

    out = root / f"{arch}_{data.split(':')[-1]}"
    cfg = TrainConfig(
        data=data, arch=arch, epochs=epochs, input_size=32, batch_size=32, out=str(out), warmup_epochs=0.3, **kw
    )  # type: ignore[arg-type]
    return train(cfg, show_progress=False)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real training run in a few seconds: classic CNN, builtin:shapes, 32 px, 3 epochs (well above chance)."""
    return _tiny_run(tmp_path_factory.mktemp("runs"), "cnn")


@pytest.fixture(scope="session")
def tiny_run_mnv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default edge architecture (width 0.5), builtin:shapes, 32 px, 3 epochs."""
    return _tiny_run(tmp_path_factory.mktemp("runs"), "mobilenetv2_050")


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
