"""The real console entry point run in-process, and what a command left in a folder (shared by the export,
quantize, info and training tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def cli_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the real console entry point (edgecls.cli.main) in-process; returns (exit code, stdout, stderr)."""
    from edgecls.cli import main

    old = sys.argv
    sys.argv = ["edgecls", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder: Path) -> list[str]:
    """The names in ``folder``, sorted (empty when it does not exist): what a failed command must not leave."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
