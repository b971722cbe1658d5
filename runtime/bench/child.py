"""The bench's isolated child process: one configuration measured in a fresh Python interpreter.

Why a fresh process per configuration: the session creation time is then a real cold start (first session in
the process, thread pools and allocators created from scratch), and the peak resident memory belongs to this
configuration alone, not to everything measured before it.

Both sides of the process boundary live here: the parent (:func:`measure_in_child`) writes the task as JSON
and starts ``python -c "...child.main..." TASK.json RESULT.json``; the child (:func:`main`) runs
:func:`edgecls.runtime.bench.measure.measure` and writes one row as JSON. A child that dies or hangs becomes a
``{"error": ...}`` result, never a crashed benchmark.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.rows import BenchRow, Configuration

# Imported (not run as __main__) so loaders naming bench modules share their classes with the measuring code.
_CHILD_CODE = "import sys; from edgecls.runtime.bench.child import main; sys.exit(main(sys.argv[1:]))"


def measure_in_child(config: Configuration, timeout: float) -> BenchRow:
    """Measure ``config`` in a fresh interpreter: its row, with the reason as ``error`` when the child failed."""
    with tempfile.TemporaryDirectory(prefix="edgecls-bench-") as tmp:
        task_path, result_path = Path(tmp) / "task.json", Path(tmp) / "row.json"
        task_path.write_text(config.to_json())
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD_CODE, str(task_path), str(result_path)],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return config.blank_row(error=f"measurement did not finish within {timeout:.0f} s")
        if result_path.is_file():
            with contextlib.suppress(json.JSONDecodeError):
                return BenchRow.from_dict(json.loads(result_path.read_text()))
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()
        why = tail[-1] if tail else f"exit status {proc.returncode}"
        return config.blank_row(error=f"measuring process died (exit {proc.returncode}): {why}"[:500])


def main(argv: list[str]) -> int:
    """``TASK.json RESULT.json``: measure one configuration (the entry point of the measuring process)."""
    from edgecls.runtime.bench.measure import measure

    if len(argv) != 2:
        print("usage: python -m edgecls.runtime.bench.child TASK.json RESULT.json", file=sys.stderr)
        return 2
    config = Configuration.from_json(Path(argv[0]).read_text())
    atomic_write_text(argv[1], json.dumps(measure(config).to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
