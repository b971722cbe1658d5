"""Bring your own model: any torch classifier, built by a factory the user names, through the same export.

``--model FILE.py:FACTORY`` loads FILE.py as a module and calls ``FACTORY()``;
``--model package.module:FACTORY`` imports the module. The factory returns an ``nn.Module`` mapping
float32[N, 3, H, W] to float32[N, C] logits. ``--weights`` (optional) is a state dict (or a dict holding
one under ``state_dict`` / ``model_state``) loaded strictly; ``--labels`` is a text file with one label
per line (or a JSON list) and must have exactly C entries. The preprocessing the model expects is stated
with flags and stored as the contract.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.models.user_model import ModelFactoryError, build_user_model, first_line
from edgecls.runtime.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract
from edgecls.runtime.errors import ContractError, EdgeclsError


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """One label per non-empty line, or a JSON list of strings."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ContractError(f"--labels {p}: cannot read ({e.strerror or e})") from e
    if text.lstrip().startswith("["):
        try:
            labels = [str(x) for x in json.loads(text)]
        except json.JSONDecodeError as e:
            raise ContractError(f"--labels {p}: invalid JSON list ({e})") from e
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) < 2:
        raise ContractError(f"--labels {p}: needs at least 2 labels, found {len(labels)}")
    return labels


@dataclass
class PreprocessFlags:
    """The preprocessing flags of ``--model`` exports and of ``edgecls quantize`` on foreign ONNX files."""

    img_size: int | tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "shorter_side_crop"
    crop: float = 0.875
    interpolation: str = "linear"
    color_order: str = "RGB"
    scale: float = 1.0 / 255.0
    jpeg_decode: str = "reduced"  # "full" for a model whose accuracy was measured on fully decoded JPEGs

    def contract(self, labels: list[str], provenance: dict[str, Any] | None = None) -> ModelContract:
        size = (self.img_size, self.img_size) if isinstance(self.img_size, int) else self.img_size
        return ModelContract(
            labels=tuple(labels),
            input_size=size,
            color_order=self.color_order,  # type: ignore[arg-type]
            scale=self.scale,
            mean=self.mean,
            std=self.std,
            resize_mode=self.resize,  # type: ignore[arg-type]
            crop_fraction=self.crop,
            interpolation=self.interpolation,  # type: ignore[arg-type]
            jpeg_decode=self.jpeg_decode,  # type: ignore[arg-type]
            provenance=provenance or {},
        )


@torch.no_grad()
def check_output_size(model: nn.Module, contract: ModelContract, spec: str) -> None:
    """One forward pass on float32[2, 3, H, W]: the output must be [2, len(labels)]."""
    h, w = contract.input_size
    try:
        out = model(torch.zeros(2, 3, h, w))
    except Exception as e:
        raise ModelFactoryError(
            f"--model {spec}: forward pass on a [2, 3, {h}, {w}] batch failed ({first_line(e)})"
        ) from e
    if not isinstance(out, torch.Tensor):
        raise ModelFactoryError(f"--model {spec}: forward returned {type(out).__name__}, expected one tensor of logits")
    if out.ndim != 2 or out.shape[1] != contract.num_classes:
        raise ContractError(
            f"--labels has {contract.num_classes} labels but the model outputs shape "
            f"{tuple(out.shape)}; they must match (one label per output)"
        )


def prepare_user_model(
    spec: str,
    weights: str | os.PathLike[str] | None,
    labels_path: str | os.PathLike[str],
    flags: PreprocessFlags,
) -> tuple[nn.Module, ModelContract]:
    """Everything ``edgecls export --model`` needs before the shared pipeline: the module and its contract."""
    labels = read_labels(labels_path)
    provenance: dict[str, Any] = {"arch": f"user:{spec}", "source": "byo"}
    if weights is not None:
        provenance["checkpoint_sha256"] = (
            hashlib.sha256(Path(weights).read_bytes()).hexdigest() if Path(weights).is_file() else None
        )
    contract = flags.contract(labels, provenance)
    model = build_user_model(spec, weights)
    check_output_size(model, contract, spec)
    return model, contract


def export_user_model(
    spec: str,
    weights: str | os.PathLike[str] | None,
    labels_path: str | os.PathLike[str],
    flags: PreprocessFlags,
    options: Any,
    log: Callable[[str], None] = print,
) -> Any:
    """``edgecls export --model ...``: the shared export pipeline for a user's torch classifier.

    Parity images come from ``options.data``; ``--quantize`` needs ``--calib``, and with only ``--calib`` its
    images are split (seeded, disjoint) into calibration and validation parts, the parity check using
    validation images. Without ``--quantize`` or ``--data`` the parity check (ONNX vs PyTorch, not an
    accuracy measurement) runs on edgecls's builtin:shapes images, and the log says so.
    """
    from edgecls.export.export_run import export_model, resolve_inputs

    if options.quantize and options.calib is None:
        raise EdgeclsError("--quantize with --model needs --calib DATA (images like the ones the model will see)")
    model, contract = prepare_user_model(spec, weights, labels_path, flags)
    if options.data is None and not options.quantize:
        options.data = "builtin:shapes"
        log("parity check (ONNX vs PyTorch) on builtin:shapes images: pass --data for images of your domain")
    if options.quantize and options.val is None and options.data is None and options.calib.startswith("builtin:"):
        raise EdgeclsError(
            f"--quantize with --model and --calib {options.calib}: pass --val DATA with images of the model's "
            "domain (a built-in set is not your model's domain)"
        )
    inputs = resolve_inputs(options, contract, None, spec, log)
    return export_model(model, contract, Path(options.out_dir or "export"), inputs, options, log)
