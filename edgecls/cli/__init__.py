"""The ``edgecls`` command line: thin typer adapters over typed library functions.

Each command lives in its own module and imports its heavy dependencies inside the command body, so
``edgecls --help`` and ``edgecls run`` never import torch (a test proves it).
"""

from __future__ import annotations

import sys

import typer

from edgecls.cli import (
    batch_cmd,
    bench_cmd,
    demo_cmd,
    export_cmd,
    info_cmd,
    pack_cmd,
    quantize_cmd,
    run_cmd,
    selftest_cmd,
    serve_cmd,
    train_cmd,
)
from edgecls.runtime.redact import redact

app = typer.Typer(
    name="edgecls",
    help="Train CNN image classifiers, export them to ONNX (fp32/fp16/int8) with their preprocessing "
    "contract, and run and benchmark them on edge devices without PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_COMMANDS = (
    train_cmd, export_cmd, quantize_cmd, info_cmd, run_cmd, batch_cmd, serve_cmd, bench_cmd, demo_cmd, pack_cmd,
    selftest_cmd,
)
for _module in _COMMANDS:
    _module.register(app)


def main() -> None:
    """Console entry point: edgecls errors become one line on stderr (exit 2, or the error's own
    ``exit_status``: 3 for an int8 model over its accuracy budget); Ctrl-C exits 130."""
    from edgecls.runtime.errors import EdgeclsError

    try:
        app()
    except EdgeclsError as e:
        print(f"error: {redact(str(e))}", file=sys.stderr)  # messages may quote a stream URL's password
        detail = getattr(e, "detail", None)  # an engine's full message (runtime.session.load_error)
        if detail and "--verbose" in sys.argv[1:]:
            print(redact(detail), file=sys.stderr)
        sys.exit(getattr(e, "exit_status", 2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
