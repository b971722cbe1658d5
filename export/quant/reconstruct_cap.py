"""What the time cap cost when it stopped layer-wise reconstruction: the layers it left at post-training's rounding
and, on the held-out images (never used to choose), the reconstructed file against the same recipe without
reconstruction. Reconstruction is bounded by counts, so a cap that bites means the machine was slower than the
cap assumed: the file then depends on the machine, and the user is told so and by how much.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgecls.export.quant.grading.holdout import GradedImages, drop_on
from edgecls.export.quant.search.trials import Trial


def time_cap_warning(
    trials: list[Trial], notes: Mapping[str, Mapping[str, Any]], holdout: GradedImages, precise: bool
) -> str | None:
    """A warning for the report when the cap stopped a reconstruction, else None. ``notes``: reconstruction
    summaries by recipe description (``StaticQuantizer.reconstruct_notes``); ``precise``: onnxruntime's exact
    int8 kernels."""
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
            partly, without = drop_on(trial.path, holdout, precise), drop_on(base.path, holdout, precise)
            text += (
                f"; on the held-out images the partly reconstructed file drops {partly:+.2f} points, the same "
                f"recipe without reconstruction {without:+.2f}"
            )
        return text + "; a larger --max-learning-seconds lets every layer learn"
    return None
