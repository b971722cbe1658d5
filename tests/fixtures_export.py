"""Session fixtures of the export area: real exports of the tiny training runs (shared with other areas).

``exported_tiny`` -> a directory holding model.onnx (fp32), model.int8.onnx, model.fp16.onnx,
model.golden.npz, quantization_report.json/.md and export_report.json, made from ``tiny_run``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Small but real settings: every stage runs, in a few seconds.
FAST_QUANT = {"latency_runs": 5, "latency_warmup": 2, "sensitivity_images": 32}
#: The shared export fixture must always write model.int8.onnx: a tiny run's 48 held-out images make one changed
#: answer worth 2 points, over the 1-point budget (the over-budget path has its own tests in test_quantize_command.py).
FIXTURE_QUANT = {**FAST_QUANT, "allow_over_budget": True}


#: A user's own model file (``net.py``) for --model net.py:FACTORY: a depthwise conv net and broken factories.
USER_NET_PY = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, groups=8, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.body(x))

def build():
    torch.manual_seed(0)
    return Net().eval()

def build_five():
    return Net(5)

def not_a_module():
    return {"weights": 1}

def explodes():
    raise RuntimeError("factory exploded")
"""


def fast_export_options(out: Path, quantize: bool = False, **overrides: object) -> object:
    """ExportOptions into ``out`` with few images; ``quantize``: with the fixture's int8 settings."""
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.quant.options import Int8Images, QuantizeOptions

    return ExportOptions(
        out_dir=str(out),
        parity_images=16,
        int8_images=Int8Images(calib_images=64, val_images=96),
        quantize=QuantizeOptions(**FIXTURE_QUANT) if quantize else None,  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def exported_tiny(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``edgecls export tiny_run --quantize --fp16`` into a fresh directory; returns that directory."""
    from edgecls.export.export_run import export_checkpoint

    out = tmp_path_factory.mktemp("exported") / "tiny"
    export_checkpoint(tiny_run, fast_export_options(out, quantize=True, fp16=True), log=lambda _m: None)  # type: ignore[arg-type]
    return out
