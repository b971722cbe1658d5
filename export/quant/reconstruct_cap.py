"""What the time cap cost when it stopped layer-wise reconstruction: the layers it left at post-training's rounding
and, on the held-out images (never used to choose), the reconstructed file against the same recipe without
reconstruction. Reconstruction is bounded by counts, so a cap that bites means the machine was slower than the
cap assumed: the file then depends on the machine, and the user is told so and by how much.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.quant.budget_search import Trial
from edgecls.export.quant.evaluate import measure_accuracy
from edgecls.runtime.inference.scores import top1_accuracy


def _drop(
    path: Path, holdout: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None], precise: bool
) -> float:
    """Points lost on the held-out images: (float32[N, 3, h, w] inputs, fp32's float32[N, C] logits, int64[N]
    labels or None, bool[N] images fp32 decides or None)."""
    inputs, ref, labels, decisive = holdout
    acc, _ = measure_accuracy(path, inputs, labels, ref, precise, decisive)
    return 100.0 * ((1.0 if labels is None else top1_accuracy(ref, labels)) - acc.score)


def time_cap_warning(
    trials: list[Trial],
    notes: Mapping[str, Mapping[str, Any]],
    holdout: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    precise: bool,
) -> str | None:
    """A warning for the report when the cap stopped a reconstruction, else None. ``notes``: reconstruction
    summaries by recipe description (``StaticQuantizer.reconstruct_notes``); ``holdout``: what ``_drop`` grades
    on; ``precise``: onnxruntime's exact int8 kernels."""
    for trial in trials:
        note = notes.get(trial.recipe.describe())
        if not trial.recipe.reconstruct or note is None or not note.get("left"):
            continue
        base_key = dataclasses.replace(trial.recipe, reconstruct=False).key()
        base = next((t for t in trials if t.recipe.key() == base_key), None)
        left = list(note["left"])
        text = (
            f"the --max-learning-seconds cap stopped layer-wise reconstruction with {len(left)} of "
            f"{note['layers']:.0f} layers left at post-training's rounding ({', '.join(left)}), so this file depends "
            "on how fast and busy the machine was"
        )
        if base is not None:
            partly, without = _drop(trial.path, holdout, precise), _drop(base.path, holdout, precise)
            text += (
                f"; on the held-out images the partly reconstructed file drops {partly:+.2f} points, the same "
                f"recipe without reconstruction {without:+.2f}"
            )
        return text + "; a larger --max-learning-seconds lets every layer learn"
    return None
