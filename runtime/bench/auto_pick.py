"""``--provider all``: after measuring every local provider, mark the fastest one that is also correct.

(The JSON calls the mark ``auto_pick``, its name before ``--provider auto`` came to mean the same in bench as in
every other command: the one provider ``auto`` runs on.)

Correct means: not a silent fallback, and its top-1 agreement with onnxruntime CPU fp32 over EVERY ``--data``
image (``BenchRow.agreement_images``) within ``max_drop`` points of what onnxruntime CPU itself reaches on the
same model file (1.0 for the fp32 file; an int8 file disagrees a little with fp32 on every engine, and a provider
must not disagree more than onnxruntime CPU does). The budget is the one ``edgecls quantize`` keeps
(``--max-drop``, default 1 point). Without real images nothing can be judged: no row is picked, and the report
says so (:func:`unjudged_line`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP, within_budget
from edgecls.runtime.bench.rows import CPU_PROVIDER, ENGINE_ORT, BenchRow


def _is_cpu_reference(r: BenchRow) -> bool:
    return r.provider == CPU_PROVIDER and r.engine_runtime is None


def row_choice(r: BenchRow) -> str:
    """``OpenVINOExecutionProvider bf16``: the provider plus the precision when the engine has a choice."""
    return r.provider + (f" {r.precision}" if r.precision else "")


def mark_auto_picks(rows: Sequence[BenchRow], max_drop: float = DEFAULT_MAX_DROP) -> list[dict[str, Any]]:
    """For each model file x batch x threads x spin: the fastest correct provider (``BenchRow.auto_pick``)."""
    groups: dict[tuple[str, int | None, int | None, bool], list[BenchRow]] = {}
    for r in rows:
        if r.engine == ENGINE_ORT and r.ok and r.p50_ms is not None:
            groups.setdefault((r.model, r.batch, r.threads, r.spin), []).append(r)
    picks: list[dict[str, Any]] = []
    for (model, batch, th, spin), group in groups.items():
        cpu = next((r for r in group if _is_cpu_reference(r)), None)
        if cpu is None or cpu.agreement is None or not cpu.agreement_images:
            continue  # no agreement on real images: correctness cannot be judged (unjudged_line says so)
        n = cpu.agreement_images

        def correct(r: BenchRow, base: float = cpu.agreement, n: int = n) -> bool:
            if r.fallback or r.agreement is None or r.agreement_images != n:
                return False  # not the provider it claims to be, or not judged on every image
            return within_budget(100.0 * (base - r.agreement), max_drop)

        ok = [r for r in group if correct(r)]
        if not ok:
            continue
        best = min(ok, key=lambda r: r.p50_ms or float("inf"))
        best.auto_pick = True
        picks.append({
            "model": model, "label": best.label, "batch": batch, "threads": th, "spin": spin, "provider": best.provider,
            "precision": best.precision, "providers_used": best.providers_used, "p50_ms": best.p50_ms,
            "agreement": best.agreement, "images": n, "max_drop": max_drop,
            "rejected": [
                f"{row_choice(r)} ({'-' if r.agreement is None else f'{100 * r.agreement:.2f}%'})"
                for r in group if r not in ok
            ],
        })
    return picks


def unjudged_line(rows: Sequence[BenchRow]) -> str | None:
    """What ``--provider all`` says when no row had real images to be judged on."""
    if any(r.agreement_images for r in rows):
        return None
    return (
        "all: could not judge correctness without images (pass --data DIR: top-1 agreement with onnxruntime CPU "
        "fp32 on every image decides); no provider picked"
    )
