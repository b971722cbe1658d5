"""``edgecls info``: the flags become one InfoOptions for edgecls.export.info.describe; this prints its report.

Only typer and the standard library are imported here; the model is read inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecls.cli.options import JsonOpt, PrecisionOpt

INFO_HELP = """Show a model's contract (labels, input size, preprocessing, provenance), inputs/outputs, size,
parameter count and operator counts. Works with only onnxruntime installed (graph details need onnx).

--provider openvino [--precision bf16] also loads the model on that engine and shows what it really runs
(the precision is read back from OpenVINO's compiled model).

Example:  edgecls info runs/digits/export/model.int8.onnx
"""


def info_command(
    model: Annotated[Path, typer.Argument(help="ONNX model.")],
    json_out: JsonOpt = False,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Also load the model on this provider and show its engine.")
    ] = None,
    precision: PrecisionOpt = None,
    acknowledge: Annotated[
        bool,
        typer.Option(
            "--acknowledge", "--ack",
            help="Record that you have read this file's int8 notices (its verdict, the CPU it was made for): run, "
            "serve, selftest, bench and eval print each once per file anyway; after this, not even once.",
        ),
    ] = False,
) -> None:
    from edgecls.export.info import InfoOptions, describe
    from edgecls.runtime.terminal.text import plain

    report = describe(InfoOptions(model=model, provider=provider, precision=precision, acknowledge=acknowledge))
    info = report.model
    if json_out:
        typer.echo(json.dumps(report.to_dict()))
    else:
        _print_info(info, acknowledge)
        typer.echo(plain("providers here: " + "; ".join(report.providers_here)))
        if report.engine is not None:
            typer.echo(plain(f"engine: {report.engine['line']}"))
    if info.contract_error:
        # The rest of the model is still described above; the refusal is the one error line (exit 2), as in run.
        from edgecls.runtime.errors import ContractError

        raise ContractError(info.contract_error)


def _print_info(info: Any, acknowledge: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgecls.runtime.terminal.text import rich_text

    # Every name and value below comes from the model file (its graph, its contract): cells are rich_text, never
    # markup, with control characters made visible (a label "[/]" or "\x1b[2J" prints as written).
    console = Console()
    head = Table(title=rich_text(info.path), show_header=False, title_justify="left")
    head.add_row("size", f"{info.size_bytes / 1e6:.2f} MB")
    head.add_row("producer", rich_text(info.producer or "-"))
    if info.source == "onnx":
        head.add_row("opset / IR", f"{info.opset} / {info.ir_version}")
        head.add_row("parameters", f"{info.parameters:,}")
        head.add_row("quantized", "yes (QDQ/QLinear ops)" if info.quantized else "no")
    for t in info.inputs:
        head.add_row(rich_text(f"input {t.name}"), rich_text(f"{t.dtype} {t.shape}"))
    for t in info.outputs:
        head.add_row(rich_text(f"output {t.name}"), rich_text(f"{t.dtype} {t.shape}"))
    console.print(head)
    c = info.contract
    if c is None:
        console.print("contract: unreadable (below)" if info.contract_error
                      else "no edgecls contract: give the preprocessing as flags when running it")
    else:
        ct = Table(title="contract", show_header=False, title_justify="left")
        labels = ", ".join(c["labels"][:12]) + (f" ... ({len(c['labels'])} labels)" if len(c["labels"]) > 12 else "")
        ct.add_row("labels", rich_text(labels))
        ct.add_row("input", rich_text(f"{c['layout']} {c['input_size'][0]}x{c['input_size'][1]} {c['color_order']}"))
        ct.add_row("resize", rich_text(f"{c['resize_mode']} (crop {c['crop_fraction']}), {c['interpolation']}"))
        ct.add_row("JPEG decode", rich_text(c.get("jpeg_decode", "reduced")))
        ct.add_row("values", rich_text(f"x*{c['scale']:.6g}, mean {c['mean']}, std {c['std']}"))
        for key, value in c.get("provenance", {}).items():
            shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
            ct.add_row(rich_text(f"provenance.{key}"), rich_text(shown))
        console.print(ct)
    for warning in info.int8_warnings:
        console.print(rich_text(f"warning: {warning}", style="bold red"))
    if info.notices_told:
        console.print(_notices_line(info.notices_told))
    elif acknowledge:
        console.print("nothing to acknowledge: this file has no int8 notices")
    if info.op_counts:
        console.print(rich_text("operators: " + ", ".join(f"{k} {v}" for k, v in info.op_counts.items())))
    elif info.source == "onnxruntime":
        from edgecls.runtime.errors import install_hint

        console.print(f"operator and parameter counts need the onnx package: {install_hint('train')}", markup=False)


def _notices_line(told: dict[str, str]) -> str:
    """What run/serve/selftest/bench/eval do with the notices above (runtime.terminal.notice_memory)."""
    if all(state == "acknowledged" for state in told.values()):
        return "acknowledged: no command prints these notices again for you"
    seen = "already printed once for you" if all(s != "not shown" for s in told.values()) else "not printed yet"
    return (f"run, serve, selftest, bench and eval print these once per file and user ({seen}); "
            "--acknowledge records them as read")


def register(app: typer.Typer) -> None:
    app.command("info", help=INFO_HELP)(info_command)
