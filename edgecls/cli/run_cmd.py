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
    CAMERA_HELP,
    BatchSizeOpt,
    DecodeThreadsOpt,
    MaxFileMbOpt,
    MaxPixelsOpt,
    PrecisionOpt,
    ProviderOpt,
    StrictOpt,
    ThreadsOpt,
    TopKOpt,
    VerboseOpt,
    contract_flags,
    in_panel,
)
from edgecls.cli.watch_options import MoveDoneOpt, SettleOpt, WatchOpt, watch_settings
from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.sources.watch_options import DEFAULT_SETTLE_S

_LIVE = "Videos, cameras and streams"
_OUTPUT = "Output"
_ENGINE = "Engine"
_IMAGES = "Image files"
_Provider = in_panel(ProviderOpt, _ENGINE)
_Strict = in_panel(StrictOpt, _ENGINE)
_Precision = in_panel(PrecisionOpt, _ENGINE)
_Threads = in_panel(ThreadsOpt, _ENGINE)
_BatchSize = in_panel(BatchSizeOpt, _IMAGES)
_DecodeThreads = in_panel(DecodeThreadsOpt, _IMAGES)
_MaxFileMb = in_panel(MaxFileMbOpt, _IMAGES)
_MaxPixels = in_panel(MaxPixelsOpt, _IMAGES)


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
    top_k: TopKOpt = 3,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="JSON Lines on stdout, one object per image/frame.", rich_help_panel=_OUTPUT),
    ] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write results to this CSV file.", rich_help_panel=_OUTPUT)
    ] = None,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write annotated images/videos here.", rich_help_panel=_OUTPUT)
    ] = None,
    show: Annotated[
        bool,
        typer.Option("--show", help="A window with label, score and FPS (needs a display).", rich_help_panel=_OUTPUT),
    ] = False,
    provider: _Provider = "auto",
    provider_option: Annotated[
        list[str] | None,
        typer.Option("--provider-option", help="KEY=VALUE for the provider (repeatable), e.g. device_id=1.",
                     rich_help_panel=_ENGINE),
    ] = None,
    strict: _Strict = False,
    precision: _Precision = None,
    threads: _Threads = None,
    batch_size: _BatchSize = 8,
    decode_threads: _DecodeThreads = None,
    max_file_mb: _MaxFileMb = 100,
    max_pixels: _MaxPixels = DEFAULT_MAX_PIXELS,
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", help="A camera (repeatable): " + CAMERA_HELP, rich_help_panel=_LIVE,
                     show_default=False),
    ] = None,
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
      edgecls run model.int8.onnx --camera pi:0       (the Pi's camera: Picamera2)
      edgecls run model.int8.onnx tcp://127.0.0.1:8888      (rpicam-vid --listen)
      edgecls run model.int8.onnx photos/ clip.mp4 "shots/*.jpg" --json > r.jsonl
      edgecls run model.onnx rtsp://127.0.0.1:8554/cam --provider cuda --strict \\
          --save annotated/
      edgecls run foreign.onnx img.jpg --labels labels.txt --input-size 224 \\
          --resize-mode shorter_side_crop
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
        provider_options=tuple(provider_option or ()),
        precision=precision,
        strict=strict,
        threads=threads,
        loop=LoopOptions(top_k=top_k, batch_size=batch_size, decode_threads=decode_threads, capture=capture,
                         max_frames=max_frames, max_file_bytes=max_file_bytes(max_file_mb), max_pixels=max_pixels),
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
