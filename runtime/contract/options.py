"""Contract fields stated by a user (command-line flags or library keywords) and the contract they make.

One vocabulary from flag to field: each attribute of :class:`ContractOptions` is named after the
:class:`~edgecls.runtime.contract.model_contract.ModelContract` field it sets, and the command line spells it the
same way
(``input_size`` <-> ``--input-size``). Values arrive as the user typed them (``"224"`` or ``"224x160"``,
``"0.5,0.5,0.5"``, a label file or ``"a,b,c"``) and are parsed here, once, for train, export, quantize, run
and bench. Torch-free: part of the edge runtime.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ContractError


def flag(field_name: str) -> str:
    """The command-line spelling of a contract field: ``crop_fraction`` -> ``--crop-fraction``."""
    return "--" + field_name.replace("_", "-")


def read_labels(text: str | os.PathLike[str]) -> list[str]:
    """``--labels``: a file (one label per non-empty line, or a JSON list) or a comma-separated ``a,b,c``."""
    path = Path(text)
    if path.is_file():
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ContractError(f"--labels {path}: cannot read ({e})") from e
        if content.lstrip().startswith("["):
            try:
                labels = [str(x) for x in json.loads(content)]
            except json.JSONDecodeError as e:
                raise ContractError(f"--labels {path}: invalid JSON list ({e})") from e
        else:
            labels = [line.strip() for line in content.splitlines() if line.strip()]
    elif "," in str(text):
        labels = [v.strip() for v in str(text).split(",")]
    else:
        raise ContractError(f"--labels {text}: no such file (give a file with one label per line, or a,b,c)")
    if len(labels) < 2:
        raise ContractError(f"--labels {text}: needs at least 2 labels, found {len(labels)}")
    return labels


def parse_input_size(text: str | int) -> tuple[int, int]:
    """``--input-size``: ``S`` (square) or ``HxW`` -> (height, width)."""
    try:
        parts = [int(v) for v in str(text).lower().replace("x", ",").split(",")]
    except ValueError as e:
        raise ContractError(f"--input-size must be S or HxW, got {text!r}") from e
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ContractError(f"--input-size must be S or HxW, got {text!r}")
    return parts[0], parts[1]


def parse_triple(text: str, name: str) -> tuple[float, float, float]:
    """``--mean``/``--std``: ``r,g,b`` (or one number for all three channels), in [0, 1] pixel units."""
    try:
        values = tuple(float(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError as e:
        raise ContractError(f"{flag(name)} needs 3 comma-separated numbers, got {text!r}") from e
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ContractError(f"{flag(name)} needs 3 comma-separated numbers, got {text!r}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class ContractOptions:
    """Contract fields a user gave; None means "not given" (keep the model's own value, or the default).

    Names are :class:`ModelContract` field names; values are as typed (strings for the list-like ones).
    """

    labels: str | None = None  # a label file or "a,b,c"
    input_size: str | None = None  # "S" or "HxW"
    mean: str | None = None  # "r,g,b"
    std: str | None = None  # "r,g,b"
    scale: float | None = None
    resize_mode: str | None = None
    crop_fraction: float | None = None
    interpolation: str | None = None
    color_order: str | None = None
    output_kind: str | None = None
    jpeg_decode: str | None = None

    def given(self) -> dict[str, Any]:
        """The fields the user gave, parsed to ModelContract's types (labels/input_size/mean/std as tuples)."""
        parsed: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "labels":
                value = tuple(read_labels(value))
            elif f.name == "input_size":
                value = parse_input_size(value)
            elif f.name in ("mean", "std"):
                value = parse_triple(value, f.name)
            elif f.name == "color_order":
                value = str(value).upper()
            parsed[f.name] = value
        return parsed

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def contract_from_options(
    options: ContractOptions,
    base: ModelContract | None = None,
    provenance: dict[str, Any] | None = None,
) -> ModelContract:
    """``base`` with the given fields replaced; without a base, a new contract (labels and input size required).

    Validation is ModelContract's own, so a bad value fails here with the field's name in the message.
    """
    given = options.given()
    if base is not None:
        contract = base.replace(**given)
        return contract.with_provenance(**provenance) if provenance else contract
    missing = [flag(name) for name in ("labels", "input_size") if name not in given]
    if missing:
        raise ContractError(
            f"the model has no edgecls contract: pass {' and '.join(missing)} (and its preprocessing: "
            "--mean/--std/--resize-mode/--crop-fraction/--interpolation/--color-order)"
        )
    return ModelContract(**given, provenance=dict(provenance or {}))
