"""int8 quantization of an ONNX classifier within an accuracy budget (``edgecls quantize``, ``export --quantize``).

One pipeline (``pipeline.quantize_model``) of steps at the same level, each in its room:

    recipes -> repairs -> float-node search -> choice and speed step -> verdict -> publish once

- root: ``quantize_file`` (the model file, its contract and images: what ``edgecls quantize`` calls), ``pipeline``,
  ``options`` (what the step is asked), ``recipes`` (what a candidate is, per target), ``repair_step`` (the repairs
  and their one keep rule), ``reconstruct_cap``, ``report`` and ``report_files`` (built once, written once);
- ``qdq/``: a recipe made into an int8 QDQ file (onnxruntime's static quantizer, activation statistics, ranges);
- ``repairs/``: what changes a file to make it more accurate (bias correction, equalisation, layer-wise
  reconstruction, quantization-aware fine-tuning);
- ``search/``: trials measured and ranked on the search images, the float-node search, the choice, the speed step
  and the timings it rests on;
- ``grading/``: images, the held-out grade and the verdict, and what a written graph really runs.
"""
