"""No import circle among edgecls's modules: each module can be read, tested and moved knowing only what it
imports. Imports inside functions and under ``if TYPE_CHECKING:`` count (fixtures_imports says why): a circle
is broken by putting the shared thing where it belongs, not by hiding one of its arrows."""

from __future__ import annotations

from pathlib import Path

from fixtures_imports import circles, import_graph


def _describe(circle: list) -> str:
    return "; ".join(f"{a.source} -> {a.target} ({a.where})" for a in circle)


def test_no_import_circle_among_edgecls_modules() -> None:
    graph = import_graph()
    # The graph is the library's (all three folders, function-level imports included), not an empty reading.
    assert {"edgecls.cli", "edgecls.export.onnx_export", "edgecls.runtime.errors"} <= set(graph)
    assert sum(len(arrows) for arrows in graph.values()) > 500
    lazy = {a.target for a in graph["edgecls.runtime"]}  # runtime/__init__.py imports Classifier in __getattr__
    assert any(t.startswith("edgecls.runtime.") for t in lazy), lazy
    found = circles(graph)
    assert not found, "import circles: " + " | ".join(_describe(c) for c in found)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_check_sees_lazy_type_only_relative_and_by_name_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "edgecls/__init__.py": '"""root"""\n',
        # a function-level import closes the circle a module-level one opens (runtime/ maps to edgecls.runtime)
        "edgecls/cli.py": "from edgecls.runtime.session import open_session\n",
        "runtime/__init__.py": '"""runtime"""\n',
        "runtime/session.py": "def open_session():\n    from edgecls import cli\n",
        # a type-only import and a relative one (export/ maps to edgecls.export)
        "export/__init__.py": '"""export"""\n',
        "export/search.py": "from .step import faster\n",
        "export/step.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edgecls.export.search import Search\n"
        ),
        # importlib with a constant name
        "runtime/child.py": "import importlib\nimportlib.import_module('edgecls.runtime.parent.runner')\n",
        "runtime/parent/__init__.py": '"""a package is not an arrow of its submodules"""\n',
        "runtime/parent/runner.py": "import edgecls.runtime.child\nfrom edgecls.runtime.parent import helper\n",
        "runtime/parent/helper.py": "X = 1\n",
    })
    found = {frozenset(a.source for a in circle) for circle in circles(import_graph(tmp_path))}
    assert found == {
        frozenset({"edgecls.cli", "edgecls.runtime.session"}),
        frozenset({"edgecls.export.search", "edgecls.export.step"}),
        frozenset({"edgecls.runtime.child", "edgecls.runtime.parent.runner"}),
    }
