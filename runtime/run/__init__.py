"""``edgecls run``: the command's own modules; the inputs it shares with serve and batch are in
:mod:`edgecls.runtime.sources`.

- ``console_sinks``, ``csv_sink``, ``image_sinks``: where results go (console or JSON Lines, CSV, annotated
  files and windows); ``fps_meter``: the smoothed results-per-second the console line and the window show.
- ``main``: :class:`~edgecls.runtime.run.main.RunOptions` in, exit status out (what the command calls).
"""
