"""The runtime is light: torch and onnx never load for `import edgecls.runtime` or `edgecls --help`."""

from __future__ import annotations

import subprocess
import sys

_CHECK = "import sys; {body}; heavy = [m for m in ('torch', 'onnx') if m in sys.modules]; print(heavy)"


def _heavy_modules_after(body: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK.format(body=body)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_import_runtime_does_not_import_torch_or_onnx() -> None:
    body = (
        "import edgecls.runtime; from edgecls.runtime import contract, decode, preprocess, session; "
        "from edgecls.data import load_data; from edgecls.evaluation import metrics"
    )
    assert _heavy_modules_after(body) == "[]"


def test_cli_help_does_not_import_torch() -> None:
    body = (
        "from edgecls.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output"
    )
    assert _heavy_modules_after(body) == "[]"
