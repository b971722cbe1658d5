"""``edgecls run`` as one library call: :class:`RunOptions` in, exit status out.

:func:`run` loads the classifier, expands the SOURCE arguments, builds the outputs the options ask for,
feeds everything through :func:`~edgecls.runtime.sources.source_loop.run_sources` with SIGINT/SIGTERM turned
into a clean stop, prints the summary line on stderr and returns the exit status:
0 every input handled; 1 some input failed (each failure is an error row); 130 after Ctrl-C (SIGINT) and
143 after SIGTERM, both after stopping the sources and flushing every output. A run that cannot start
(model, contract, output folder) raises :class:`~edgecls.runtime.errors.EdgeclsError` (the CLI's exit 2).
With ``watch`` set, the folders are watched instead (:mod:`edgecls.runtime.sources.watch_loop`) until a signal
ends the run; the CSV is appended as files come and is the record a restart resumes from.
"""

from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.providers.names import parse_provider_options
from edgecls.runtime.providers.precision import Precision
from edgecls.runtime.run.console_sinks import ConsoleSink, JsonLinesSink, StderrNotices
from edgecls.runtime.run.csv_sink import CsvSink
from edgecls.runtime.run.csv_watch_sink import WatchCsvSink
from edgecls.runtime.run.image_sinks import SaveSink, ShowSink
from edgecls.runtime.sources.live_capture import quiet_backend_logs
from edgecls.runtime.sources.sinks import MultiSink, Sink
from edgecls.runtime.sources.source_loop import LoopOptions, run_sources
from edgecls.runtime.sources.source_specs import expand_sources
from edgecls.runtime.sources.stop_signals import StopSignals
from edgecls.runtime.sources.watch_loop import watch_folders, watch_roots
from edgecls.runtime.sources.watch_options import WatchOptions
from edgecls.runtime.terminal.notice_memory import lines_to_print
from edgecls.runtime.terminal.text import plain


@dataclass(frozen=True)
class RunOptions:
    """Everything one ``edgecls run`` needs (the command's flags, typed)."""

    model: Path
    sources: tuple[str, ...] = ()  # files, folders, globs, video files, URLs, /dev/videoN
    cameras: tuple[int | str, ...] = ()  # --camera N | pi:N (source_specs.parse_camera)
    contract: ContractOptions = field(default_factory=ContractOptions)  # overrides / a foreign model's contract
    provider: str = "auto"
    provider_options: tuple[str, ...] = ()  # KEY=VALUE
    precision: Precision | None = None  # what OpenVINO computes in (None: f32); onnxruntime accepts only f32
    strict: bool = False
    threads: int | None = None
    loop: LoopOptions = field(default_factory=LoopOptions)  # top-k, batching, capture (keep_images is derived)
    json_lines: bool = False  # JSON Lines on stdout instead of the console table / live line
    csv_path: Path | None = None
    save_dir: Path | None = None
    show: bool = False
    watch: WatchOptions | None = None  # --watch (--settle, --move-done): classify files as they arrive


def load_classifier(options: RunOptions) -> Classifier:
    """The model with its contract (overridden by the options'); onnxruntime's warnings become stderr lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        # No spinning: decode workers and capture threads need the cores between inferences
        # (benchmarks/runtime_overhead.py measures what spinning costs a folder run).
        clf = Classifier(
            options.model,
            provider=options.provider,
            threads=options.threads,
            strict=options.strict,
            contract=options.contract.given() or None,
            provider_options=parse_provider_options(options.provider_options),
            spin=False,
            precision=options.precision,
        )
    for line in lines_to_print(caught):  # a model file's int8 notices once per file and user
        print(plain(f"warning: {line}"), file=sys.stderr)
    if clf.info.precision is not None:  # an engine with a choice of precision says which one runs
        print(plain(f"engine: {clf.info.engine_line()}"), file=sys.stderr)
    return clf


def build_sinks(options: RunOptions, stop: threading.Event, csv_record: Sink | None = None) -> Sink:
    """The outputs the options ask for, files first: a write error (full disk) then stops the run before
    the record is printed elsewhere. ``--show`` refuses first, before any file is created. ``csv_record``: the
    watch's appending CSV, in place of the CSV published at the end."""
    sinks: list[Sink] = []
    if options.show:
        sinks.append(ShowSink(stop))
    if csv_record is not None:
        sinks.append(csv_record)
    elif options.csv_path is not None:
        sinks.append(CsvSink(options.csv_path))
    if options.save_dir is not None:
        sinks.append(SaveSink(options.save_dir))
    if options.json_lines:
        sinks += [JsonLinesSink(), StderrNotices()]
    else:  # a watch never ends by itself: its rows are printed as they come, not held for a table at the end
        sinks.append(ConsoleSink(options.loop.top_k, stream_rows=options.watch is not None))
    return MultiSink(sinks)


def run(options: RunOptions) -> int:
    """Classify every source of ``options``; returns the exit status (0, 1, 130 or 143, see the module)."""
    if not options.sources and not options.cameras:
        raise EdgeclsError("nothing to classify: give SOURCE arguments and/or --camera N|pi:N")
    quiet_backend_logs()
    stop = threading.Event()
    loop = replace(options.loop, keep_images=options.save_dir is not None or options.show)
    if options.watch is not None:
        return watch(options, options.watch, loop, stop)
    with StopSignals() as signals:
        try:
            specs, problems = expand_sources(options.sources, options.cameras)
            clf = load_classifier(options)
            summary = run_sources(clf, specs, problems, build_sinks(options, stop), loop, stop)
        except KeyboardInterrupt:  # before the loop started (model loading): nothing to flush
            print("interrupted", file=sys.stderr)
            return signals.exit_code
    print(summary.line(), file=sys.stderr, flush=True)
    if summary.interrupted:
        return signals.exit_code
    return 0 if summary.ok else 1


def watch(options: RunOptions, settings: WatchOptions, loop: LoopOptions, stop: threading.Event) -> int:
    """``run DIR... --watch --csv FILE``: classify arriving files until SIGINT/SIGTERM; 130 or 143 after it."""
    if options.cameras:
        raise EdgeclsError("--watch watches folders; --camera cannot be combined with it")
    if options.csv_path is None:
        raise EdgeclsError("--watch needs --csv FILE: the CSV is the record a restarted watch resumes from "
                           "(its files are not classified again)")
    roots = watch_roots(options.sources)
    with StopSignals() as signals:
        try:
            clf = load_classifier(options)
            record = WatchCsvSink(options.csv_path)
            sink = build_sinks(options, stop, record)
            summary = watch_folders(clf, roots, record, sink, loop, settings, stop)
        except KeyboardInterrupt:  # before the loop started: nothing to flush
            print("interrupted", file=sys.stderr)
            return signals.exit_code
    print(summary.line(), file=sys.stderr, flush=True)
    return signals.exit_code
