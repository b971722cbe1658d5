"""The model contract: everything a consumer must know to feed a classifier exactly what it saw in training.

One dataclass, written by training (into checkpoints and run directories) and by export (as one versioned
JSON entry in the ONNX file's ``metadata_props``), read by the runtime through
``session.get_modelmeta().custom_metadata_map`` so the device needs no ``onnx`` package.

Kept free of torch/onnx imports: this module is part of the edge runtime.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from edgecls.runtime.errors import ContractError

#: Key of the single metadata_props entry that carries the contract.
METADATA_KEY = "edgecls.contract"
#: Bump when a field changes meaning. Readers refuse newer majors with a clear message.
SCHEMA_VERSION = 1

ResizeMode = Literal["stretch", "shorter_side_crop"]
ColorOrder = Literal["RGB", "BGR"]
Interpolation = Literal["nearest", "linear", "cubic", "area"]

RESIZE_MODES: tuple[str, ...] = ("stretch", "shorter_side_crop")
COLOR_ORDERS: tuple[str, ...] = ("RGB", "BGR")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "linear", "cubic", "area")
JpegDecode = Literal["reduced", "full"]
JPEG_DECODES: tuple[str, ...] = ("reduced", "full")

#: Bounds that keep preprocessing's memory and arithmetic finite for any contract a file may carry: no
#: classifier consumes more than 8192 px a side, and timm/torchvision crop fractions are 0.5-1.0.
MAX_INPUT_SIDE = 8192
MIN_CROP_FRACTION = 0.25
_MAX = 1e30

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
        # Normalise sequences (JSON gives lists) and validate so bad contracts fail at load, not mid-run.
        if isinstance(self.labels, (str, bytes)):
            raise ContractError("invalid model contract: labels must be a list of strings, not one string")
        try:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
            object.__setattr__(self, "input_size", tuple(int(x) for x in self.input_size))
            object.__setattr__(self, "mean", tuple(float(x) for x in self.mean))
            object.__setattr__(self, "std", tuple(float(x) for x in self.std))
            object.__setattr__(self, "scale", float(self.scale))
            object.__setattr__(self, "crop_fraction", float(self.crop_fraction))
        except (TypeError, ValueError, OverflowError) as e:
            raise ContractError(f"invalid model contract: {e}") from e
        problems = self._problems()
        if problems:
            raise ContractError("invalid model contract: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        p: list[str] = []
        if len(self.labels) < 2:
            p.append(f"needs at least 2 labels, got {len(self.labels)}")
        if len(set(self.labels)) != len(self.labels):
            p.append("labels are not unique")
        if len(self.input_size) != 2 or not all(1 <= v <= MAX_INPUT_SIDE for v in self.input_size):
            p.append(f"input_size must be (height, width) in [1, {MAX_INPUT_SIDE}], got {self.input_size}")
        if self.layout != "NCHW":
            p.append(f"layout {self.layout!r} unsupported (NCHW only)")
        if self.color_order not in COLOR_ORDERS:
            p.append(f"color_order must be one of {COLOR_ORDERS}, got {self.color_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            p.append("mean and std need 3 values")
        elif not all(math.isfinite(v) and abs(v) <= _MAX for v in (*self.mean, *self.std, self.scale)):
            # Finite in float32 too: preprocessing casts these to float32 before its multiply-add.
            p.append(f"scale, mean and std must be finite numbers of magnitude <= {_MAX:g}")
        elif any(s <= 0 for s in self.std):
            p.append("std values must be > 0")
        elif not self.scale > 0:
            p.append("scale must be > 0")
        elif max(255 * self.scale / s + abs(m) / s for m, s in zip(self.mean, self.std, strict=True)) > _MAX:
            # x * scale / std - mean / std must stay finite in float32 (e.g. std 1e-300 gives inf/NaN).
            p.append(f"scale/std and mean/std must be below {_MAX:g} (std too small?)")
        if self.resize_mode not in RESIZE_MODES:
            p.append(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if not MIN_CROP_FRACTION <= self.crop_fraction <= 1:
            p.append(f"crop_fraction must be in [{MIN_CROP_FRACTION}, 1], got {self.crop_fraction}")
        if self.interpolation not in INTERPOLATIONS:
            p.append(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.jpeg_decode not in JPEG_DECODES:
            p.append(f"jpeg_decode must be one of {JPEG_DECODES}, got {self.jpeg_decode!r}")
        if self.output_kind not in ("logits", "probabilities"):
            p.append(f"output_kind must be logits or probabilities, got {self.output_kind!r}")
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
        if not isinstance(d, dict):
            raise ContractError(f"model contract must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ContractError(
                f"model contract schema version {version} is newer than this edgecls understands "
                f"({SCHEMA_VERSION}); upgrade edgecls"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("labels", "input_size") if k not in d]
        if missing:
            raise ContractError(f"model contract lacks required field(s): {', '.join(missing)}")
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except (TypeError, ValueError) as e:
            raise ContractError(f"invalid model contract: {e}") from e

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractError(f"model contract is not valid JSON: {e}") from e
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> ModelContract:
        return dataclasses.replace(self, **changes)

    def with_provenance(self, **extra: Any) -> ModelContract:
        """A copy whose provenance has ``extra`` merged in (nested dicts replaced, not merged)."""
        return dataclasses.replace(self, provenance={**self.provenance, **extra})


def contract_from_metadata(metadata: dict[str, str]) -> ModelContract | None:
    """Read the contract from an ONNX ``custom_metadata_map``; None when the model has none."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        return None
    return ModelContract.from_json(text)
