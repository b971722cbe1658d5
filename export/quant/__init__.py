"""int8 quantization of an ONNX classifier within an accuracy budget (``edgecls quantize``, ``export --quantize``).

Where each part lives:
- ``quantize_file``: the library twin of ``edgecls quantize`` (contract, images, search, files written);
- ``pipeline``: ``quantize_model`` -- split the validation images, search, grade on held-out images, publish;
- ``budget_search``: the int8 search -- recipes, bias correction, per-node sensitivity, nodes kept in float;
- ``recipes``: the int8 recipe for the target device (``--target``);
- ``static_quantizer``: onnxruntime's static QDQ quantization, prepared once and repeated per recipe;
- ``bias_correction``, ``sensitivity``: graph-level repairs and measurements the search uses;
- ``image_sets``: calibration and validation images through the runtime's preprocessing;
- ``evaluate``: accuracy, agreement, logit error and latency of an int8 model against fp32;
- ``fused_graph``: what onnxruntime really runs in int8 after its fusions;
- ``frontier``, ``report``: the accuracy/speed frontier and the quantization report (JSON + Markdown);
- ``options``: what the int8 step is asked to do (frozen; shared by ``quantize`` and ``export --quantize``).
"""
