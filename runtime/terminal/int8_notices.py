"""What someone running an int8 file must know about it, once: its verdict and the CPU it was made for.

Each :class:`Notice` has a one-line ``line`` (what ``run``, ``serve``, ``selftest``, ``bench`` and ``eval``
print, the first time this user meets the file: :mod:`edgecls.runtime.terminal.notice_memory`) and a full ``detail``
(what ``edgecls info`` always shows). Kinds:

- ``over_budget``: the file missed its accuracy budget and was written anyway (``--allow-over-budget``);
- ``unverified``: within budget as measured, but on too few held-out images to tell;
- ``saturates``: full-range u8s8 products overflow this CPU's fast kernels (x86 AVX2 without VNNI), so accuracy
  here is lower than on the CPU the file was made for;
- ``other_target``: made for another device (``--target arm64`` tried on an x86 box): results may differ
  slightly and the speed here says little about the device's. That is expected off-device and nothing is wrong
  with the file, so the line never tells to re-quantize it; ``info`` says what to do if this CPU *is* the device.

:class:`ModelNotice` is the warning the Classifier raises for each (a RuntimeWarning, so the existing filters
and catchers see it), carrying the model and the notice for whoever decides whether to print it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgecls.runtime.cpu_isa import IsaProfile, detect_isa, made_for_other_cpu, saturates_here


@dataclass(frozen=True)
class Notice:
    kind: str  # "over_budget" | "unverified" | "saturates" | "other_target"
    line: str  # one line for every command that runs the file
    detail: str  # everything, for `edgecls info`


class ModelNotice(RuntimeWarning):
    """A :class:`Notice` about ``model`` (a path, or ``<bytes>``), raised by the Classifier as a warning."""

    def __init__(self, model: str, notice: Notice) -> None:
        super().__init__(f"{model}: {notice.line}" + (f"; details: edgecls info {shlex.quote(model)}"
                                                       if model != "<bytes>" else ""))
        self.model = model
        self.notice = notice


def _budget(q: Mapping[str, Any]) -> str:
    drop = q.get("max_drop")
    return f"{drop:g}-point accuracy budget" if isinstance(drop, int | float) else "accuracy budget"


def int8_notices(provenance: Mapping[str, Any], isa: IsaProfile | None = None) -> list[Notice]:
    """The notices of a file with this contract ``provenance`` on ``isa`` (this CPU by default); [] for a float
    file or a file with nothing to say."""
    q = provenance.get("quantization")
    if not isinstance(q, Mapping):
        return []
    isa = isa or detect_isa()
    out = []
    if q.get("budget_met") is False:
        out.append(Notice(
            "over_budget",
            f"int8 OVER BUDGET: it missed its {_budget(q)} (written with --allow-over-budget)",
            f"int8 OVER BUDGET: {q.get('verdict') or 'this file missed its accuracy budget'} "
            "(written with --allow-over-budget)",
        ))
    elif q.get("status") == "unverified":
        images = q.get("validation_images")
        held_out = f"its {images} held-out images" if isinstance(images, int) else "its held-out images"
        out.append(Notice(
            "unverified",
            f"int8 UNVERIFIED: {held_out} could not resolve the {_budget(q)}",
            f"int8 UNVERIFIED: {q.get('verdict') or held_out + ' could not resolve the accuracy budget'}; "
            "check it on test images of your own (edgecls eval MODEL DATA)",
        ))
    made_for = str(q.get("target") or "a VNNI CPU")
    if saturates_here(q, isa):
        out.append(Notice(
            "saturates",
            f"int8 made for {made_for}: on this AVX2 CPU without VNNI its full-range u8s8 products saturate, so "
            f"accuracy here is lower than on {made_for}",
            f"int8 made for {made_for} (full-range u8s8 products) runs on an AVX2 CPU without VNNI here: its "
            f"products saturate and accuracy here is lower than on {made_for}. Expected when trying a file made for "
            "another device; if this CPU is the device, quantize for it with --target x86-avx2",
        ))
    other = made_for_other_cpu(provenance, isa)
    if other is not None:
        target, cost = other
        out.append(Notice(
            "other_target",
            f"int8 made for {target}; on this {isa.isa} CPU results may differ slightly and speed is not "
            f"{target}'s (expected off-device)",
            f"int8 made for {target}, running on {isa.isa} ({isa.machine}): results may differ slightly from "
            f"{target}'s and the speed here is not {target}'s, which is expected when trying a file off-device. "
            f"If this CPU is the device, a file made for it does better: {cost}",
        ))
    return out
