"""The per-node speed study's results file (node_speed_study.py): JSON and a Markdown page named after the CPU, its
int8 instructions, onnxruntime's version and the date (``runtime/bench/env.py`` slugs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.env import collect_environment, cpu_slug, isa_slug


def _kind_rows(kinds: dict[str, dict[str, float]]) -> list[str]:
    def ms(us: float | None) -> str:
        return "-" if us is None else f"{us / 1000:.3f}"

    rows = ["| node kind | int8 (u8s8) ms | fp32 ms |", "|---|---|---|"]
    for kind in dict.fromkeys([*kinds["u8s8"], *kinds["fp32"]]):
        rows.append(f"| {kind} | {ms(kinds['u8s8'].get(kind))} | {ms(kinds['fp32'].get(kind))} |")
    return rows


#: Node kinds that are convolutions or matmuls (node_profile.node_kind).
CONV_KINDS = ("1x1 conv", "depthwise conv", "3x3 conv", "5x5 conv", "conv", "gemm")


def conv_kernel_ratio(kinds: dict[str, dict[str, float]]) -> float:
    """fp32's conv/matmul time over int8's: what the int8 kernels alone buy, before any quantize/dequantize,
    transpose or reorder node."""
    fp32, int8 = (sum(v for k, v in kinds[label].items() if k in CONV_KINDS) for label in ("fp32", "u8s8"))
    return fp32 / max(int8, 1e-9)


def markdown(env: dict[str, Any], cases: dict[str, Any]) -> str:
    lines = [
        f"# int8 speed per node on {env['cpu']} ({env['isa']['isa']}), onnxruntime {env['onnxruntime']}, {env['date']}",
        "",
        f"{env['cores']} cores, batch 1, sessions as `edgecls bench` makes them (physical cores, no spinning); "
        f"load average at start {[round(v, 2) for v in env['loadavg_start']]}, at end "
        f"{[round(v, 2) for v in env['loadavg_end']]}; timing phase scheduled {env.get('scheduling', 'normal')} "
        "under the CPU lock. Speed-ups: the int8 search's interleaved timing (`paired_timing.time_ratio`) against "
        "onnxruntime fp32, median of the rounds (range of the rounds).",
        "",
    ]
    for name, c in cases.items():
        lines += [f"## {name}", "", "| variant | x onnxruntime fp32 | p50 ms | fp32 p50 ms | rounds | load |",
                  "|---|---|---|---|---|---|"]
        for label, r in c["latency"].items():
            s = r["round_speedups"]
            lines.append(
                f"| {label} | {r['speedup']:.2f}x ({min(s):.2f}-{max(s):.2f}) | {r['p50_ms']:.2f} | "
                f"{r['fp32_p50_ms']:.2f} | {r['rounds']} | {r['loadavg'][0]} |"
            )
        lines += [
            "",
            f"Session creation (median of 5): {c['session_create_ms']}. Profiled sums per call: "
            f"{c['profile_sum_ms']} ms (the profiler adds a little per node). The int8 conv kernels alone run "
            f"{conv_kernel_ratio(c['node_kinds_us']):.2f}x fp32's conv kernels; if every other node of the int8 graph "
            f"took no time, int8 would run at most {c['conv_only_ceiling']:.2f}x fp32 (fp32's profiled total over "
            "int8's conv time).",
            "",
            *_kind_rows(c["node_kinds_us"]),
            "",
            "The search's speed step on the u8s8 file (run in the quantize phase, outside the lock, load "
            f"{c.get('quantize_loadavg', '-')}):",
            "",
            *(f"- {n}" for n in c["speed_step"]),
            "",
        ]
    return "\n".join(lines) + "\n"


def write_results(env: dict[str, Any], cases: dict[str, Any], folder: Path) -> list[Path]:
    machine = collect_environment()
    stem = f"NODE-SPEED_{cpu_slug(machine)}_{isa_slug(machine)}_ort{env['onnxruntime']}_{env['date']}"
    data = {"environment": env, "cases": cases}
    return [
        atomic_write_text(folder / f"{stem}.json", json.dumps(data, indent=1, default=str) + "\n"),
        atomic_write_text(folder / f"{stem}.md", markdown(env, cases)),
    ]
