"""The runtime is light: torch and onnx never load for `import edgecls.runtime` or `edgecls --help`."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHECK = "import sys; {body}; heavy = [m for m in ('torch', 'onnx') if m in sys.modules]; print(heavy)"


def _heavy_modules_after(body: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK.format(body=body)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_import_runtime_does_not_import_torch_or_onnx() -> None:
    body = (
        "import edgecls.runtime; from edgecls.runtime.contract import model_contract; "
        "from edgecls.runtime.images import decode; from edgecls.runtime.inference import preprocess; "
        "from edgecls.runtime.providers import session; "
        "from edgecls.data.load import load_data; from edgecls.evaluation import metrics"
    )
    assert _heavy_modules_after(body) == "[]"


@pytest.mark.parametrize("args", [["--help"], ["bench", "--help"]])
def test_cli_help_does_not_import_torch(args: list[str]) -> None:
    body = (
        "from edgecls.cli import app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output"
    )
    assert _heavy_modules_after(body) == "[]"


def test_every_runtime_module_imports_without_torch_or_onnx() -> None:
    """Every module of the runtime (core, sources, run, bench with its baselines, batch, serve) imports without
    torch or onnx: the PyTorch eager baseline imports torch only in the measuring process that runs it."""
    body = (
        "import importlib, pkgutil, edgecls.runtime as r; "
        "names = [m.name for m in pkgutil.walk_packages(r.__path__, r.__name__ + '.')]; "
        "expected = {'edgecls.runtime.bench.baselines.torch_eager', 'edgecls.runtime.bench.child', "
        "'edgecls.runtime.sources.live_capture', 'edgecls.runtime.run.main', 'edgecls.runtime.serve.app', "
        "'edgecls.runtime.batch.on_ray'}; "
        "assert expected <= set(names), names; [importlib.import_module(n) for n in names]"
    )
    assert _heavy_modules_after(body) == "[]"
