"""The model ``edgecls serve`` answers with, its golden check, and its replacement without dropping a request.

At start and at every reload the model file is hashed (sha256), loaded, golden-checked and warmed up; only then
does it answer. The golden check is ``edgecls selftest``'s (:func:`edgecls.runtime.device.selftest.check_model`: the
golden file's inputs through the model file here, compared within the variant's tolerance); a model without a
golden file beside it is served with ``golden: "absent"``. At start a failing check refuses to serve (exit 1);
at a reload the new model is loaded *beside* the one serving, and a failure of any step keeps the old one.

The swap is one assignment under the reload lock: a request takes the current :class:`ServedModel` once, when
it starts, and is preprocessed for and run on that model to its end (the batcher never mixes two models in one
call), so a request is never dropped or answered by a mix of both. The old session is freed once its last
request is answered. Reloads run one at a time; they re-read the same path (an update swaps the file or the
link it names), never a path a client chose.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgecls.runtime.device.golden_file import find_golden
from edgecls.runtime.errors import EdgeclsError, ModelLoadError
from edgecls.runtime.inference.classifier import Classifier

Golden = Literal["pass", "fail", "absent"]


class GoldenCheckFailed(EdgeclsError):
    """The model does not compute what its golden file says: serve refuses to start with it (exit 1)."""

    exit_status = 1


@dataclass(frozen=True)
class GoldenVerdict:
    result: Golden
    detail: str = ""  # why it failed (the problems selftest found), empty otherwise


@dataclass(frozen=True)
class ServedModel:
    clf: Classifier
    path: Path
    sha256: str
    golden: GoldenVerdict
    loaded_at: float  # time.time() when it began answering

    def describe(self) -> dict[str, str]:
        """The ``model`` object of /healthz: ``{"file": NAME, "sha256": HEX}``."""
        return {"file": self.path.name, "sha256": self.sha256}

    @property
    def short(self) -> str:
        return f"{self.path.name} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    message: str  # one line: what is served now, and why a refused model was refused
    busy: bool = False  # another reload was running (nothing was tried)
    at: float = 0.0  # time.time() when it ended


def golden_check(path: Path, provider: str = "auto", threads: int | None = None) -> GoldenVerdict:
    """selftest's check of ``path`` against its golden file here (``absent`` when it has none)."""
    from edgecls.runtime.device.selftest import check_model  # selftest imports the latency tools: only when needed

    if find_golden(path) is None:
        return GoldenVerdict("absent")
    try:
        row = check_model(path, provider=provider, threads=threads, runs=1)
    except EdgeclsError as e:
        return GoldenVerdict("fail", str(e))
    return GoldenVerdict("pass") if row.passed else GoldenVerdict("fail", "; ".join(row.problems))


def warm_up(clf: Classifier, max_batch: int) -> None:
    """Model calls before a model answers: the first request does not pay onnxruntime's first-run cost, and the
    largest batch sizes its memory arena once, so RSS does not creep up as batch sizes vary."""
    h, w = clf.contract.input_size
    for n in sorted({1, max_batch}):
        clf.probabilities(np.zeros((n, 3, h, w), dtype=np.float32))


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        s = os.stat(path)  # follows a link: a swapped link names another file
    except OSError:
        return None  # the Classifier says what is wrong with the path, in its own words
    return s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns


class ModelSlot:
    """The served model of one server: :meth:`start` once, then :meth:`reload` any number of times."""

    def __init__(
        self,
        path: Path,
        load: Callable[[], Classifier],  # the Classifier of ``path`` as the command's flags make it
        check: Callable[[Path], GoldenVerdict],
        max_batch: int,
        warn: Callable[[str], Any] = lambda message: None,
    ) -> None:
        self.path = path
        self._load_classifier = load
        self._check = check
        self._max_batch = max_batch
        self._warn = warn
        self._lock = threading.Lock()  # one load at a time; the swap happens while it is held
        self._current: ServedModel | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self.last_reload: ReloadOutcome | None = None

    @property
    def current(self) -> ServedModel:
        """The model new requests use (read without the lock: the swap is a single assignment)."""
        assert self._current is not None, "ModelSlot.start() was not called"
        return self._current

    def _load(self) -> ServedModel:
        """Load, hash and golden-check ``path``; refused if the file changed meanwhile (an update half-done)."""
        before = _identity(self.path)
        with warnings.catch_warnings(record=True) as caught:  # a provider fallback, an int8 file for another CPU
            warnings.simplefilter("always", RuntimeWarning)
            clf = self._load_classifier()
        from edgecls.runtime.terminal.notice_memory import lines_to_print

        for line in lines_to_print(caught):  # an int8 file's notices once per file and user, not every reload
            self._warn(line)
        try:
            sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()  # read whole by its session too
        except OSError as e:
            raise ModelLoadError(f"{self.path}: cannot read the model file ({e.strerror or e})") from e
        verdict = self._check(self.path)
        if before is None or _identity(self.path) != before:
            raise ModelLoadError(f"{self.path}: the file changed while it was loaded (an update in progress?)")
        return ServedModel(clf, self.path, sha256, verdict, time.time())

    def start(self) -> ServedModel:
        """The first model; GoldenCheckFailed when it fails its golden check (serve does not start)."""
        with self._lock:
            served = self._load()
            if served.golden.result == "fail":
                raise GoldenCheckFailed(f"{self.path}: golden check failed ({served.golden.detail}); not serving "
                                        "a model that does not compute what it was exported to compute")
            self._current = served
            return served

    def reload(self, wait: bool = True) -> ReloadOutcome:
        """Load ``path`` again beside the served model and swap it in when it passes; never raises for a bad
        model (the outcome says what happened). ``wait=False``: return at once (busy) if a reload is running."""
        if not self._lock.acquire(blocking=wait):
            return ReloadOutcome(False, "a reload is already running; try again when it ends", busy=True,
                                 at=time.time())
        try:
            old = self.current
            try:
                new = self._load()
                if new.golden.result == "fail":
                    raise EdgeclsError(f"golden check failed ({new.golden.detail})")
                warm_up(new.clf, self._max_batch)
            except EdgeclsError as e:
                self.failed_reloads += 1
                outcome = ReloadOutcome(False, f"reload refused: {e}; still serving {old.short}", at=time.time())
            else:
                self._current = new
                self.reloads += 1
                outcome = ReloadOutcome(True, f"reloaded: now serving {new.short}, golden {new.golden.result} "
                                              f"(was {old.short})", at=time.time())
            self.last_reload = outcome
            return outcome
        finally:
            self._lock.release()

    def health(self) -> dict[str, Any]:
        """What /healthz reports: the cached state, no model call."""
        served = self.current
        last = self.last_reload
        return {
            "model": served.describe(),
            "golden": served.golden.result,
            "reloads": {"done": self.reloads, "refused": self.failed_reloads,
                        "last": None if last is None else {"ok": last.ok, "message": last.message,
                                                           "at": round(last.at, 3)}},
        }
