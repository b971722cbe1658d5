"""Session fixtures of the export area: real exports of the tiny training runs (shared with other areas).

``exported_tiny`` -> a directory holding model.onnx (fp32), model.int8.onnx, model.fp16.onnx,
model.golden.npz, quantization_report.json/.md and export_report.json, made from ``tiny_run``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Small but real settings: every stage runs, in a few seconds.
FAST_QUANT = {"latency_runs": 5, "latency_warmup": 2, "sensitivity_images": 32}
#: The shared export fixture must always write model.int8.onnx: a tiny run's 48 held-out images make one changed
#: answer worth 2 points, over the 1-point budget (the over-budget path has its own tests in test_quantize_command.py).
FIXTURE_QUANT = {**FAST_QUANT, "allow_over_budget": True}


def fast_export_options(out: Path, quantize: bool = False, **overrides: object) -> object:
    """ExportOptions into ``out`` with few images; ``quantize``: with the fixture's int8 settings."""
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.quant.options import Int8Images, QuantizeOptions

    return ExportOptions(
        out_dir=str(out),
        parity_images=16,
        int8_images=Int8Images(calib_images=64, val_images=96),
        quantize=QuantizeOptions(**FIXTURE_QUANT) if quantize else None,  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def exported_tiny(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``edgecls export tiny_run --quantize --fp16`` into a fresh directory; returns that directory."""
    from edgecls.export.export_run import export_checkpoint

    out = tmp_path_factory.mktemp("exported") / "tiny"
    export_checkpoint(tiny_run, fast_export_options(out, quantize=True, fp16=True), log=lambda _m: None)  # type: ignore[arg-type]
    return out
