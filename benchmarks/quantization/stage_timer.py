"""Wall and CPU seconds of named stages of a running program, nested: which step of ``edgecls quantize`` costs what.

A profiler by function (cProfile, py-spy) sees only Python threads and attributes a native call to whoever called
it; the int8 search's cost is mostly onnxruntime's and torch's own threads. Here each stage is a function wrapped
in place (every module that imported it by name gets the wrapper): on entry and exit it reads the wall clock and
``time.process_time`` (user + system CPU of *every* thread of the process), so a stage's CPU includes the native
threads it started. Stages nest: each is recorded under the path of the stages it ran inside, with its inclusive
and its own (children subtracted) time.

    timer = StageTimer()
    timer.wrap_function(edgecls.export.parity, "onnx_logits", "fp32 logits")
    timer.wrap_method(StaticQuantizer, "quantize", lambda self, recipe, *_: f"quantize {recipe.name}")
    ... run ...
    timer.rows()  # [{"path": ("search", "quantize base"), "calls", "wall", "cpu", "self_wall", "self_cpu"}, ...]
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Label = str | Callable[..., str]


@dataclass
class _Totals:
    """One stage path's sums: how often it ran, its inclusive seconds, and the seconds of the stages under it."""

    calls: int = 0
    wall: float = 0.0  # perf_counter seconds, inclusive
    cpu: float = 0.0  # process_time seconds (every thread), inclusive
    child_wall: float = 0.0  # of the stages timed inside it: own = inclusive - children
    child_cpu: float = 0.0


@dataclass
class StageTimer:
    """Nested stage times; ``max_depth`` bounds how deep a path is kept (deeper stages count in their parent)."""

    max_depth: int = 6
    totals: dict[tuple[str, ...], _Totals] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)
    _child: list[list[float]] = field(default_factory=list)  # per open stage: [wall, cpu] of its children

    def _timed(self, label: Label, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name = label if isinstance(label, str) else label(*args, **kwargs)
            if len(self._stack) >= self.max_depth or (self._stack and self._stack[-1] == name):
                return fn(*args, **kwargs)  # too deep, or a stage calling itself: counted in the open stage
            self._stack.append(name)
            self._child.append([0.0, 0.0])
            self.totals.setdefault(tuple(self._stack), _Totals())  # entry order: a parent before its children
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                child_wall, child_cpu = self._child.pop()
                path = tuple(self._stack)
                self._stack.pop()
                t = self.totals[path]
                t.calls += 1
                t.wall += wall
                t.cpu += cpu
                t.child_wall += child_wall
                t.child_cpu += child_cpu
                if self._child:
                    self._child[-1][0] += wall
                    self._child[-1][1] += cpu

        wrapper.__stage_original__ = fn  # type: ignore[attr-defined]
        return wrapper

    def wrap_function(self, module: Any, name: str, label: Label, also: tuple[str, ...] = ("edgecls",)) -> None:
        """Replace ``module.name`` by a timed wrapper, in ``module`` and in every loaded module whose name starts
        with one of ``also`` that imported the same object by name."""
        original = getattr(module, name)
        wrapped = self._timed(label, original)
        for mod in list(sys.modules.values()):
            mod_name = getattr(mod, "__name__", "")
            if mod is module or any(mod_name.startswith(p) for p in also):
                for attr, value in list(vars(mod).items()):
                    if value is original:
                        setattr(mod, attr, wrapped)

    def wrap_method(self, cls: type, name: str, label: Label) -> None:
        """Replace ``cls.name`` (a plain method or a property's getter) by a timed wrapper."""
        original = cls.__dict__[name]
        if isinstance(original, property):
            setattr(cls, name, property(self._timed(label, original.fget)))  # type: ignore[arg-type]
        else:
            setattr(cls, name, self._timed(label, original))

    def rows(self) -> list[dict[str, Any]]:
        """Every path with its calls, inclusive and own wall / CPU seconds, in the order first entered."""
        return [
            {
                "path": list(path),
                "calls": t.calls,
                "wall": round(t.wall, 2),
                "cpu": round(t.cpu, 2),
                "self_wall": round(t.wall - t.child_wall, 2),
                "self_cpu": round(t.cpu - t.child_cpu, 2),
            }
            for path, t in self.totals.items()
            if t.calls
        ]
