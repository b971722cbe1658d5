"""``edgecls serve``: the Classifier as a small HTTP service with a live page (needs the ``serve`` extra).

The flags become one :class:`~edgecls.runtime.serve.launch.ServeOptions`; everything else (extras, bind
check, Classifier, server) is :func:`edgecls.runtime.serve.launch.serve_model`'s.

Exit status: 0 after a clean stop (SIGTERM or Ctrl-C: no new connections, requests in flight finished),
1 when the model fails its golden check (it does not compute what it was exported to compute), 2 when it could not
start (model, flags, a non-loopback bind without --token, a busy port). SIGHUP reloads the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import (
    CameraOpt,
    MaxPixelsOpt,
    PrecisionOpt,
    ProviderOpt,
    ThreadsOpt,
    TopKOpt,
    contract_flags,
    in_panel,
)
from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS

_ACCESS = "Address and access"
_BATCHING = "Batching"
_LIMITS = "Limits per request"
_CONNECTIONS = "Connections"
_TIMEOUTS = "Timeouts"
_LIVE = "Live source (classified continuously, shown on the page and at /v1/stream)"

_MaxPixels = in_panel(MaxPixelsOpt, _LIMITS)
_Camera = in_panel(CameraOpt, _LIVE)
_SCANS_HELP = "JPEGs with more scans are refused (413) before decoding (scan bombs)."
_CONNECTIONS_HELP = "Open connections (lowered to fit the descriptor limit); beyond it the longest-idle one closes."
_HOST_HELP = "Another Host name to answer when bound to loopback (repeatable; others get 421: DNS rebinding)."
_PER_CLIENT_HELP = ("Open connections from one IP address; beyond it that address's most stalled one closes (a proxy's "
                    "clients share its address: raise it to --max-connections behind one).")
_BODY_RATE_HELP = "Bytes/s a request body must average after --body-grace; slower get 408 (slow-body attacks; 0: off)."
_BODY_GRACE_HELP = "Seconds a request body may arrive at any pace before --min-body-rate applies."
_HEADERS_HELP = "Header lines per request; more get 431 (header floods)."


@contract_flags
def serve(
    model: Annotated[Path, typer.Argument(help="ONNX model (fp32, fp16 or int8) with an edgecls contract.")],
    contract_options: ContractOptions,
    provider: ProviderOpt = "auto",
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    top_k: TopKOpt = 3,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; not loopback needs --token.", rich_help_panel=_ACCESS)
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).", rich_help_panel=_ACCESS)
    ] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="EDGECLS_TOKEN", help="Bearer token every /v1 route requires (or EDGECLS_TOKEN).",
            rich_help_panel=_ACCESS,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Allow a non-loopback bind without a token.", rich_help_panel=_ACCESS),
    ] = False,
    allow_host: Annotated[list[str] | None, typer.Option(help=_HOST_HELP, rich_help_panel=_ACCESS)] = None,
    max_batch_size: Annotated[
        int,
        typer.Option(
            "--max-batch-size", min=1, help="Most images per model call (requests arriving together share one).",
            rich_help_panel=_BATCHING,
        ),
    ] = 8,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms", min=0.0, help="How long a batch may wait for requests already arriving.",
            rich_help_panel=_BATCHING,
        ),
    ] = 2.0,
    max_queue: Annotated[
        int,
        typer.Option("--max-queue", min=1, help="Images waiting before requests get 503.", rich_help_panel=_BATCHING),
    ] = 256,
    decode_threads: Annotated[
        int,
        typer.Option(
            "--decode-threads", min=0, help="Image decode threads, working while the model runs (0: in the model's "
            "thread, per batch).", rich_help_panel=_BATCHING,
        ),
    ] = 2,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body.", rich_help_panel=_LIMITS)
    ] = 20.0,
    max_pixels: _MaxPixels = DEFAULT_MAX_PIXELS,
    max_jpeg_scans: Annotated[int, typer.Option(min=1, help=_SCANS_HELP, rich_help_panel=_LIMITS)] = 100,
    max_headers: Annotated[int, typer.Option(min=1, help=_HEADERS_HELP, rich_help_panel=_LIMITS)] = 100,
    # No min= on these two (ServeSettings refuses < 1 in one line): typer's "[x>=1]" beside them would cut the
    # longer flag's name short at 80 columns.
    max_connections: Annotated[int, typer.Option(help=_CONNECTIONS_HELP, rich_help_panel=_CONNECTIONS)] = 256,
    max_connections_per_client: Annotated[
        int, typer.Option(help=_PER_CLIENT_HELP, rich_help_panel=_CONNECTIONS)
    ] = 64,
    min_body_rate: Annotated[float, typer.Option(min=0.0, help=_BODY_RATE_HELP, rich_help_panel=_LIMITS)] = 1024.0,
    body_grace: Annotated[float, typer.Option(min=0.01, help=_BODY_GRACE_HELP, rich_help_panel=_TIMEOUTS)] = 10.0,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", min=0.01, help="Seconds per request.", rich_help_panel=_TIMEOUTS)
    ] = 30.0,
    drain_timeout: Annotated[
        float, typer.Option("--drain-timeout", min=0.0, help="SIGTERM: seconds to finish.", rich_help_panel=_TIMEOUTS)
    ] = 30.0,
    header_timeout: Annotated[
        float,
        typer.Option(min=0.01, help="Seconds a connection has for its headers.", rich_help_panel=_TIMEOUTS),
    ] = 10.0,
    keep_alive: Annotated[
        float, typer.Option(min=0.01, help="Seconds an idle kept-alive connection lives.", rich_help_panel=_TIMEOUTS)
    ] = 5.0,
    camera: _Camera = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Classify this stream URL or video file continuously (files loop).", rich_help_panel=_LIVE
        ),
    ] = None,
) -> None:
    """Serve a model over HTTP: POST images to /v1/classify, open / for the live page.

    --top-k is the default per result (a request's ?top_k= overrides it); the contract flags give a model without
    an edgecls contract its labels, input size and preprocessing, or override the embedded ones.

    Routes: POST /v1/classify (raw image or multipart, ?top_k=), GET /v1/model, /v1/latest, /v1/stream (MJPEG),
    /v1/events (server-sent events), POST /v1/reload, /healthz, /readyz, /metrics (Prometheus), / (the page).

    Model updates: SIGHUP or POST /v1/reload loads the model file again (the same path) beside the one serving,
    golden-checks it and swaps it in; a model that fails keeps the old one answering. /healthz reports the served
    file's sha256 and golden result. Without --token, /v1/reload is answered to clients on this machine only.

    Uploads: JPEG, PNG, GIF, BMP, WebP, TIFF and PNM (PBM/PGM/PPM), whose size is read from the header before
    decoding (larger than --max-pixels: 413); other formats (HDR, PFM, PAM, AVIF, ...) get 415.

    Examples:
      edgecls serve model.int8.onnx
      edgecls serve model.int8.onnx --camera 0
      edgecls serve model.int8.onnx --source rtsp://127.0.0.1:8554/cam \\
          --host 0.0.0.0 --token "$TOKEN"
      curl -H 'Content-Type: image/jpeg' --data-binary @photo.jpg \\
          http://127.0.0.1:8000/v1/classify
    """
    from edgecls.runtime.images.file_guard import max_file_bytes  # MB = 10**6 bytes, as --max-file-mb
    from edgecls.runtime.serve.launch import ServeOptions, serve_model
    from edgecls.runtime.serve.settings import ServeSettings

    settings = ServeSettings(
        host=host, port=port, token=token, insecure=insecure, top_k=top_k, max_batch=max_batch_size,
        max_wait_ms=max_wait_ms, max_queue=max_queue, max_body_bytes=max_file_bytes(max_body_mb),
        max_pixels=max_pixels, request_timeout_s=request_timeout, drain_timeout_s=drain_timeout,
        decode_threads=decode_threads, max_jpeg_scans=max_jpeg_scans, max_connections=max_connections,
        header_timeout_s=header_timeout, keep_alive_s=keep_alive, allowed_hosts=tuple(allow_host or ()),
        max_connections_per_client=max_connections_per_client, min_body_rate=min_body_rate, body_grace_s=body_grace,
        max_headers=max_headers,
    )
    serve_model(
        ServeOptions(model=model, settings=settings, contract=contract_options, camera=camera, source=source,
                     provider=provider, precision=precision, threads=threads)
    )


def register(app: typer.Typer) -> None:
    app.command("serve", no_args_is_help=True)(serve)
