"""The bench's tables: the columns, the terminal report (rich) and the same table as Markdown.

Ratios shown (``x fp32``) compare each row's p50 with the fp32 onnxruntime CPU row of the same model family,
batch and threads (``BenchRow.speedup``, filled by ``compute_ratios``); ``ref`` marks that row itself.
JSON/CSV files are :mod:`edgecls.runtime.bench.result_files`, the plot :mod:`edgecls.runtime.bench.plot`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.agreement import agreement_inputs_line
from edgecls.runtime.bench.auto_pick import unjudged_line
from edgecls.runtime.bench.env import Environment
from edgecls.runtime.bench.rows import ENGINE_ORT, BenchResult, BenchRow, is_reference
from edgecls.runtime.providers.openvino import is_openvino_runtime


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def engine_provider(row: BenchRow) -> str:
    """``ort CPU``, ``ort CUDA -> CPU (fallback)``, ``openvino CPU (runtime)``, ``opencv-dnn``, ``pytorch-eager``;
    ``[pick]`` marks the row ``--provider all`` found fastest and correct."""
    pick = " [pick]" if row.auto_pick else ""
    if row.engine != ENGINE_ORT:
        return row.engine
    if row.engine_runtime == "openvino" or is_openvino_runtime(row.providers_used):
        # OpenVINO's own runtime ran (or failed to load) the file: not an ORT row, even when it errored.
        device = row.providers_used[0].split(":", 1)[1] if is_openvino_runtime(row.providers_used) else "CPU"
        precision = f" {row.precision}" if row.precision else ""
        return f"openvino {device}{precision} (runtime){pick}"
    short = row.provider.replace("ExecutionProvider", "")
    if row.fallback:
        used = ",".join(p.replace("ExecutionProvider", "") for p in row.providers_used) or "CPU"
        return f"ort {short} -> {used} (fallback)"
    return f"ort {short}{pick}"


def threads_text(row: BenchRow) -> str:
    """``2``, or ``2 spin`` for rows measured with onnxruntime's spinning worker threads (not what run uses)."""
    base = "default" if row.threads is None else str(row.threads)
    return f"{base} spin" if row.spin else base


def agreement_text(row: BenchRow) -> str:
    """``95.33 (n=300)``: top-1 agreement with onnxruntime CPU fp32 and over how many real images."""
    if row.agreement is None:
        return "-"
    n = f" (n={row.agreement_images})" if row.agreement_images else ""
    return f"{100 * row.agreement:.2f}{n}"


def max_diff_text(row: BenchRow) -> str:
    return "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.2g}"


def speedup_text(row: BenchRow) -> str:
    if is_reference(row):
        return "ref"
    return "-" if row.speedup is None else f"{row.speedup:.2f}x"


def accuracy_text(row: BenchRow) -> str:
    if row.accuracy is None:
        return "-"
    delta = "" if row.accuracy_delta is None or is_reference(row) else f" ({row.accuracy_delta:+.1f})"
    return f"{100 * row.accuracy:.1f}{delta}"


def note_text(row: BenchRow) -> str:
    if row.error:
        return f"error: {row.error}"
    return "; ".join(row.warnings)


# (header, formatter, right-aligned) for the main table; CSV uses raw values instead.
COLUMNS: list[tuple[str, Callable[[BenchRow], str], bool]] = [
    ("model", lambda r: r.label, False),
    ("variant", lambda r: r.variant, False),
    ("engine / provider", engine_provider, False),
    ("batch", lambda r: _num(r.batch, "{}"), True),
    ("threads", threads_text, True),
    ("p50 ms", lambda r: _num(r.p50_ms), True),
    ("p90 ms", lambda r: _num(r.p90_ms), True),
    ("p99 ms", lambda r: _num(r.p99_ms), True),
    ("mean+-std ms", lambda r: "-" if r.mean_ms is None else f"{r.mean_ms:.2f}+-{r.std_ms or 0:.2f}", True),
    ("min ms", lambda r: _num(r.min_ms), True),
    ("img/s", lambda r: _num(r.throughput_ips, "{:.1f}"), True),
    ("x fp32", speedup_text, True),
    ("cold start ms", lambda r: _num(r.session_create_ms, "{:.0f}"), True),
    ("peak RSS MB", lambda r: _num(r.peak_rss_mb, "{:.0f}"), True),
    ("size MB", lambda r: _num(r.model_size_mb), True),
    ("top-1 %", accuracy_text, True),
    ("agree %", agreement_text, True),
    ("max |d|", max_diff_text, True),
]

E2E_COLUMNS: list[tuple[str, Callable[[BenchRow], str]]] = [
    ("model", lambda r: r.label),
    ("engine / provider", engine_provider),
    ("batch", lambda r: _num(r.batch, "{}")),
    ("threads", threads_text),
    ("images", lambda r: str(r.e2e.images) if r.e2e else "-"),
    ("decode ms", lambda r: _num(r.e2e.decode_ms if r.e2e else None)),
    ("preprocess ms", lambda r: _num(r.e2e.preprocess_ms if r.e2e else None)),
    ("infer ms", lambda r: _num(r.e2e.infer_ms if r.e2e else None)),
    ("postprocess ms", lambda r: _num(r.e2e.postprocess_ms if r.e2e else None, "{:.3f}")),
    ("total ms/img", lambda r: _num(r.e2e.total_ms if r.e2e else None)),
    ("img/s", lambda r: _num(r.e2e.images_per_s if r.e2e else None, "{:.1f}")),
    ("top-1 %", accuracy_text),
]


def environment_line(env: Environment) -> str:
    v = env.versions
    return (
        f"{env.cpu_model} ({env.machine}, {env.physical_cores} physical / {env.logical_cores} logical cores, "
        f"ISA: {' '.join(env.isa) or 'unknown'}) | onnxruntime {v.get('onnxruntime')}, "
        f"opencv {v.get('opencv')}, numpy {v.get('numpy')}, torch {v.get('torch') or 'not installed'}"
        f"{', openvino ' + v['openvino'] if v.get('openvino') else ''} | "
        f"{env.timestamp}"
    )


# --------------------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------------------
def print_report(result: BenchResult, console: Any = None) -> None:
    """The rich table (and the end-to-end stage table when measured), then errors/fallbacks as notes."""
    from rich.console import Console
    from rich.table import Table

    from edgecls.runtime.terminal.text import markup, rich_text

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or captured: long lines beat a table folded into 80 columns
            console = Console(width=max(console.width, 200))
    table = Table(title="edgecls bench (latency per call = one batch)", caption=environment_line(result.environment))
    for header, _, right in COLUMNS:
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for row in result.rows:
        style = "red" if row.error else ("yellow" if row.fallback else ("bold" if is_reference(row) else None))
        # Cells quote model file names and engine messages: text, never markup (and the " [pick]" mark shows).
        table.add_row(*[rich_text(f(row)) for _, f, _ in COLUMNS], style=style)
    console.print(table)
    e2e_rows = [r for r in result.rows if r.e2e]
    if e2e_rows:
        t2 = Table(
            title="end-to-end per image (decode -> preprocess -> infer -> postprocess)"
            + (" on synthetic JPEGs" if any(r.e2e.synthetic for r in e2e_rows if r.e2e) else "")
        )
        for header, _ in E2E_COLUMNS:
            t2.add_column(header, justify="left" if header in ("model", "engine / provider") else "right")
        for row in e2e_rows:
            t2.add_row(*[rich_text(f(row)) for _, f in E2E_COLUMNS])
        console.print(t2)
    noise_line = agreement_inputs_line(result)
    if noise_line:
        console.print(f"[yellow]{markup(noise_line)}[/]", highlight=False)
    for (label, note, is_error), count in grouped_notes(result.rows).items():
        rows = f" ({count} configurations)" if count > 1 else ""
        console.print(f"[{'red' if is_error else 'yellow'}]{markup(label)}{rows}: {markup(note)}[/]", highlight=False)
    for line in auto_pick_lines(result):
        console.print(rich_text(line), highlight=False)


def auto_pick_lines(result: BenchResult) -> list[str]:
    """One line per ``--provider all`` decision: the fastest correct provider and the ones it ruled out; or
    why nothing was picked (no real images to judge correctness on)."""
    if result.settings.get("auto_max_drop_points") is None:
        return []  # not an `all` run
    unjudged = unjudged_line(result.rows)
    if unjudged:
        return [unjudged]
    lines = []
    for pick in result.settings.get("auto_picks", []):
        agree = "-" if pick["agreement"] is None else f"{100 * pick['agreement']:.2f}%"
        ruled_out = f"; not correct: {', '.join(pick['rejected'])}" if pick["rejected"] else ""
        label = pick.get("label") or Path(pick["model"]).name
        precision = f" {pick['precision']}" if pick.get("precision") else ""
        lines.append(
            f"pick: {label} batch {pick['batch']} threads {pick['threads'] or 'default'}"
            f"{' spin' if pick.get('spin') else ''} -> "
            f"{pick['provider']}{precision} ({', '.join(pick['providers_used'])}), p50 {pick['p50_ms']:.2f} ms, "
            f"agreement with ORT CPU fp32 {agree} on {pick.get('images')} images (budget "
            f"{pick.get('max_drop', DEFAULT_MAX_DROP):g} pt){ruled_out}"
        )
    return lines


def grouped_notes(rows: Sequence[BenchRow]) -> dict[tuple[str, str, bool], int]:
    """(model label, note, is error) -> how many rows carry it: the same note is printed once per model."""
    out: dict[tuple[str, str, bool], int] = {}
    for row in rows:
        notes = [f"error: {row.error}"] if row.error else list(row.warnings)
        for note in notes:
            key = (row.label, note, row.error is not None)
            out[key] = out.get(key, 0) + 1
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: BenchResult) -> str:
    lines = [f"Environment: {environment_line(result.environment)}", ""]
    headers = [h for h, _, _ in COLUMNS] + ["note"]
    lines += [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for _, _, right in COLUMNS) + "|---|",
    ]
    for row in result.rows:
        cells = [f(row) for _, f, _ in COLUMNS] + [note_text(row)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    e2e_rows = [r for r in result.rows if r.e2e]
    if e2e_rows:
        lines += [
            "",
            "End-to-end, per image:",
            "",
            "| " + " | ".join(h for h, _ in E2E_COLUMNS) + " |",
            "|" + "|".join("---" for _ in E2E_COLUMNS) + "|",
        ]
        lines += ["| " + " | ".join(_md_cell(f(r)) for _, f in E2E_COLUMNS) + " |" for r in e2e_rows]
    lines += [
        "",
        "Latency is per call (one batch); `x fp32` = p50 of the fp32 onnxruntime CPU row of the same "
        "model, batch and threads divided by this row's p50; top-1 in %, (change vs fp32 in points); "
        "`agree %` / `max |d|`: top-1 agreement (over n real images) and largest output difference with "
        "onnxruntime CPU fp32 on the same inputs; `openvino CPU bf16`: OpenVINO's compiled "
        "precision; `spin`: onnxruntime worker threads spinning (edgecls run does not spin).",
    ]
    noise_line = agreement_inputs_line(result)
    if noise_line:
        lines += ["", noise_line]
    picks = auto_pick_lines(result)
    if picks:
        lines += [""] + [f"- {line}" for line in picks]
    return "\n".join(lines) + "\n"


def write_markdown(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, to_markdown(result))
