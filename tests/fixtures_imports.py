"""edgecls's own import graph, read from the source with ast (nothing is imported, nothing runs).

Every import statement between edgecls modules counts, wherever it stands: at module level, inside a function
(a lazy import still ties the two modules together for whoever reads or changes them), under
``if TYPE_CHECKING:``, and ``importlib.import_module("edgecls....")`` with a constant name. What is not an
arrow: a package's ``__init__`` that Python runs on the way to a submodule (a submodule does not depend on its
package's docstring), unless the code names the package itself (``from edgecls.runtime import Classifier``).

Folders map to packages as pyproject.toml's ``[tool.setuptools.package-dir]`` says: ``export/`` is
``edgecls.export`` and ``runtime/`` is ``edgecls.runtime`` (a tool that goes by paths alone does not see it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: pyproject.toml's package-dir: the folder of each top-level package.
PACKAGE_DIRS = {"edgecls": "edgecls", "edgecls.export": "export", "edgecls.runtime": "runtime"}


@dataclass(frozen=True)
class Arrow:
    source: str  # the importing module
    target: str  # the edgecls module it imports
    where: str  # file:line of the import, for the failure message


def edgecls_modules(repo: Path = REPO) -> dict[str, Path]:
    """Every module of the library: dotted name -> file (a package's name -> its __init__.py)."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((repo / folder).rglob("*.py")):
            parts = list(path.relative_to(repo / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _known_prefix(name: str, known: set[str]) -> str | None:
    """``name`` or the longest dotted prefix of it that is an edgecls module (``a.b.attr`` -> ``a.b``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if (hit := _known_prefix(alias.name, known)) is not None:
                yield hit
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the package of this module, one level up per extra dot
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        for alias in node.names:
            if f"{base}.{alias.name}" in known:  # from a.b import c, c a module
                yield f"{base}.{alias.name}"
            elif (hit := _known_prefix(base, known)) is not None:  # from a.b import name_defined_in_a_b
                yield hit
    elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            if (hit := _known_prefix(node.args[0].value, known)) is not None:
                yield hit


def import_graph(repo: Path = REPO) -> dict[str, list[Arrow]]:
    """module -> its arrows to other edgecls modules (one per target, the first import of it)."""
    modules = edgecls_modules(repo)
    known = set(modules)
    graph: dict[str, list[Arrow]] = {}
    for module, path in modules.items():
        arrows: dict[str, Arrow] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for target in _targets(node, module, path.name == "__init__.py", known):
                if target != module and target not in arrows:
                    where = f"{path.relative_to(repo)}:{getattr(node, 'lineno', 0)}"
                    arrows[target] = Arrow(module, target, where)
        graph[module] = list(arrows.values())
    return graph


def circles(graph: dict[str, list[Arrow]]) -> list[list[Arrow]]:
    """Each set of modules that import one another in a loop (a strongly connected component of two or more
    modules, Tarjan's algorithm without recursion), as the arrows that tie it, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[Arrow]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = [a.target for a in graph[node]]
            if i < len(targets):
                work.append((node, i + 1))
                nxt = targets[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted((a for m in members for a in graph[m] if a.target in members),
                                        key=lambda a: (a.source, a.target)))
            if work:  # back in the caller: its low link takes this node's
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
