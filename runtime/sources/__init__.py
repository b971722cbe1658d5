"""Inputs to classify, and the rows they become: what ``edgecls run``, ``edgecls serve`` and ``edgecls batch`` share.

- ``source_specs``: SOURCE arguments (files, folders, globs, URLs, ``/dev/videoN``, ``--camera N|pi:N``) -> sources.
- ``live_capture``: video files, cameras and streams read in a capture thread, with reconnects and back-off;
  ``cameras`` (V4L2 or a Raspberry Pi camera), ``picamera`` (Picamera2), ``grab_check`` (``selftest --camera``).
- ``image_batches``: image files at throughput (parallel decode, batched inference, order kept).
- ``records``: the result and error rows every output receives, and the run's summary.
- ``source_loop``: the loop that feeds every source through the classifier into the sinks.
- ``sinks``: the sink interface that loop hands rows to (run's outputs and batch's Parquet table implement it).
- ``stop_signals``: SIGINT/SIGTERM end a run or a watch cleanly, with the exit status that names the signal.
- watched folders (``--watch``): ``watch_options``, ``folder_watch`` (which files are ready), ``watch_loop``,
  ``done_record`` (the command's output as the record of done files), ``move_done``.
"""
