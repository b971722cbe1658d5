"""What ``edgecls export`` exports: a trained run/checkpoint, or a user's torch model (``--model``), not both.

The choice and its refusals live here so that the command only parses flags: a run carries the contract it
was trained with, so the contract flags belong to ``--model`` alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgecls.export.export_run import ExportOptions, ExportReport, Log, export_checkpoint
from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class ExportSource:
    """The model to export: ``run`` (a run directory or .pt) or ``model`` (FILE.py:FACTORY / module:FACTORY)."""

    run: str | os.PathLike[str] | None = None
    model: str | None = None
    weights: Path | None = None  # state dict for ``model``
    contract: ContractOptions = field(default_factory=ContractOptions)  # ``model``'s contract (flags)
    trust_checkpoint: bool = False  # let ``run``'s checkpoint run code while it loads (--trust-checkpoint)


def export_source(source: ExportSource, options: ExportOptions, log: Log = print) -> ExportReport:
    """``edgecls export``: export ``source`` with ``options`` (see export_checkpoint / export_user_model)."""
    if source.model is not None:
        if source.run is not None:
            raise EdgeclsError("give either a run/checkpoint or --model, not both")
        from edgecls.export.byo_model import export_user_model

        return export_user_model(source.model, source.weights, source.contract, options, log)
    if source.run is None:
        raise EdgeclsError("nothing to export: give a run directory or checkpoint, or --model FILE.py:FACTORY")
    if source.contract:
        raise EdgeclsError(
            "the contract flags describe a --model; a trained run exports the contract it was trained with"
        )
    return export_checkpoint(source.run, options, log, trust_checkpoint=source.trust_checkpoint)
