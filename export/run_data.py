"""The images a run was trained on, found again from its checkpoint, for parity checks and calibration.

A checkpoint's ``raw["data"]`` (or its run directory's ``config.json``) says how the split was made:
``{"spec": "builtin:digits" | folder, "seed", "val_fraction", "test_fraction"}``. Rebuilding the split with
the same arguments gives the same train/val/test images (the split is seeded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import DataError, EdgeclsError, ImageDecodeError
from edgecls.runtime.preprocess import decode_floor


@dataclass(frozen=True)
class DataRef:
    spec: str
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15


def data_ref_of(raw: dict[str, Any], checkpoint_path: Path) -> DataRef | None:
    """Where the checkpoint's data came from; None when neither the checkpoint nor config.json says."""
    d = raw.get("data")
    if not isinstance(d, dict):
        config = checkpoint_path.parent / "config.json"
        try:
            d = json.loads(config.read_text()) if config.is_file() else raw.get("train_config")
        except (OSError, json.JSONDecodeError):
            d = raw.get("train_config")
    if not isinstance(d, dict):
        return None
    spec = d.get("spec", d.get("data"))
    if not spec:
        return None
    return DataRef(
        str(spec),
        int(d.get("seed", 0)),
        float(d.get("val_fraction", 0.15)),
        float(d.get("test_fraction", 0.15)),
    )


def load_splits(ref: DataRef) -> Any:
    """``edgecls.data.load.DataSplits`` for ``ref`` (raises DataError naming the spec when it is gone)."""
    from edgecls.data.load import load_data

    try:
        return load_data(
            ref.spec, seed=ref.seed, val_fraction=ref.val_fraction, test_fraction=ref.test_fraction
        )
    except EdgeclsError:
        raise
    except OSError as e:
        raise DataError(f"{ref.spec}: cannot read the run's data ({e.strerror or e})") from e


def evenly_spaced(n_total: int, n: int) -> list[int]:
    """``n`` indices spread over ``range(n_total)`` (deterministic; covers every class of a sorted set)."""
    if n_total <= n:
        return list(range(n_total))
    return [int(i) for i in np.linspace(0, n_total - 1, n).round().astype(int)]


@dataclass
class LoadedImages:
    images: list[np.ndarray]  # each uint8[H, W, 3] BGR
    labels: list[int]  # class index per image (-1 when unknown)
    names: list[str]
    skipped: list[str]  # "name: reason" for images that could not be decoded


def load_images(
    imageset: Any, contract: ModelContract, indices: Sequence[int] | None = None
) -> LoadedImages:
    """Decode ``imageset[i]`` for each index as the runtime would, skipping (and recording) unreadable files."""
    out = LoadedImages([], [], [], [])
    floor = decode_floor(contract)
    for i in range(len(imageset)) if indices is None else indices:
        try:
            image = imageset.load(i, floor)
        except ImageDecodeError as e:
            out.skipped.append(str(e))
            continue
        out.images.append(image)
        out.labels.append(int(imageset.label(i)))
        out.names.append(imageset.name(i))
    return out
