"""The model contract: everything a consumer must know to feed a classifier exactly what it saw in training.

One dataclass, written by training (into checkpoints and run directories) and by export (as one versioned
JSON entry in the ONNX file's ``metadata_props``), read by the runtime through
``session.get_modelmeta().custom_metadata_map`` so the device needs no ``onnx`` package.

Kept free of torch/onnx imports: this module is part of the edge runtime.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from edgecls.runtime.contract.schema import (
    MAX_MAGNITUDE,
    SCHEMA_VERSION,
    doc_fields,
    parse_contract_json,
    validate_contract_dict,
)
from edgecls.runtime.errors import ContractError

#: Key of the single metadata_props entry that carries the contract.
METADATA_KEY = "edgecls.contract"

ResizeMode = Literal["stretch", "shorter_side_crop"]
ColorOrder = Literal["RGB", "BGR"]
Interpolation = Literal["nearest", "linear", "cubic", "area"]

RESIZE_MODES: tuple[str, ...] = ("stretch", "shorter_side_crop")
COLOR_ORDERS: tuple[str, ...] = ("RGB", "BGR")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "linear", "cubic", "area")
JpegDecode = Literal["reduced", "full"]
JPEG_DECODES: tuple[str, ...] = ("reduced", "full")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelContract:
    """Input contract and provenance of an image classifier.

    The model consumes ``float32[N, 3, H, W]`` (layout NCHW) built as
    ``((pixel[color_order] * scale) - mean) / std`` after resizing per ``resize_mode``; it outputs
    ``float32[N, len(labels)]`` logits (or probabilities when ``output_kind == "probabilities"``).
    """

    labels: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width) the network consumes
    layout: Literal["NCHW"] = "NCHW"
    color_order: ColorOrder = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize_mode: ResizeMode = "shorter_side_crop"
    crop_fraction: float = 0.875  # shorter_side_crop: shorter side to size / crop_fraction, crop centre
    interpolation: Interpolation = "linear"
    output_kind: Literal["logits", "probabilities"] = "logits"
    # "reduced": a JPEG at least 2x the resize floor decodes at 1/2-1/4-1/8 scale (libjpeg's scaled IDCT;
    # edgecls trains/evaluates this way). "full": every pixel, for models whose accuracy was measured so.
    jpeg_decode: JpegDecode = "reduced"
    schema_version: int = SCHEMA_VERSION
    # Free-form but conventional keys: arch, arch_kwargs, metrics, checkpoint_sha256, variant,
    # quantization {method, calibration, images, accuracy_fp32, accuracy_int8, nodes_kept_float, ...}.
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Validate the fields as given (types first: a string input_size "32" must not become (3, 2)), then
        # normalise sequences (JSON gives lists) so bad contracts fail at load, not mid-run.
        given = {f.name: _python_values(getattr(self, f.name)) for f in dataclasses.fields(self)}
        doc = validate_contract_dict(given)
        for name, value in doc_fields(doc).items():
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)
        problems = self._problems()
        if problems:
            raise ContractError("invalid model contract: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        """The rules that relate fields (the schema checks each field on its own)."""
        p: list[str] = []
        if len(set(self.labels)) != len(self.labels):
            p.append("labels: not unique")
        if max(255 * self.scale / s + abs(m) / s for m, s in zip(self.mean, self.std, strict=True)) > MAX_MAGNITUDE:
            # x * scale / std - mean / std must stay finite in float32 (e.g. std 1e-300 gives inf/NaN).
            p.append(f"std: scale/std and mean/std must be below {MAX_MAGNITUDE:g} (std too small?)")
        return p

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    # --- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["labels"] = list(self.labels)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelContract:
        """The contract in ``d`` (e.g. from a checkpoint); ContractError names the first bad field."""
        return cls(**doc_fields(validate_contract_dict(d)))

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        """The contract in JSON ``text`` (length and nesting are bounded before it is parsed)."""
        return cls(**doc_fields(parse_contract_json(text)))

    def replace(self, **changes: Any) -> ModelContract:
        return dataclasses.replace(self, **changes)

    def with_provenance(self, **extra: Any) -> ModelContract:
        """A copy whose provenance has ``extra`` merged in (nested dicts replaced, not merged)."""
        return dataclasses.replace(self, provenance={**self.provenance, **extra})


def _python_values(value: Any) -> Any:
    """numpy numbers as Python ones (callers in Python may hand them over; JSON never does)."""
    if isinstance(value, (list, tuple)):
        return [_python_values(v) for v in value]
    return value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") else value


def contract_from_metadata(metadata: dict[str, str]) -> ModelContract | None:
    """Read the contract from an ONNX ``custom_metadata_map``; None when the model has none."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        return None
    return ModelContract.from_json(text)
