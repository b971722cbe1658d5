"""Each command's defaults are the library's: a flag left out gives what the options object the command builds would
hold without it, so ``edgecls run`` and ``run(RunOptions(...))`` from Python behave alike. (The int8 flags of
export, quantize and pack have their own check where their options are built.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import typer.core
import typer.main

from edgecls.cli import app


def _same(x: Any) -> Any:
    return x


def _mb(x: Any) -> Any:
    from edgecls.runtime.images.file_guard import max_file_bytes  # what run, batch and serve turn an MB flag into

    return max_file_bytes(x)


#: command -> {parameter: (options class, field, CLI value -> field value)}. Classes are named "module:Class" and
#: imported in the test (some need torch).
LIBRARY_FIELDS: dict[str, dict[str, tuple[str, str, Callable[[Any], Any]]]] = {}
_RUN, _LOOP = "edgecls.runtime.run.main:RunOptions", "edgecls.runtime.sources.source_loop:LoopOptions"
_CAPTURE = "edgecls.runtime.sources.live_capture:CaptureSettings"
_WATCH = "edgecls.runtime.sources.watch_options:WatchOptions"
_BATCH, _SERVE = "edgecls.runtime.batch.job:BatchJob", "edgecls.runtime.serve.settings:ServeSettings"
_SERVE_OPTIONS, _BENCH = "edgecls.runtime.serve.launch:ServeOptions", "edgecls.runtime.bench.benchmark:BenchOptions"
LIBRARY_FIELDS["run"] = {
    "provider": (_RUN, "provider", _same), "strict": (_RUN, "strict", _same), "threads": (_RUN, "threads", _same),
    "precision": (_RUN, "precision", _same), "top_k": (_LOOP, "top_k", _same),
    "batch_size": (_LOOP, "batch_size", _same), "decode_threads": (_LOOP, "decode_threads", _same),
    "max_file_mb": (_LOOP, "max_file_bytes", _mb), "max_pixels": (_LOOP, "max_pixels", _same),
    "max_frames": (_LOOP, "max_frames", _same), "stride": (_CAPTURE, "stride", _same),
    "realtime": (_CAPTURE, "realtime", _same), "retries": (_CAPTURE, "retries", _same),
    "backoff": (_CAPTURE, "backoff", _same), "read_timeout": (_CAPTURE, "read_timeout", _same),
    "settle": (_WATCH, "settle_s", _same),
}
LIBRARY_FIELDS["batch"] = {
    name: (_BATCH, name, _same)
    for name in ("batch_size", "decode_threads", "actors", "provider", "threads", "top_k", "jsonl", "overwrite",
                 "max_pixels")
} | {"max_file_mb": (_BATCH, "max_file_bytes", _mb), "settle": (_WATCH, "settle_s", _same)}
LIBRARY_FIELDS["serve"] = {
    name: (_SERVE, name, _same)
    for name in ("host", "port", "token", "insecure", "top_k", "max_wait_ms", "max_queue", "max_pixels",
                 "decode_threads", "max_jpeg_scans", "max_connections", "max_headers", "max_connections_per_client",
                 "min_body_rate")
} | {
    "max_batch_size": (_SERVE, "max_batch", _same), "max_body_mb": (_SERVE, "max_body_bytes", _mb),
    "request_timeout": (_SERVE, "request_timeout_s", _same), "drain_timeout": (_SERVE, "drain_timeout_s", _same),
    "header_timeout": (_SERVE, "header_timeout_s", _same), "keep_alive": (_SERVE, "keep_alive_s", _same),
    "body_grace": (_SERVE, "body_grace_s", _same), "provider": (_SERVE_OPTIONS, "provider", _same),
    "precision": (_SERVE_OPTIONS, "precision", _same), "threads": (_SERVE_OPTIONS, "threads", _same),
    "camera": (_SERVE_OPTIONS, "camera", _same), "source": (_SERVE_OPTIONS, "source", _same),
}
LIBRARY_FIELDS["bench"] = {
    name: (_BENCH, name, _same)
    for name in ("spin", "warmup", "compare", "max_drop", "baselines", "runs", "time_budget", "strict",
                 "trust_checkpoint", "e2e", "threads", "checkpoint")
} | {
    "provider": (_BENCH, "providers", tuple), "batch_size": (_BENCH, "batches", lambda v: v or (1,)),
    "precision": (_BENCH, "precisions", _same), "in_process": (_BENCH, "isolate", lambda v: not v),
    "data": (_BENCH, "data_dir", _same),
}
_TRAIN = "edgecls.training.config:TrainConfig"
LIBRARY_FIELDS["train"] = {
    name: (_TRAIN, name, _same)
    for name in ("arch", "epochs", "batch_size", "seed", "optimizer", "lr", "label_smoothing", "patience",
                 "min_epochs", "workers", "resume", "pretrained", "model", "head", "head_epochs",
                 "backbone_lr_scale", "batchnorm")
} | {"out": (_TRAIN, "out", str)}
_EVAL = "edgecls.evaluation.evaluate:EvalOptions"
LIBRARY_FIELDS["eval"] = {name: (_EVAL, name, _same) for name in ("split", "seed", "provider", "batch_size")}
_DEMO = "edgecls.demo_results:DemoOptions"
LIBRARY_FIELDS["demo"] = {name: (_DEMO, name, _same) for name in ("out", "data", "arch", "epochs", "fp16",
                                                                   "bench_runs")}
_SELFTEST = "edgecls.runtime.device.selftest:SelftestOptions"
LIBRARY_FIELDS["selftest"] = {name: (_SELFTEST, name, _same) for name in ("provider", "threads")}
_UPDATE = "edgecls.runtime.device.update:UpdateOptions"
LIBRARY_FIELDS["update"] = {"unit": (_UPDATE, "unit", _same), "probe_timeout": (_UPDATE, "probe_timeout", _same),
                            "skip_selftest": (_UPDATE, "selftest", lambda v: not v)}
_INFO = "edgecls.export.info:InfoOptions"
LIBRARY_FIELDS["info"] = {name: (_INFO, name, _same) for name in ("provider", "precision", "acknowledge")}
_EXPORT = "edgecls.export.export_run:ExportOptions"
LIBRARY_FIELDS["export"] = {name: (_EXPORT, name, _same) for name in ("opset", "exporter", "fp16", "data")}

#: Defaults with no options field behind them: what the command does with them instead.
CLI_ONLY = {
    ("selftest", "frames"): "the --camera/--source grab's frame count, an argument of grab_frames",
    ("bench", "provider"): "checked through LIBRARY_FIELDS too",
}
#: The int8 flags, checked where the int8 options are built.
INT8 = {"export": {"max_drop", "agreement_on", "reconstruct", "target", "reconstruct_seconds", "calib", "val",
                   "calib_images", "val_images", "allow_over_budget", "require_verified", "qat", "quantize"}}


def _class(spec: str) -> type:
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _default(cls: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def test_every_default_of_a_command_is_its_options_object_s() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    wrong = []
    for command, fields in LIBRARY_FIELDS.items():
        params = {p.name: p for p in commands[command].params if not isinstance(p, typer.core.TyperArgument)}
        unknown = set(fields) - set(params)
        assert not unknown, f"{command} has no {unknown}"
        for name, param in params.items():
            if name in INT8.get(command, set()) or name == "help":
                continue
            if name not in fields:
                # A flag left out of the table must not carry a default of its own.
                if param.default not in (None, False, ()) and (command, name) not in CLI_ONLY:
                    wrong.append(f"{command} --{name} defaults to {param.default!r}: map it to its options field")
                continue
            spec, field, convert = fields[name]
            cli, library = _plain(convert(param.default)), _plain(_default(_class(spec), field))
            if isinstance(library, Path) or isinstance(cli, Path):
                cli, library = str(cli), str(library)
            if cli != library:
                wrong.append(f"{command} --{name} defaults to {cli!r}, {spec.split(':')[1]}.{field} to {library!r}")
    assert not wrong, "\n".join(wrong)
