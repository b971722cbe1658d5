"""The ``edgecls`` command line: thin typer adapters over typed library functions.

Each command lives in its own module and imports its heavy dependencies inside the command body, so
``edgecls --help`` and ``edgecls run`` never import torch (a test proves it).
"""

from __future__ import annotations

import inspect
import sys

import typer

from edgecls.cli import (
    batch_cmd,
    bench_cmd,
    demo_cmd,
    eval_cmd,
    export_cmd,
    info_cmd,
    pack_cmd,
    providers_cmd,
    quantize_cmd,
    run_cmd,
    selftest_cmd,
    serve_cmd,
    train_cmd,
    update_cmd,
)
from edgecls.cli.help_text import reflow
from edgecls.runtime.terminal.redact import redact
from edgecls.runtime.terminal.text import plain

app = typer.Typer(
    name="edgecls",
    help="Train CNN image classifiers, export them to ONNX (fp32/fp16/int8) with their preprocessing "
    "contract, and run and benchmark them on edge devices without PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Registration order is the order `edgecls --help` lists the commands in.
_COMMANDS = (
    train_cmd, eval_cmd, export_cmd, quantize_cmd, info_cmd, run_cmd, providers_cmd, batch_cmd, serve_cmd, bench_cmd,
    demo_cmd, pack_cmd, selftest_cmd, update_cmd,
)
for _module in _COMMANDS:
    _module.register(app)
# Every command's help reaches typer reflowed (cli/help_text.py): sources wrap their prose by hand, terminals differ.
for _info in app.registered_commands:
    _info.help = reflow(_info.help or inspect.getdoc(_info.callback) or "")


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None,
                  line=None) -> None:
    """A warning is one line on stderr, as errors are: ``warning: <message>`` (not Python's file:line + source);
    a model file's int8 notices once per file and user (eval, batch: runtime.terminal.notice_memory)."""
    from edgecls.runtime.terminal.notice_memory import line_to_print

    text = line_to_print(message)
    if text is not None:
        print(f"warning: {plain(redact(text))}", file=sys.stderr)


def main() -> None:
    """Console entry point: edgecls errors become one line on stderr (exit 2, or the error's own
    ``exit_status``: 3 for an int8 model over its accuracy budget), warnings one line each; Ctrl-C exits 130."""
    import warnings

    from edgecls.cli.renamed_flags import rewrite_argv
    from edgecls.runtime.errors import EdgeclsError

    warnings.showwarning = _warning_line  # set by the console entry point only: importing edgecls changes nothing
    try:
        argv = rewrite_argv(sys.argv[1:], lambda text: print(f"warning: {text}", file=sys.stderr))
        app(args=argv)
    except EdgeclsError as e:
        # The one place `error: ...` is printed. Messages quote file names, labels and URLs: no password, and no
        # control character or newline of theirs reaches the terminal (a name cannot forge a second line).
        print(f"error: {plain(redact(str(e)))}", file=sys.stderr)
        detail = getattr(e, "detail", None)  # an engine's full message (runtime.providers.session.load_error)
        if detail and "--verbose" in sys.argv[1:]:
            print("\n".join(plain(line) for line in redact(detail).splitlines()), file=sys.stderr)
        sys.exit(getattr(e, "exit_status", 2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
