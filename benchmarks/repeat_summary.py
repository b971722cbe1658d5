"""The published view of repeated benchmark runs: median repeat per configuration, ratio stability, and
the headline table (per architecture x batch x threads: each engine's p50, the two goal ratios, accuracy).

Used by run_benchmarks.py; kept apart so the statistics can be read (and reused) without the model
preparation and measuring driver around them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.runtime.bench.rows import (
    ENGINE_OPENCV,
    ENGINE_ORT,
    ENGINE_TORCH,
    BenchResult,
    BenchRow,
    compute_ratios,
    is_reference,
)
from edgecls.runtime.bench.targets import family_of


@dataclass
class Family:
    """One architecture: ONNX variants, source checkpoint and (trained models only) labelled test images."""

    arch: str
    input_size: int
    export_dir: Path
    checkpoint: Path | None
    trained: bool
    test_dir: Path | None = None


def _key(r: BenchRow) -> tuple[Any, ...]:
    return (r.family, r.label, r.engine, r.provider, r.batch, r.threads)


def median_rows(repeats: list[BenchResult]) -> list[BenchRow]:
    """Per configuration, the repeat whose p50 is the median (all its fields stay consistent)."""
    groups: dict[tuple[Any, ...], list[BenchRow]] = {}
    for rep in repeats:
        for r in rep.rows:
            groups.setdefault(_key(r), []).append(r)
    chosen = []
    for r in repeats[0].rows:
        group = groups[_key(r)]
        ok = sorted((g for g in group if g.ok and g.p50_ms is not None), key=lambda g: g.p50_ms)
        chosen.append(ok[(len(ok) - 1) // 2] if ok else group[0])
    compute_ratios(chosen)
    return chosen


def _spread(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    return 100.0 * (max(values) - min(values)) / statistics.median(values)


def stability(repeats: list[BenchResult]) -> list[dict[str, Any]]:
    """Per configuration: each repeat's ratio vs fp32 ORT CPU and p50, and their spread in %."""
    out = []
    for r in repeats[0].rows:
        same = [x for rep in repeats for x in rep.rows if _key(x) == _key(r) and x.ok]
        if not same:
            continue
        speedups = [x.speedup for x in same if x.speedup is not None and not is_reference(x)]  # ref: always 1
        p50s = [x.p50_ms for x in same if x.p50_ms is not None]
        out.append(
            {
                "family": r.family,
                "label": r.label,
                "engine": r.engine,
                "variant": r.variant,
                "batch": r.batch,
                "threads": r.threads,
                "speedups": [round(s, 4) for s in speedups],
                "speedup_spread_pct": _spread(speedups),
                "p50_ms": [round(p, 4) for p in p50s],
                "p50_spread_pct": _spread(p50s),
            }
        )
    return out


# --------------------------------------------------------------------------------------------------------
# Headline table
# --------------------------------------------------------------------------------------------------------
def _find(rows: list[BenchRow], ref: BenchRow, engine: str, variant: str) -> BenchRow | None:
    """The measured row of ``engine``/``variant`` with the batch, threads (and ORT provider) of ``ref``."""
    for r in rows:
        same_config = (r.engine, r.variant, r.batch, r.threads) == (engine, variant, ref.batch, ref.threads)
        if same_config and r.ok and (engine != ENGINE_ORT or r.provider == ref.provider):
            return r
    return None


def headline(rows: list[BenchRow], families: list[Family], stab: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per architecture x batch x threads: p50 of each engine/variant, the two goal ratios and accuracy."""
    spreads = {(s["family"], s["label"], s["batch"], s["threads"]): s["speedup_spread_pct"] for s in stab}

    def spread(r: BenchRow | None) -> float | None:
        return spreads.get((r.family, r.label, r.batch, r.threads)) if r else None

    out = []
    for fam in families:
        fam_rows = [r for r in rows if r.family == family_of(fam.export_dir / "model.onnx")]
        for ref in (r for r in fam_rows if is_reference(r)):
            torch_row = _find(fam_rows, ref, ENGINE_TORCH, "fp32")
            ocv = _find(fam_rows, ref, ENGINE_OPENCV, "fp32")
            fp16, int8 = _find(fam_rows, ref, ENGINE_ORT, "fp16"), _find(fam_rows, ref, ENGINE_ORT, "int8")
            out.append(
                {
                    "arch": fam.arch,
                    "input_size": fam.input_size,
                    "weights": "trained" if fam.trained else "random (BN calibrated)",
                    "batch": ref.batch,
                    "threads": ref.threads,
                    "torch_p50_ms": torch_row.p50_ms if torch_row else None,
                    "opencv_p50_ms": ocv.p50_ms if ocv else None,
                    "fp32_p50_ms": ref.p50_ms,
                    "fp16_p50_ms": fp16.p50_ms if fp16 else None,
                    "int8_p50_ms": int8.p50_ms if int8 else None,
                    "fp32_vs_torch": (torch_row.p50_ms / ref.p50_ms) if torch_row else None,
                    "fp32_vs_torch_spread_pct": spread(torch_row),  # spread of torch/fp32 = spread of its inverse
                    "int8_vs_fp32": int8.speedup if int8 else None,
                    "int8_vs_fp32_spread_pct": spread(int8),
                    "fp32_top1": ref.accuracy,
                    "int8_top1": int8.accuracy if int8 else None,
                    "fp16_top1": fp16.accuracy if fp16 else None,
                    "torch_top1": torch_row.accuracy if torch_row else None,
                    "accuracy_images": ref.accuracy_images,
                }
            )
    return out


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def headline_markdown(head: list[dict[str, Any]]) -> str:
    lines = [
        "| arch | px | weights | batch | threads | PyTorch eager | OpenCV DNN | ORT fp32 | "
        "ORT fp16 | ORT int8 | fp32 vs eager | int8 vs fp32 | top-1 fp32 / int8 |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h in head:
        acc = "n/a (random weights)" if h["fp32_top1"] is None else f"{_pct(h['fp32_top1'])} / {_pct(h['int8_top1'])}"
        ms = [
            _f(h[k], "{:.2f} ms")
            for k in ("torch_p50_ms", "opencv_p50_ms", "fp32_p50_ms", "fp16_p50_ms", "int8_p50_ms")
        ]
        ratios = [
            f"{_f(h[k], '{:.2f}x')} (+-{_f(h[k + '_spread_pct'], '{:.1f}%')})"
            for k in ("fp32_vs_torch", "int8_vs_fp32")
        ]
        cells = [h["arch"], str(h["input_size"]), h["weights"], str(h["batch"]), str(h["threads"]), *ms, *ratios, acc]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "p50 latency per call (one batch). Ratios compare p50s of the same batch and threads; "
        "(+-x%) is the spread (max - min) / median of that ratio over the repeats.",
    ]
    return "\n".join(lines) + "\n"


def stability_markdown(stab: list[dict[str, Any]], repeats: int) -> str:
    spreads = [s["speedup_spread_pct"] for s in stab if s["speedup_spread_pct"] is not None]
    p50 = [s["p50_spread_pct"] for s in stab if s["p50_spread_pct"] is not None]
    if not spreads:
        return ""
    return (
        f"Stability over {repeats} repeats: ratio spread median {statistics.median(spreads):.1f}%, "
        f"max {max(spreads):.1f}% ({len(spreads)} ratios); absolute p50 spread median "
        f"{statistics.median(p50):.1f}%, max {max(p50):.1f}%.\n"
    )
