"""Rules of the test suite itself: test modules share helpers through fixture modules (tests/conftest.py,
tests/fixtures_*.py), never by importing one another, so each test file can move, split or go alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# `import test_x`, `from test_x import ...`, `from tests.test_x import ...`, also inside code run by a subprocess.
_TEST_MODULE = re.compile(r"^(tests\.)?test_\w+")
_IMPORT_IN_TEXT = re.compile(r"\b(?:from|import)\s+(?:tests\.)?test_\w+")


def _imports_of_test_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names if _TEST_MODULE.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _TEST_MODULE.match(node.module):
            found.append(f"{path.name}:{node.lineno} from {node.module}")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if _TEST_MODULE.match(n)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _IMPORT_IN_TEXT.search(node.value):
            found.append(f"{path.name}:{node.lineno} code in a string imports a test module")
    return found


def test_no_test_module_imports_another_test_module() -> None:
    files = sorted(p for p in TESTS.rglob("*.py") if p != Path(__file__).resolve())  # this file spells them out
    assert len(files) > 50 and TESTS / "conftest.py" in files  # the suite was found
    offending = [line for path in files for line in _imports_of_test_modules(path)]
    assert not offending, "move what they share into tests/fixtures_*.py: " + "; ".join(offending)


def test_the_rule_sees_every_spelling(tmp_path: Path) -> None:
    spellings = {
        "a.py": "from test_export import cli\n",
        "b.py": "import test_live as live\n",
        "c.py": "def f():\n    from tests.test_pack import wheel_cache\n",
        "d.py": "import importlib\nm = importlib.import_module('test_live')\n",
        "e.py": "CODE = 'import sys; from test_runtime_classifier import check_golden'\n",
    }
    for name, text in spellings.items():
        (tmp_path / name).write_text(text)
        assert _imports_of_test_modules(tmp_path / name), name
    (tmp_path / "ok.py").write_text("from fixtures_cli import cli_in_process\nimport testing_tools\n")
    assert _imports_of_test_modules(tmp_path / "ok.py") == []
