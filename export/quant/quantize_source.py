"""What ``edgecls quantize`` does: post-training int8 of an ONNX file, or int8 learned from its torch model.

With the torch model the file was exported from (``--model FILE.py:FACTORY``), ``--distill`` defaults to
``auto`` (learn when post-training int8 misses the budget); without it there is nothing to learn from, so
``--distill on`` is refused and ``auto`` is plain post-training. The choice lives here, not in the command.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecls.export.quant.distill_export import (
    DEFAULT_TIME_BUDGET,
    DistillOptions,
    DistillUnavailableError,
    quantize_file_learning,
)
from edgecls.export.quant.quantize_file import QuantizeFileOptions, quantize_file
from edgecls.export.quant.report import QuantReport


@dataclass(frozen=True)
class TorchSource:
    """The float torch model an ONNX file came from, to learn int8 from (``--model``, ``--weights``, ``--distill``)."""

    model: str | None = None  # FILE.py:FACTORY or module:FACTORY; None: the ONNX file alone
    weights: Path | None = None  # state dict for ``model``
    distill: str | None = None  # auto, on, off; None: auto with ``model``, off without
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds of learning
    progress: bool = True  # the learning's progress bar on stderr

    def distill_options(self) -> DistillOptions:
        mode = self.distill or ("auto" if self.model is not None else "off")
        return DistillOptions(mode=mode, time_budget=self.time_budget, progress=self.progress)


def quantize_source(
    model_path: str | os.PathLike[str],
    options: QuantizeFileOptions,
    torch_source: TorchSource = TorchSource(),
    log: Callable[[str], None] = print,
) -> QuantReport:
    """``edgecls quantize MODEL``: int8 of ``model_path`` within the budget, learned from ``torch_source`` when
    it is given and its ``--distill`` mode asks (see quantize_file_learning), else post-training only."""
    learn = torch_source.distill_options()
    if torch_source.model is not None and learn.mode != "off":
        return quantize_file_learning(model_path, options, torch_source.model, torch_source.weights, learn, log)
    if learn.mode == "on":
        raise DistillUnavailableError("--distill on learns from the torch model: give it with --model FILE.py:FACTORY")
    return quantize_file(model_path, options, log)
