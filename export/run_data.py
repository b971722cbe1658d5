"""The images a run was trained on, found again from its checkpoint, for parity checks and calibration.

Only where they are: ``export/quant/image_sets`` samples, decodes and labels them like any other DATA argument.

A checkpoint's ``raw["data"]`` (or its run directory's ``config.json``) says how the split was made:
``{"spec": "builtin:digits" | folder, "seed", "val_fraction", "test_fraction"}``. Rebuilding the split with
the same arguments gives the same train/val/test images (the split is seeded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.runtime.errors import DataError, EdgeclsError


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
