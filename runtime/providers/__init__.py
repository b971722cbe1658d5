"""Execution providers and the sessions built on them: everything that chooses, opens or describes an engine.

- ``session``: :func:`~edgecls.runtime.providers.session.create_session`, the one place an onnxruntime
  ``InferenceSession`` (or the OpenVINO path) is opened, with honest reporting of the providers really used.
- ``names``: provider short names, aliases, the ``auto`` preference and ``--provider-option`` parsing (pure data).
- ``plugins``: onnxruntime plugin execution providers shipped as pip packages, registered on demand.
- ``openvino``: the OpenVINO runtime itself behind the same session calls (imported only when asked).
- ``catalog``: what ``edgecls providers`` and ``edgecls info`` show (describes, never builds a session).
- ``engine_errors``: an engine's multi-line exception as the one line a user reads.
"""
