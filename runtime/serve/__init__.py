"""``edgecls serve``: the Classifier as a small HTTP service (Starlette under uvicorn), with a live page.

One job per module: :mod:`settings` (limits and the bind/token rule), :mod:`batcher` (dynamic batching of
concurrent requests into one model call), :mod:`uploads` (request body -> checked, decoded, preprocessed
image), :mod:`live_feed` (a camera/stream classified continuously, newest result kept), :mod:`metrics`
(Prometheus), :mod:`app` (routes), :mod:`server` (uvicorn with a drain on SIGTERM), :mod:`launch` (what the
command does: extras, bind check, Classifier, then the server). Needs the ``serve`` extra;
nothing here imports torch or onnx.
"""
