"""Fixtures of the benchmark tests: a tiny export directory (fp32 + int8 + source checkpoint), a fixed-batch
model, a corrupt model and a labelled image folder with one corrupt file.

Models are built here (TorchScript exporter, ``quantize_static`` with a small random calibration reader) so
the benchmark tests do not depend on the export stage. The fixtures may use torch/onnx; the code under test
(edgecls.runtime.bench*) may not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import LABELS, add_contract, export_torch, golden_images

from edgecls.runtime.contract.model_contract import ModelContract

SIZE = 32


@dataclass(frozen=True)
class BenchModels:
    export_dir: Path  # model.onnx, model.int8.onnx and best.pt (the source checkpoint)
    fp32: Path  # dynamic batch, contract with checkpoint provenance
    int8: Path  # QDQ int8 of fp32
    fixed: Path  # fixed batch 1, in its own folder (its own family)
    broken: Path  # random bytes named .onnx
    checkpoint: Path
    images: Path  # class sub-folders named like LABELS (3 images each) + one corrupt JPEG
    contract: ModelContract


class _RandomCalibration:
    """onnxruntime CalibrationDataReader: a few batches of random ``float32[1, 3, 32, 32]``."""

    def __init__(self, n: int = 4) -> None:
        rng = np.random.default_rng(0)
        self._batches = iter(
            [{"input": rng.standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)} for _ in range(n)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _quantize(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(fp32),
        str(out),
        _RandomCalibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def _write_images(root: Path) -> None:
    imgs = golden_images(len(LABELS) * 3, seed=1)
    for i, img in enumerate(imgs):
        folder = root / LABELS[i % len(LABELS)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"img_{i}.png"), img)
    (root / LABELS[0] / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory) -> BenchModels:
    from edgecls.models.registry import arch_kwargs, build_model
    from edgecls.training.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("bench")
    export_dir = root / "export"
    export_dir.mkdir()
    contract = ModelContract(
        labels=LABELS, input_size=(SIZE, SIZE), resize_mode="stretch", provenance={"arch": "cnn"}
    )
    model = build_model("cnn", len(LABELS), SIZE, width=8).eval()
    checkpoint = save_checkpoint(
        export_dir / "best.pt",
        {
            "arch": "cnn",
            "arch_kwargs": arch_kwargs("cnn", width=8),
            "contract": contract.to_dict(),
            "model_state": model.state_dict(),
            "epoch": 0,
            "metrics": {},
        },
    )
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    onnx_contract = contract.with_provenance(checkpoint_sha256=sha, checkpoint=str(checkpoint))

    fp32 = export_dir / "model.onnx"
    export_torch(model, fp32, SIZE, batch=None)
    add_contract(fp32, onnx_contract)
    int8 = export_dir / "model.int8.onnx"
    _quantize(fp32, int8)
    add_contract(int8, onnx_contract.with_provenance(variant="int8"))

    fixed = root / "fixed" / "fixed1.onnx"
    fixed.parent.mkdir()
    export_torch(model, fixed, SIZE, batch=1)
    add_contract(fixed, contract)

    broken = root / "broken" / "broken.onnx"
    broken.parent.mkdir()
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())

    images = root / "images"
    _write_images(images)
    return BenchModels(export_dir, fp32, int8, fixed, broken, checkpoint, images, contract)
