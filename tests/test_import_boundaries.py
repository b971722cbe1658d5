"""Import boundaries. Statically, from every import statement (fixtures_imports: module level, in functions and
under TYPE_CHECKING alike): the stages point one way, from the command line down to the torch-free runtime, and
so do the runtime's rooms. In a fresh interpreter (as typer checks that a heavy module stays unloaded): ``edgecls
serve`` and ``edgecls batch`` share the input side with ``edgecls run`` through ``edgecls.runtime.sources``,
never through the ``run`` command's own package; and the runtime, the edge install, loads neither torch nor onnx.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from fixtures_imports import Arrow, import_graph

#: The library's stages, top first: a module imports its own stage and those below it, never one above. eval
#: reads training's checkpoints and a run's last report uses eval's metrics: one stage. ``edgecls`` alone is the
#: root package (``__version__``).
STAGES: list[set[str]] = [
    {"edgecls.cli", "edgecls.__main__"},
    {"edgecls.demo", "edgecls.demo_report", "edgecls.demo_results"},
    {"edgecls.deploy"},  # pack: exports and quantizes a run for the bundle
    {"edgecls.export"},  # torch -> ONNX, int8: reads training's checkpoints
    {"edgecls.training", "edgecls.evaluation"},
    {"edgecls.models", "edgecls.data"},
    {"edgecls.runtime", "edgecls"},  # the device side: nothing of edgecls above it, no torch, no onnx
]
#: The runtime's rooms, top first: a room imports only rooms of lower levels, never one beside it (so serve and
#: batch reach the inputs through sources, not through the run command's package). The commands' packages stand
#: over what they share, the core's rooms over the root's modules that every stage uses.
RUNTIME_ROOMS: list[set[str]] = [
    {""},  # edgecls.runtime itself: the public API's lazy Classifier, Prediction, ModelContract
    {"run", "serve", "batch", "bench"},
    {"sources", "device"},
    {"inference"},
    {"contract", "images", "providers"},
    {"terminal"},
    {"atomic", "cpu_isa", "accuracy_budget", "file_digest"},
    {"errors"},
]


def _stage(module: str) -> str:
    """``edgecls.export.quant.pipeline`` -> ``edgecls.export``."""
    return ".".join(module.split(".")[:2])


def _room(module: str) -> str:
    """``edgecls.runtime.serve.app`` -> ``serve``; ``edgecls.runtime.errors`` -> ``errors``."""
    return module.split(".")[2] if module.count(".") >= 2 else ""


def _upward(levels: list[set[str]], name: Callable[[str], str], prefix: str, *, sideways: bool) -> list[Arrow]:
    """The arrows between modules under ``prefix`` that point to a higher level than their own (``sideways``:
    or to another name on their own level)."""
    level = {key: i for i, keys in enumerate(levels) for key in keys}

    def wrong(a: Arrow) -> bool:
        src, dst = name(a.source), name(a.target)
        return level[src] > level[dst] or (sideways and level[src] == level[dst] and src != dst)

    arrows = [a for arrows in import_graph().values() for a in arrows]
    return [a for a in arrows if a.source.startswith(prefix) and a.target.startswith(prefix) and wrong(a)]


def test_every_stage_and_every_runtime_room_is_listed() -> None:
    graph = import_graph()
    assert {_stage(m) for m in graph} <= set().union(*STAGES), "a new stage: put it in STAGES"
    rooms = {_room(m) for m in graph if m.startswith("edgecls.runtime")}
    assert rooms == set().union(*RUNTIME_ROOMS), "a new runtime room: put it in RUNTIME_ROOMS"


def test_stages_import_only_their_own_and_lower_stages() -> None:
    up = _upward(STAGES, _stage, "edgecls", sideways=False)
    assert not up, "imports of a higher stage: " + "; ".join(f"{a.source} -> {a.target} ({a.where})" for a in up)


def test_runtime_rooms_import_only_their_own_and_lower_rooms() -> None:
    up = _upward(RUNTIME_ROOMS, _room, "edgecls.runtime", sideways=True)
    assert not up, "imports of a higher room: " + "; ".join(f"{a.source} -> {a.target} ({a.where})" for a in up)

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
