"""Bring your own model: any torch classifier, built by a factory the user names, through the same export.

``--model FILE.py:FACTORY`` loads FILE.py as a module and calls ``FACTORY()``;
``--model package.module:FACTORY`` imports the module. The factory returns an ``nn.Module`` mapping
float32[N, 3, H, W] to float32[N, C] logits. ``--weights`` (optional) is a state dict (or a dict holding
one under ``state_dict`` / ``model_state``) loaded strictly; ``--labels`` is a text file with one label
per line (or a JSON list, or ``a,b,c``) and must have exactly C entries. The preprocessing the model expects is
stated with the contract flags (:class:`~edgecls.runtime.contract.options.ContractOptions`) and stored as the
contract.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.export.export_run import ExportOptions, ExportReport, export_model, resolve_inputs
from edgecls.models.user_model import ModelFactoryError, build_user_model, first_line
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.options import ContractOptions, contract_from_options
from edgecls.runtime.errors import ContractError, EdgeclsError


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
    contract_options: ContractOptions,
) -> tuple[nn.Module, ModelContract]:
    """Everything ``edgecls export --model`` needs before the shared pipeline: the module and its contract
    (``--labels`` and ``--input-size`` are required, the other contract fields default to ModelContract's)."""
    provenance: dict[str, Any] = {"arch": f"user:{spec}", "source": "byo"}
    if weights is not None:
        provenance["checkpoint_sha256"] = (
            hashlib.sha256(Path(weights).read_bytes()).hexdigest() if Path(weights).is_file() else None
        )
    contract = contract_from_options(contract_options, provenance=provenance)
    model = build_user_model(spec, weights)
    check_output_size(model, contract, spec)
    return model, contract


def export_user_model(
    spec: str,
    weights: str | os.PathLike[str] | None,
    contract_options: ContractOptions,
    options: ExportOptions,
    log: Callable[[str], None] = print,
) -> ExportReport:
    """``edgecls export --model ...``: the shared export pipeline for a user's torch classifier.

    Parity images come from ``options.data``, or with ``--quantize`` from the validation images; ``--quantize``
    needs ``--calib``, and with only ``--calib`` its images are split (seeded, disjoint) into calibration and
    validation parts. Without ``--quantize`` or ``--data`` the parity check (ONNX vs PyTorch, not an accuracy
    measurement) runs on edgecls's builtin:shapes images, and the log says so.
    """
    calib = options.int8_images.calib
    if options.quantize is not None and calib is None:
        raise EdgeclsError("--quantize with --model needs --calib DATA (images like the ones the model will see)")
    model, contract = prepare_user_model(spec, weights, contract_options)
    if options.data is None and options.quantize is None:
        options = replace(options, data="builtin:shapes")
        log("parity check (ONNX vs PyTorch) on builtin:shapes images: pass --data for images of your domain")
    no_domain_images = options.int8_images.val is None and options.data is None
    if options.quantize is not None and no_domain_images and calib is not None and calib.startswith("builtin:"):
        raise EdgeclsError(
            f"--quantize with --model and --calib {calib}: pass --val DATA with images of the model's "
            "domain (a built-in set is not your model's domain)"
        )
    inputs = resolve_inputs(options, contract, None, spec, log)
    return export_model(model, contract, Path(options.out_dir or "export"), inputs, options, log)
