"""Read and write the model contract inside an ONNX file (one ``metadata_props`` entry, JSON).

Writing needs ``onnx`` (export side). Reading works two ways: from an ``onnx.ModelProto`` when the graph
is already loaded, or from the file through onnxruntime's ``custom_metadata_map`` so a device with only
onnxruntime installed can read it too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edgecls.runtime.contract.model_contract import METADATA_KEY, ModelContract, contract_from_metadata

if TYPE_CHECKING:
    import onnx

#: producer_name written into every exported graph, so `edgecls info` can tell where a file came from.
PRODUCER_NAME = "edgecls"


def embed_contract(model: onnx.ModelProto, contract: ModelContract) -> onnx.ModelProto:
    """Set (replace) the contract entry in ``model.metadata_props`` in place; returns ``model``.

    Other entries (e.g. the exporter's own) are kept, so a re-quantized file keeps its history.
    """
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    return model


def metadata_map(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def contract_of(model: onnx.ModelProto) -> ModelContract | None:
    """The contract stored in a loaded graph, or None when it has none."""
    return contract_from_metadata(metadata_map(model))


def read_contract_file(path: str | os.PathLike[str]) -> ModelContract | None:
    """The contract stored in an ONNX file, read with onnxruntime only (no ``onnx`` import)."""
    from edgecls.runtime.providers.session import create_session

    sess, _ = create_session(path, provider="cpu", threads=1)
    return contract_from_metadata(dict(sess.get_modelmeta().custom_metadata_map))
