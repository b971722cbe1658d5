"""``edgecls serve``: the Classifier as a small HTTP service (Starlette under uvicorn), with a live page.

One job per module: :mod:`settings` (limits and the bind/token rule), :mod:`batcher` (dynamic batching of
concurrent requests into one model call), :mod:`uploads` (request body -> checked, decoded, preprocessed
image), :mod:`live_feed` (a camera/stream classified continuously, newest result kept), :mod:`metrics`
(Prometheus), :mod:`served_model` (the model served, its golden check, reloads), :mod:`authority` (the host a
request names), :mod:`connections` (per-connection and per-client limits), :mod:`app` and :mod:`model_routes`
(routes), :mod:`server` (uvicorn with a drain on SIGTERM and a reload on SIGHUP), :mod:`launch` (what the
command does: extras, bind check, model, then the server). Needs the ``serve`` extra; nothing here imports
torch or onnx.
"""
