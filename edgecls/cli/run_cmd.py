"""``edgecls run`` and ``edgecls providers``: the device-side commands (numpy, OpenCV, onnxruntime only).

Exit status of ``run``: 0 when every input was handled; 1 when any input failed (each failure is an error
record, and a summary line goes to stderr); 2 when the run could not start (model, flags); 130 after
Ctrl-C (SIGINT) and 143 after SIGTERM, both after stopping the sources and flushing every output.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer

_CONTRACT_HELP = "Contract override (required for models without an edgecls contract)."


def _floats(text: str | None, name: str, count: int = 3) -> tuple[float, ...] | None:
    if text is None:
        return None
    from edgecls.runtime.errors import EdgeclsError

    try:
        values = tuple(float(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError as e:
        raise EdgeclsError(f"{name} needs {count} comma-separated numbers, got {text!r}") from e
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise EdgeclsError(f"{name} needs {count} comma-separated numbers, got {text!r}")
    return values


def _labels(text: str | None) -> list[str] | None:
    """``--labels``: a text file (one label per line) or a comma-separated list."""
    if text is None:
        return None
    from edgecls.runtime.errors import EdgeclsError

    path = Path(text)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise EdgeclsError(f"--labels {text}: cannot read ({e})") from e
        return [line.strip() for line in lines if line.strip()]
    if "," not in text:
        raise EdgeclsError(f"--labels {text}: no such file (give a file with one label per line, or a,b,c)")
    return [v.strip() for v in text.split(",")]


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    from edgecls.runtime.errors import EdgeclsError

    try:
        parts = [int(v) for v in text.lower().replace("x", ",").split(",")]
    except ValueError as e:
        raise EdgeclsError(f"--img-size must be S or HxW, got {text!r}") from e
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise EdgeclsError(f"--img-size must be S or HxW, got {text!r}")
    return parts[0], parts[1]


def contract_overrides(
    labels: str | None = None,
    img_size: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    resize: str | None = None,
    crop: float | None = None,
    interpolation: str | None = None,
    color_order: str | None = None,
    scale: float | None = None,
    output_kind: str | None = None,
    jpeg_decode: str | None = None,
) -> dict[str, Any]:
    """Contract fields given on the command line (None values dropped)."""
    fields: dict[str, Any] = {
        "labels": _labels(labels),
        "input_size": _size(img_size),
        "mean": _floats(mean, "--mean"),
        "std": _floats(std, "--std"),
        "resize_mode": resize,
        "crop_fraction": crop,
        "interpolation": interpolation,
        "color_order": color_order.upper() if color_order else None,
        "scale": scale,
        "output_kind": output_kind,
        "jpeg_decode": jpeg_decode,
    }
    return {k: v for k, v in fields.items() if v is not None}


class _Signals:
    """SIGINT/SIGTERM -> KeyboardInterrupt in the main thread, remembering which one for the exit code."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.received is None:  # first signal: unwind, stop the sources, flush and publish outputs
            self.received = signum
            raise KeyboardInterrupt
        os._exit(128 + signum)  # a second one while cleaning up: the user insists, leave now

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received) if self.received is not None else 130


def run(
    model: Path = typer.Argument(
        ..., help="ONNX model (fp32, fp16 or int8) with or without an edgecls contract."
    ),
    sources: list[str] | None = typer.Argument(
        None, help="Image files, folders (recursive), globs, video files, rtsp/http URLs.", show_default=False
    ),
    camera: list[int] | None = typer.Option(None, "--camera", help="Camera index (repeatable)."),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, help="Classes reported per input."),
    json_out: bool = typer.Option(False, "--json", help="JSON Lines on stdout, one object per image/frame."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Also write results to this CSV file."),
    save: Path | None = typer.Option(None, "--save", help="Write annotated images/videos here."),
    show: bool = typer.Option(
        False, "--show", help="Show a window with label, score and FPS (needs a display)."
    ),
    provider: str = typer.Option("auto", "--provider", "-p", help="auto, cpu, cuda, tensorrt, openvino, ..."),
    provider_option: list[str] | None = typer.Option(
        None, "--provider-option", help="KEY=VALUE for the provider (repeatable), e.g. device_id=1."
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail instead of warning on a silent CPU fallback."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="onnxruntime intra-op threads."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per inference batch."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Image decode threads."),
    stride: int = typer.Option(1, "--stride", min=1, help="Video files: classify every N-th frame."),
    realtime: bool = typer.Option(
        False, "--realtime", help="Play video files at their frame rate, newest frame only (like a camera)."
    ),
    max_frames: int | None = typer.Option(
        None,
        "--max-frames",
        min=1,
        help="Stop each video/camera/stream after N results.",
    ),
    retries: int = typer.Option(5, "--retries", min=0, help="Reconnect attempts for a camera/stream."),
    backoff: float = typer.Option(
        0.5, "--backoff", min=0.0, help="First reconnect delay (s), doubled each time."
    ),
    read_timeout: float = typer.Option(
        10.0, "--read-timeout", min=0.1, help="Seconds without a frame = stalled."
    ),
    labels: str | None = typer.Option(None, "--labels", help=_CONTRACT_HELP + " File or a,b,c."),
    img_size: str | None = typer.Option(None, "--img-size", help=_CONTRACT_HELP + " S or HxW."),
    mean: str | None = typer.Option(None, "--mean", help=_CONTRACT_HELP + " r,g,b in [0,1] units."),
    std: str | None = typer.Option(None, "--std", help=_CONTRACT_HELP),
    resize: str | None = typer.Option(None, "--resize", help=_CONTRACT_HELP + " stretch|shorter_side_crop."),
    crop: float | None = typer.Option(None, "--crop", help=_CONTRACT_HELP + " Crop fraction."),
    interpolation: str | None = typer.Option(None, "--interpolation", help=_CONTRACT_HELP),
    color_order: str | None = typer.Option(None, "--color-order", help=_CONTRACT_HELP + " RGB|BGR."),
    scale: float | None = typer.Option(None, "--scale", help=_CONTRACT_HELP + " Pixel scale, e.g. 0.00392."),
    output_kind: str | None = typer.Option(
        None, "--output-kind", help=_CONTRACT_HELP + " logits|probabilities."
    ),
    jpeg_decode: str | None = typer.Option(
        None,
        "--jpeg-decode",
        help="reduced (default: large JPEGs decode at 1/2-1/8 scale, never below what the resize needs) or "
        "full (every pixel; for a foreign model whose accuracy was measured with full decoding).",
    ),
) -> None:
    """Classify images, folders, videos, cameras and streams with an ONNX model (no PyTorch needed).

    Exit status: 0 all inputs handled, 1 some failed (error rows), 2 could not start,
    130 Ctrl-C, 143 SIGTERM (outputs are flushed either way).

    Examples:
      edgecls run model.int8.onnx --camera 0
      edgecls run model.int8.onnx photos/ clip.mp4 "shots/*.jpg" --json > results.jsonl
      edgecls run model.onnx rtsp://127.0.0.1:8554/cam --provider cuda --strict --save annotated/
      edgecls run foreign.onnx img.jpg --labels labels.txt --img-size 224 --resize shorter_side_crop
    """
    from edgecls.runtime.errors import EdgeclsError

    if not sources and not camera:
        raise EdgeclsError("nothing to classify: give SOURCE arguments and/or --camera N")
    with _Signals() as signals:
        try:
            summary = _run(
                model,
                list(sources or []),
                list(camera or []),
                top_k,
                json_out,
                csv_path,
                save,
                show,
                provider,
                list(provider_option or []),
                strict,
                threads,
                batch_size,
                workers,
                stride,
                realtime,
                max_frames,
                retries,
                backoff,
                read_timeout,
                contract_overrides(
                    labels, img_size, mean, std, resize, crop, interpolation, color_order, scale, output_kind,
                    jpeg_decode,
                ),
            )
        except KeyboardInterrupt:  # before the run loop started (model loading): nothing to flush
            print("interrupted", file=sys.stderr)
            raise typer.Exit(signals.exit_code) from None
    print(summary.line(), file=sys.stderr, flush=True)
    if summary.interrupted:
        raise typer.Exit(signals.exit_code if signals.received else 130)
    if not summary.ok:
        raise typer.Exit(1)


def _run(
    model: Path,
    sources: list[str],
    cameras: list[int],
    top_k: int,
    json_out: bool,
    csv_path: Path | None,
    save: Path | None,
    show: bool,
    provider: str,
    provider_option: list[str],
    strict: bool,
    threads: int | None,
    batch_size: int,
    workers: int | None,
    stride: int,
    realtime: bool,
    max_frames: int | None,
    retries: int,
    backoff: float,
    read_timeout: float,
    overrides: dict[str, Any],
):  # -> RunSummary (imported lazily)
    import warnings

    from edgecls.runtime.classifier import Classifier
    from edgecls.runtime.live import CaptureSettings, quiet_backend_logs
    from edgecls.runtime.output import (
        ConsoleSink,
        CsvSink,
        JsonLinesSink,
        MultiSink,
        SaveSink,
        ShowSink,
        StderrNotices,
    )
    from edgecls.runtime.runner import RunOptions, run_sources
    from edgecls.runtime.session import parse_provider_options
    from edgecls.runtime.sources import expand_sources

    quiet_backend_logs()
    stop = threading.Event()
    specs, problems = expand_sources(sources, cameras)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        # No spinning: decode workers and capture threads need the cores between inferences (measured:
        # spinning workers halve a 1080p folder's decode rate on 2 cores; see benchmarks/runtime_overhead.py).
        clf = Classifier(
            model,
            provider=provider,
            threads=threads,
            strict=strict,
            contract=overrides or None,
            provider_options=parse_provider_options(provider_option),
            spin=False,
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    sinks: list[Any] = []
    if show:
        sinks.append(ShowSink(stop))  # refuses first, before any file is created
    # Files first: a write error (full disk) then stops the run before the record is printed elsewhere.
    if csv_path is not None:
        sinks.append(CsvSink(csv_path))
    if save is not None:
        sinks.append(SaveSink(save))
    sinks += [JsonLinesSink(), StderrNotices()] if json_out else [ConsoleSink(top_k)]
    options = RunOptions(
        top_k=top_k,
        batch_size=batch_size,
        workers=workers,
        max_frames=max_frames,
        keep_images=save is not None or show,
        capture=CaptureSettings(
            stride=stride,
            realtime=realtime,
            retries=retries,
            backoff=backoff,
            read_timeout=read_timeout,
            open_timeout=max(read_timeout, 1.0),
        ),
    )
    return run_sources(clf, specs, problems, MultiSink(sinks), options, stop)


def providers(
    json_out: bool = typer.Option(False, "--json", help="JSON Lines, one object per provider."),
) -> None:
    """Execution providers and devices available here (plugin EPs are registered when installed).

    Example:  edgecls providers --json
    """
    import dataclasses
    import json

    import onnxruntime as ort

    from edgecls.runtime.provider_catalog import describe_providers

    rows = describe_providers()
    if json_out:
        for r in rows:
            print(json.dumps(dataclasses.asdict(r)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"onnxruntime {ort.__version__} execution providers", show_edge=False)
    table.add_column("provider", no_wrap=True)
    for col in ("short name", "available", "devices", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.provider,
            ", ".join(r.short_names),
            "yes" if r.available else "no",
            "; ".join(r.devices),
            r.source,
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run)
    app.command("providers")(providers)
