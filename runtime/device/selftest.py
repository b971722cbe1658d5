"""``edgecls selftest DIR|MODEL``: on the device, check that it computes what the exporting machine computed.

Each model runs through the runtime (the providers found here) on its golden file's inputs, and its outputs are
compared with the golden logits (PyTorch's, written at export: :mod:`edgecls.runtime.device.golden_file`) within a
tolerance that fits the variant:

- fp32: every top-1 equal and max |d| <= 1e-3 x max(1, max |golden|). Export's own check is 1e-4 on the same
  machine; another CPU's kernels (NEON vs AVX-512) sum in another order, so the bound is ten times wider.
- fp16: every top-1 equal (what export's fp16 check requires) and max |d| <= 5% of max(1, max |golden|).
- int8: top-1 agreement >= 75% (at most 2 of the 8 golden images differ; export graded the file on its held-out
  images, 8 rows cannot grade it again) and max |d| <= 50% of max(1, max |golden|): a broken kernel, a corrupted
  or wrong file lands far outside both.

The golden images are also preprocessed here (this device's OpenCV) and compared with the golden inputs: a
difference above one 8-bit level is a mismatch too (the device would feed the model other numbers than training
did). Torch- and onnx-free.

On a bundle or release folder (it holds the ``manifest.json`` written by ``edgecls pack``) the manifest decides:
each model's variant (so its tolerance), its golden file, and the sha256 both must have; a model the manifest does
not list fails. A model whose own contract claims ``int8`` is still held to fp32's bound when the manifest says
fp32 (the model's metadata is what a tampered file would rewrite).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.cpu_isa import detect_isa
from edgecls.runtime.device.golden_file import find_golden, read_golden
from edgecls.runtime.device.manifest import ModelEntry, entry_problems, find_manifest, manifest_models, read_manifest
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.latency import LatencyStats, measure_latency
from edgecls.runtime.inference.scores import top1_agreement
from edgecls.runtime.terminal.notice_memory import lines_to_print

FP32_RTOL = 1e-3
FP16_RTOL = 5e-2
INT8_RTOL = 0.5
INT8_MIN_AGREEMENT = 0.75


@dataclass(frozen=True)
class Tolerance:
    """What a variant must meet: top-1 agreement with the golden logits and a bound on max |d|."""

    min_agreement: float
    max_abs_diff: float


def tolerance_for(variant: str, golden_logits: np.ndarray) -> Tolerance:
    """The bound for ``variant`` (fp32, fp16, int8; others are held to fp32's) on ``float32[N, C]`` logits."""
    scale = max(1.0, float(np.abs(golden_logits).max()))
    if variant == "int8":
        return Tolerance(INT8_MIN_AGREEMENT, INT8_RTOL * scale)
    if variant == "fp16":
        return Tolerance(1.0, FP16_RTOL * scale)
    return Tolerance(1.0, FP32_RTOL * scale)


@dataclass
class SelftestRow:
    """One model's verdict (one row of the table)."""

    model: str
    variant: str
    provider: str
    isa: str
    images: int
    max_abs_diff: float
    agreement: float
    preprocess_max_abs_diff: float
    ms_per_image: float
    tolerance: dict[str, float]
    passed: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def models_in(target: str | os.PathLike[str]) -> list[Path]:
    """A model file, or every ``.onnx`` under a folder (a pack or an export dir), sorted."""
    p = Path(target)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise EdgeclsError(f"{p}: no such model file or folder")
    found = sorted(m for m in p.rglob("*.onnx") if m.is_file())
    if not found:
        raise EdgeclsError(f"{p}: no .onnx model in this folder")
    return found


def _one_level(contract: Any) -> float:
    """One 8-bit pixel step in the model's input units: scale / the smallest std."""
    return float(contract.scale) / float(min(contract.std))


def check_model(
    model: Path, provider: str = "auto", threads: int | None = None, runs: int = 3, entry: ModelEntry | None = None
) -> SelftestRow:
    """Run ``model`` on its golden inputs here and grade it (see the module docstring). ``entry``: the model's line
    in a bundle manifest, which then decides the golden file, the variant (so the tolerance) and the sha256s."""
    # A manifest's paths are relative to the bundle folder, and its models sit in models/ there.
    golden_path = model.parent.parent / entry.golden if entry is not None else find_golden(model)
    if golden_path is None:
        raise EdgeclsError(f"{model}: no golden file beside it (model.golden.npz, written by edgecls export)")
    with warnings.catch_warnings(record=True) as caught:  # target mismatch, saturation, silent fallback
        warnings.simplefilter("always")
        clf = Classifier(model, provider=provider, threads=threads, spin=False)
    # Checked against this model's input size and classes before any array is read (a hostile file is refused).
    golden = read_golden(golden_path, clf.contract)
    images, inputs, expected = golden.images, golden.inputs, golden.logits
    variant = str(clf.contract.provenance.get("variant", "fp32"))
    problems: list[str] = []
    if entry is not None:  # the manifest, not the model's own metadata, says what the model is
        problems += entry_problems(model, golden_path, entry, variant)
        variant = entry.variant
    if golden.labels != tuple(clf.labels):
        problems.append(f"labels differ from the golden file's ({golden_path.name})")
    got = clf.logits_batch(inputs).astype(np.float32)
    if got.shape != expected.shape:
        raise EdgeclsError(f"{model}: outputs {list(got.shape)} but the golden file holds {list(expected.shape)}")
    tol = tolerance_for(variant, expected)
    max_diff = float(np.abs(got - expected).max())
    agreement = top1_agreement(got, expected)
    prep_diff = float(np.abs(clf.preprocess(list(images)) - inputs).max())
    if agreement < tol.min_agreement:
        problems.append(f"top-1 agreement {agreement:.0%} < {tol.min_agreement:.0%}")
    if not max_diff <= tol.max_abs_diff:  # NaN fails too
        problems.append(f"max |d| {max_diff:.3g} > {tol.max_abs_diff:.3g}")
    if prep_diff > 1.01 * _one_level(clf.contract):
        problems.append(f"preprocessing differs from the golden inputs by {prep_diff:.3g} (> one 8-bit level)")
    # The checked call above was the warm-up; a few more give the median (a slow board or an emulator pays for
    # every call: an fp16 model emulated by qemu takes seconds per image).
    stats, _, _ = measure_latency(lambda: clf.logits_batch(inputs), runs=runs, warmup=0)
    isa = detect_isa()
    return SelftestRow(
        model=str(model),
        variant=variant,
        provider=", ".join(clf.providers),
        isa=f"{isa.isa} ({isa.machine}{': ' + ' '.join(isa.flags) if isa.flags else ''})",
        images=int(inputs.shape[0]),
        max_abs_diff=max_diff,
        agreement=agreement,
        preprocess_max_abs_diff=prep_diff,
        ms_per_image=_per_image(stats, inputs.shape[0]),
        tolerance=asdict(tol),
        passed=not problems,
        problems=problems,
        warnings=lines_to_print(caught),  # a model file's int8 notices once per file and user
    )


def _per_image(stats: LatencyStats, n: int) -> float:
    return stats.p50_ms / max(1, n)


@dataclass(frozen=True)
class SelftestOptions:
    """What ``edgecls selftest`` checks and how (its flags, one field each)."""

    target: str | os.PathLike[str]  # a model (.onnx) or a folder of them (a pack, an export dir)
    provider: str = "auto"
    threads: int | None = None  # None: onnxruntime's default


def _models_and_entries(target: str | os.PathLike[str]) -> list[tuple[Path, ModelEntry | None]]:
    """A bundle or release folder (it holds manifest.json): the manifest's models, each with its entry, and any
    other .onnx there (which fails: not packed); otherwise the models found, without entries."""
    manifest = find_manifest(target) if Path(target).is_dir() else None
    if manifest is None:
        return [(m, None) for m in models_in(target)]
    return manifest_models(Path(target), read_manifest(manifest))


def selftest(options: SelftestOptions) -> list[SelftestRow]:
    """Every model of ``options.target`` checked here; a model that cannot load is a failed row, not an abort."""
    rows = []
    for model, entry in _models_and_entries(options.target):
        try:
            if entry is None and find_manifest(options.target) is not None:
                raise EdgeclsError(f"{model.name}: not listed in the bundle's manifest")
            rows.append(check_model(model, provider=options.provider, threads=options.threads, entry=entry))
        except EdgeclsError as e:
            rows.append(
                SelftestRow(str(model), "?", "-", detect_isa().isa, 0, float("nan"), 0.0, float("nan"), 0.0, {},
                            False, [str(e)])
            )
    return rows
