"""``--provider auto``: after measuring every local provider, mark the fastest one that is also correct.

Correct means: not a silent fallback, and its top-1 agreement with onnxruntime CPU fp32 within
:data:`AUTO_AGREEMENT_SLACK` of what onnxruntime CPU itself reaches on the same model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgecls.runtime.bench.rows import CPU_PROVIDER, ENGINE_ORT, BenchRow

#: A provider is "correct" for ``auto`` when its top-1 agreement with onnxruntime CPU fp32 is within this many
#: points of onnxruntime CPU's own agreement on the same model file (int8 files disagree a little with fp32
#: on every engine; a provider must not disagree more than onnxruntime CPU does).
AUTO_AGREEMENT_SLACK = 0.01


def mark_auto_picks(rows: Sequence[BenchRow]) -> list[dict[str, Any]]:
    """For each model file x batch x threads x spin: the fastest correct provider (``BenchRow.auto_pick``)."""
    groups: dict[tuple[str, int | None, int | None, bool], list[BenchRow]] = {}
    for r in rows:
        if r.engine == ENGINE_ORT and r.ok and r.p50_ms is not None:
            groups.setdefault((r.model, r.batch, r.threads, r.spin), []).append(r)
    picks: list[dict[str, Any]] = []
    for (model, batch, th, spin), group in groups.items():
        cpu = next((r for r in group if r.provider == CPU_PROVIDER), None)
        base = cpu.agreement if cpu is not None else None

        def correct(r: BenchRow, base: float | None = base) -> bool:
            if r.fallback:
                return False  # not the provider it claims to be
            if base is None or r.agreement is None:
                return r.provider == CPU_PROVIDER  # unverifiable rows are never picked over the reference
            return r.agreement >= base - AUTO_AGREEMENT_SLACK

        ok = [r for r in group if correct(r)]
        if not ok:
            continue
        best = min(ok, key=lambda r: r.p50_ms or float("inf"))
        best.auto_pick = True
        picks.append({
            "model": model, "label": best.label, "batch": batch, "threads": th, "spin": spin, "provider": best.provider,
            "providers_used": best.providers_used, "p50_ms": best.p50_ms, "agreement": best.agreement,
            "rejected": [r.provider for r in group if r not in ok],
        })
    return picks
