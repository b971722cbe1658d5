"""``edgecls run``: classify images, folders, videos, cameras and streams, and hand each result to its outputs.

The library behind the thin ``edgecls run`` command (``edgecls serve`` and ``edgecls batch`` reuse its pieces):

- ``source_specs``: SOURCE arguments (files, folders, globs, URLs, ``/dev/videoN``, ``--camera N``) -> sources.
- ``live_capture``: video files, cameras and streams read in a capture thread, with reconnects and back-off.
- ``image_batches``: image files at throughput (parallel decode, batched inference, order kept).
- ``records``: the result and error rows every output receives, and the run's summary.
- ``source_loop``: the loop that feeds every source through the classifier into the outputs.
- ``sinks``, ``console_sinks``, ``csv_sink``, ``image_sinks``: where results go.
- ``stop_signals``: SIGINT/SIGTERM end a run cleanly, with the exit status that names the signal.
- ``main``: :class:`~edgecls.runtime.run.main.RunOptions` in, exit status out (what the command calls).
"""
