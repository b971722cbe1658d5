"""Starting ``edgecls serve``: extras checked, bind refused early, the live source and the Classifier made.

The order matters and is the command's promise: a missing extra or a refused bind (non-loopback without a
token) fails before the model loads, so it costs nothing; OpenCV's pixel ceiling is set in the environment
before anything imports cv2 (it reads it once, when it loads). Only the standard library is imported at module
level: the serve extra may be missing, and saying so is this module's first job.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.errors import EdgeclsError, MissingExtraError
from edgecls.runtime.providers.precision import Precision
from edgecls.runtime.serve.settings import ServeSettings, check_bind

if TYPE_CHECKING:
    from edgecls.runtime.sources.source_specs import SourceSpec


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``edgecls serve`` is given: the model and how to run it, a live source, the server's limits."""

    model: Path
    settings: ServeSettings = field(default_factory=ServeSettings)
    contract: ContractOptions = field(default_factory=ContractOptions)  # flags over (or instead of) the embedded one
    camera: str | None = None  # classify this camera (N, /dev/videoN, pi:N) continuously...
    source: str | None = None  # ...or this stream URL / video file (not both)
    provider: str = "auto"
    precision: Precision | None = None  # what OpenVINO computes in (None: f32)
    threads: int | None = None


def check_serve_extra() -> None:
    """Raise MissingExtraError naming the first package of the ``serve`` extra that is not installed."""
    try:
        import multipart  # noqa: F401  (python-multipart)
        import PIL  # noqa: F401
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(f"edgecls serve needs the serve extra ({e.name} is missing)", "serve") from e


def live_source(camera: str | int | None, source: str | None) -> SourceSpec | None:
    """The one camera, video file or stream ``--camera`` / ``--source`` name (None: uploads only)."""
    from edgecls.runtime.sources.source_specs import expand_one, parse_camera

    if camera is not None and source is not None:
        raise EdgeclsError("give either --camera N or --source URL|FILE, not both")
    if camera is not None:
        return parse_camera(camera)
    if source is None:
        return None
    specs, problems = expand_one(source)
    if problems:
        raise EdgeclsError(problems[0].error)
    if len(specs) != 1 or specs[0].kind == "image":
        raise EdgeclsError(f"--source {source}: needs one video file, camera or stream URL (post images to "
                           "/v1/classify instead)")
    return specs[0]


def _warn_stderr(message: str) -> None:
    from edgecls.runtime.terminal.text import plain

    print(plain(f"warning: {message}"), file=sys.stderr)


def serve_model(options: ServeOptions, warn: Callable[[str], None] = _warn_stderr) -> None:
    """What ``edgecls serve`` does: check, load and golden-check, then serve until SIGTERM/Ctrl-C (in flight
    requests drained), reloading the model on SIGHUP or ``POST /v1/reload``.

    ``warn`` gets each RuntimeWarning the Classifier raised while loading (a provider fallback, every time; an
    int8 file's notices, once per file and user: runtime.terminal.notice_memory), as one line. A model that fails its
    golden check is not served (:class:`~edgecls.runtime.serve.served_model.GoldenCheckFailed`, exit 1).
    """
    check_serve_extra()
    # OpenCV reads its pixel ceiling when it loads: formats Pillow cannot size get the same limit from it.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(options.settings.max_pixels))

    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.serve.served_model import ModelSlot, golden_check
    from edgecls.runtime.serve.server import serve_forever
    from edgecls.runtime.sources.live_capture import quiet_backend_logs

    check_bind(options.settings)  # before the model loads: a refused bind costs nothing
    live = live_source(options.camera, options.source)
    quiet_backend_logs()

    def load() -> Classifier:
        # No spinning: decode threads and the capture thread need the cores between model calls.
        return Classifier(options.model, provider=options.provider, threads=options.threads,
                          precision=options.precision, contract=options.contract.given() or None, spin=False)

    models = ModelSlot(options.model, load, lambda path: golden_check(path, options.provider, options.threads),
                       options.settings.max_batch, warn=warn)
    hangups: list[int] = []  # SIGHUP while the model loads (it would end the process): reload once serving
    signal.signal(signal.SIGHUP, lambda sig, frame: hangups.append(sig))
    models.start()
    serve_forever(models, options.settings, live, early_hangups=hangups)
