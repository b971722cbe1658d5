"""``edgecls bench``: latency, throughput, cold start, memory and agreement per model x provider x batch x threads.

One job per module (import the module that does the job; this package re-exports nothing):

- ``benchmark``: what the ``edgecls bench`` command does, as one call (paths in, result and report files out).
- ``sweep``: ``run_benchmark``, the model x provider x batch x threads x spin plan, one row per configuration.
- ``child``: the isolated child process each configuration is measured in (both sides of the boundary).
- ``measure``: measuring one configuration (load, warm up, time, compare, end to end) with the core's timing
  loop (:mod:`edgecls.runtime.inference.latency`); ``end_to_end``: the decode -> preprocess -> infer ->
  postprocess pass.
- ``targets``: model paths -> targets (variant, family, size) and the providers to try; ``images``: the images of
  the end-to-end pass; ``onnxruntime_loader``: the measured engine; ``baselines/``: OpenCV DNN, PyTorch eager.
- ``agreement``: every row against onnxruntime CPU fp32 on the same inputs; ``auto_pick``: ``--provider all``'s mark.
- ``rows``: the data model (targets, rows, results, ratios); ``env``: the machine a result was measured on.
- ``report`` (tables, Markdown), ``result_files`` (JSON, CSV), ``plot`` (PNG).
"""
