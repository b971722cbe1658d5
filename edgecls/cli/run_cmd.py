"""``edgecls run``: classify files, folders, videos, cameras and streams (numpy, OpenCV, onnxruntime only).

``run`` turns its flags into one :class:`~edgecls.runtime.run.main.RunOptions` and exits with what
:func:`edgecls.runtime.run.main.run` returns: 0 every input handled, 1 some failed (error rows), 130 after
Ctrl-C, 143 after SIGTERM; a run that cannot start is one ``error:`` line and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import (
    BatchSizeOpt,
    MaxFileMbOpt,
    MaxPixelsOpt,
    PrecisionOpt,
    ProviderOpt,
    StrictOpt,
    ThreadsOpt,
    TopKOpt,
    VerboseOpt,
    contract_flags,
)
from edgecls.cli.watch_options import MoveDoneOpt, SettleOpt, WatchOpt, watch_settings
from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.sources.watch_options import DEFAULT_SETTLE_S

_LIVE = "Videos, cameras and streams"


@contract_flags
def run(
    model: Annotated[Path, typer.Argument(help="ONNX model (fp32, fp16 or int8) with or without an edgecls contract.")],
    contract_options: ContractOptions,
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders (recursive), globs, video files, rtsp/http URLs.", show_default=False
        ),
    ] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option(
            "--camera",
            help="Camera (repeatable): N for V4L2 /dev/videoN (on a Raspberry Pi whose /dev/videoN is the CSI "
            "camera's, read through Picamera2), or pi:N for Picamera2 camera N.",
        ),
    ] = None,
    top_k: TopKOpt = 3,
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per image/frame.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write results to this CSV file.")] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Write annotated images/videos here.")] = None,
    show: Annotated[bool, typer.Option("--show", help="A window with label, score and FPS (needs a display).")] = False,
    provider: ProviderOpt = "auto",
    provider_option: Annotated[
        list[str] | None,
        typer.Option("--provider-option", help="KEY=VALUE for the provider (repeatable), e.g. device_id=1."),
    ] = None,
    strict: StrictOpt = False,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    batch_size: BatchSizeOpt = 8,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Image decode threads.")] = None,
    max_file_mb: MaxFileMbOpt = 100,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    stride: Annotated[
        int, typer.Option("--stride", min=1, help="Video files: classify every N-th frame.", rich_help_panel=_LIVE)
    ] = 1,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime", help="Play video files at their frame rate, newest frame only (like a camera).",
            rich_help_panel=_LIVE,
        ),
    ] = False,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames", min=1, help="Stop each video/camera/stream after N results.", rich_help_panel=_LIVE
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Reconnect attempts for a camera/stream.", rich_help_panel=_LIVE)
    ] = 5,
    backoff: Annotated[
        float,
        typer.Option("--backoff", min=0.0, help="First reconnect delay (s), doubled each time.", rich_help_panel=_LIVE),
    ] = 0.5,
    read_timeout: Annotated[
        float,
        typer.Option("--read-timeout", min=0.1, help="Seconds without a frame = stalled.", rich_help_panel=_LIVE),
    ] = 10.0,
    watch: WatchOpt = False,
    settle: SettleOpt = DEFAULT_SETTLE_S,
    move_done: MoveDoneOpt = None,
    verbose: VerboseOpt = False,  # read by edgecls.cli.main when an error carries an engine's full text
) -> None:
    """Classify images, folders, videos, cameras and streams with an ONNX model (no PyTorch needed).

    Exit status: 0 all inputs handled, 1 some failed (error rows), 2 could not start,
    130 Ctrl-C, 143 SIGTERM (outputs are flushed either way).

    Examples:
      edgecls run model.int8.onnx --camera 0
      edgecls run model.int8.onnx --camera pi:0                      (Raspberry Pi camera through Picamera2)
      edgecls run model.int8.onnx tcp://127.0.0.1:8888               (rpicam-vid ... --listen -o tcp://...)
      edgecls run model.int8.onnx photos/ clip.mp4 "shots/*.jpg" --json > results.jsonl
      edgecls run model.onnx rtsp://127.0.0.1:8554/cam --provider cuda --strict --save annotated/
      edgecls run foreign.onnx img.jpg --labels labels.txt --input-size 224 --resize-mode shorter_side_crop
      edgecls run model.int8.onnx drop/ --watch --csv labels.csv --move-done done/
    """
    from edgecls.runtime.images.file_guard import max_file_bytes
    from edgecls.runtime.run.main import RunOptions
    from edgecls.runtime.run.main import run as run_app
    from edgecls.runtime.sources.live_capture import CaptureSettings
    from edgecls.runtime.sources.source_loop import LoopOptions

    capture = CaptureSettings(stride=stride, realtime=realtime, retries=retries, backoff=backoff,
                              read_timeout=read_timeout, open_timeout=max(read_timeout, 1.0))
    options = RunOptions(
        model=model,
        sources=tuple(sources or ()),
        cameras=tuple(camera or ()),
        contract=contract_options,
        provider=provider,
        # --precision rides as the provider option edgecls itself reads (runtime.providers.session.PRECISION_OPTION).
        provider_options=tuple(provider_option or ()) + ((f"precision={precision}",) if precision else ()),
        strict=strict,
        threads=threads,
        loop=LoopOptions(top_k=top_k, batch_size=batch_size, workers=workers, capture=capture, max_frames=max_frames,
                         max_file_bytes=max_file_bytes(max_file_mb), max_pixels=max_pixels),
        json_lines=json_out,
        csv_path=csv_path,
        save_dir=save,
        show=show,
        watch=watch_settings(watch, settle, move_done),
    )
    status = run_app(options)
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run)
