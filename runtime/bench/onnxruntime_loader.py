"""The loader of the thing the bench measures: an ONNX file on an onnxruntime session (or OpenVINO's runtime).

Baselines have their own loaders in :mod:`edgecls.runtime.bench.baselines`; every loader has the signature
``loader(model, provider, threads, **options) -> LoadedRunner`` and runs in the measuring process.
"""

from __future__ import annotations

import warnings
from typing import Any

from edgecls.runtime.bench.rows import LoadedRunner
from edgecls.runtime.bench.targets import file_size
from edgecls.runtime.inference.batched_inference import session_infer, session_input_dtype


def load_onnxruntime(model: str, provider: str = "cpu", threads: int | None = None, **options: Any) -> LoadedRunner:
    """A session through :func:`create_session` (the one place sessions are made, and the one place a provider
    fallback is detected), configured as ``edgecls run`` configures it unless the task says otherwise: no thread
    spinning (``spin``), ``strict`` when asked.

    ``openvino`` may come back as OpenVINO's own runtime (same session calls); ``providers_used`` says so.
    """
    from edgecls.runtime.contract.model_contract import contract_from_metadata
    from edgecls.runtime.providers.session import create_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback warning is reported in the row instead
        sess, info = create_session(
            model, provider=provider, threads=threads, provider_options=options.get("provider_options"),
            strict=bool(options.get("strict", False)), spin=bool(options.get("spin", False)),
            precision=options.get("precision"),
        )
    return LoadedRunner(
        infer=session_infer(sess),
        input_shape=tuple(sess.get_inputs()[0].shape),
        input_dtype=session_input_dtype(sess),
        providers_used=info.used,
        fallback=info.fallback,
        node_placement=info.node_placement,
        warnings=list(info.warnings),
        contract=contract_from_metadata(sess.get_modelmeta().custom_metadata_map),
        size_bytes=file_size(model),
        precision=info.precision,
    )
