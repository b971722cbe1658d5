"""Import boundaries between the runtime's packages, checked in a fresh interpreter (as typer checks that a heavy
module stays unloaded): ``edgecls serve`` and ``edgecls batch`` share the input side with ``edgecls run`` through
``edgecls.runtime.sources``, never through the ``run`` command's own package; and the runtime, the edge install,
loads neither torch nor onnx.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Imports the given modules, then prints which loaded modules start with one of the watched prefixes.
_PROBE = (
    "import importlib, json, sys; "
    "[importlib.import_module(m) for m in {modules!r}]; "
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {{'torch', 'onnx'}} "
    "or m == 'edgecls.runtime.run' or m.startswith('edgecls.runtime.run.'))))"
)


def _loaded_after(modules: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(modules=modules)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "modules",
    [
        # serve: the app, its live feed and the server loop, and the command that builds them
        ["edgecls.runtime.serve.app", "edgecls.runtime.serve.live_feed", "edgecls.runtime.serve.server",
         "edgecls.runtime.serve.launch",
         "edgecls.cli.serve_cmd"],
        # batch: in-process and Ray runners, the table and its writers, and the command
        ["edgecls.runtime.batch.local", "edgecls.runtime.batch.on_ray", "edgecls.runtime.batch.table",
         "edgecls.runtime.batch.writers", "edgecls.runtime.batch.inputs", "edgecls.runtime.batch.classify",
         "edgecls.cli.batch_cmd"],
        # bench and int8 evaluation time through the core's one timing loop
        ["edgecls.runtime.inference.latency", "edgecls.runtime.bench.benchmark"],
    ],
    ids=["serve", "batch", "bench"],
)
def test_serve_batch_and_bench_load_nothing_from_run_nor_torch_or_onnx(modules: list[str]) -> None:
    assert _loaded_after(modules) == []


def test_run_loads_its_own_package_but_not_torch_or_onnx() -> None:
    """The probe does see edgecls.runtime.run when it is loaded (so the empty lists above mean something)."""
    loaded = _loaded_after(["edgecls.runtime.run.main"])
    assert "edgecls.runtime.run.main" in loaded
    assert not [m for m in loaded if m.split(".")[0] in {"torch", "onnx"}]
