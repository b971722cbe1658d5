"""The demo's report: report.md and report.html with the summary table, the int8 report, sample predictions,
the benchmark and the plots (training curves, confusion matrix, latency, accuracy vs speed), and summary.json,
the same numbers machine-readable (written last by run_demo, with the report step's time; the file a result
under benchmarks/results/ commits)."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

from edgecls.demo_results import SUMMARY_HEADER, DemoOptions, DemoResult, VariantSummary, next_commands, summary_rows
from edgecls.runtime.atomic import atomic_write_text


def write_report(result: DemoResult, bench: Any, options: DemoOptions) -> None:
    from edgecls.runtime.bench.plot import write_plot
    from edgecls.runtime.bench.report import to_markdown
    from edgecls.runtime.bench.result_files import write_json

    out = result.out
    write_json(bench, out / "bench.json")
    write_plot(bench, out / "latency.png")
    _plot_accuracy_vs_speed(result.variants, out / "accuracy_vs_speed.png")
    qpath = result.export_dir / "quantization_report.md"  # export's own report: shown, not re-rendered
    qreport = qpath.read_text() if qpath.exists() else None
    images = [
        ("Training curves", "run/curves.png"),
        ("Confusion matrix (test split, PyTorch)", "run/eval/confusion.png"),
        ("Latency per variant", "latency.png"),
        ("Accuracy vs speed", "accuracy_vs_speed.png"),
    ]
    table = summary_rows(result.variants)
    md = [
        "# edgecls demo report\n",
        f"Data `{options.data}`, architecture `{options.arch}`, "
        f"{len(json.loads((result.run_dir / 'history.json').read_text()))} epochs trained.\n",
        "## Summary\n",
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|" + "---|" * len(SUMMARY_HEADER),
    ]
    md += ["| " + " | ".join(r) + " |" for r in table]
    if qreport:  # its headings go one level down under the demo report's own
        md += ["", *("#" + line if line.startswith("#") else line for line in qreport.splitlines())]
    md += [
        "",
        "## Sample predictions (int8, through the runtime)",
        "",
        "| file | truth | predicted | score |",
        "|---|---|---|---|",
    ]
    md += [f"| {s['file']} | {s['truth']} | {s['predicted']} | {s['score']:.3f} |" for s in result.samples]
    md += ["", "## Benchmark", "", to_markdown(bench), ""]
    md += [f"## {title}\n\n![{title}]({src})\n" for title, src in images]
    md += [
        "## Time per step (s)",
        "",
        " | ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()),
        "",
        "## Next",
        "",
        "```",
        *next_commands(result),
        "```",
        "",
    ]
    result.report_md = atomic_write_text(out / "report.md", "\n".join(md))
    result.report_html = atomic_write_text(out / "report.html", _html(result, table, images, qreport))


def write_summary(result: DemoResult, bench: Any, options: DemoOptions, path: Path) -> Path:
    """summary.json: the options, every variant's accuracy/size/latency, the samples, seconds per step and the
    machine (the benchmark's environment: CPU, ISA flags, versions, load average, UTC time)."""
    summary = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "epochs_trained": len(json.loads((result.run_dir / "history.json").read_text())),
        "variants": [dataclasses.asdict(v) for v in result.variants],
        "samples": result.samples,
        "seconds": {**result.seconds, "total": sum(result.seconds.values())},
        "environment": bench.environment.to_dict(),
    }
    return atomic_write_text(path, json.dumps(summary, indent=2) + "\n")


def _plot_accuracy_vs_speed(variants: list[VariantSummary], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgecls.runtime.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=110)
    for v in variants:
        if v.p50_ms is None or v.accuracy is None:
            continue
        ax.scatter([v.p50_ms], [100 * v.accuracy], s=60)
        ax.annotate(
            v.name, (v.p50_ms, 100 * v.accuracy), xytext=(5, 4), textcoords="offset points", fontsize=8
        )
    ax.set(
        xlabel="p50 latency, batch 1 (ms, log scale)",
        ylabel="test top-1 (%)",
        title="Accuracy vs speed",
        xscale="log",
    )
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.xaxis.set_major_formatter(ScalarFormatter())  # plain numbers (0.5, 1, 5), not 5x10^-1
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15, y=0.25)  # room for the labels beside the points
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _html(
    result: DemoResult, table: list[list[str]], images: list[tuple[str, str]], qreport: str | None
) -> str:
    esc = html.escape
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in table)
    head = "".join(f"<th>{esc(h)}</th>" for h in SUMMARY_HEADER)
    samples = "".join(
        f"<figure><img src='{esc(s['file'])}' width=96 style='image-rendering:pixelated'><figcaption>"
        f"{'&#10003;' if s['correct'] else '&#10007;'} {esc(s['predicted'])} ({s['score']:.2f})<br>"
        f"truth {esc(s['truth'])}</figcaption></figure>"
        for s in result.samples
    )
    figs = "".join(f"<h2>{esc(t)}</h2><img src='{esc(src)}' style='max-width:100%'>" for t, src in images)
    quant = f"<h2>int8 quantization</h2><pre>{esc(qreport)}</pre>" if qreport else ""
    nxt = esc("\n".join(next_commands(result)))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>edgecls demo report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}figure{{display:inline-block;margin:6px;text-align:center;font-size:12px}}
pre{{background:#f6f6f6;padding:8px;overflow:auto}}</style></head><body>
<h1>edgecls demo report</h1><h2>Summary</h2><table><tr>{head}</tr>{rows}</table>{quant}
<h2>Sample predictions (int8 model, runtime only)</h2>{samples}{figs}
<h2>Next</h2><pre>{nxt}</pre></body></html>
"""
