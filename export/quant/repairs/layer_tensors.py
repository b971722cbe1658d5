"""Where layer-wise reconstruction gets each layer's tensors: the int8 graph's inputs to the layer and the fp32
graph's outputs (its targets), over the same calibration images, each node run once over the images.

:class:`GraphTensors` keeps the tensors that cross from the part of a graph already computed to the rest (the
current activation and a residual block's input, at most a few) and computes the next tensor asked from them:
the nodes between two layers run once, not once per later layer. Computing every layer's tensors from the
images cost 50 int8 and 50 fp32 passes over 256 images on EfficientNet-Lite0; this costs about one of each. The
int8 graph changes after each layer is learned, but only from that layer on, which has not run yet. Where the
tensor asked is a DequantizeLinear of an activation, the quantized integers are kept (4 times smaller) and the
next stretch runs from them through onnxruntime's fused int8 kernels, as the deployed graph does. A graph whose
tensors are not all per-image (a shape computed from the batch) is computed from the images each time instead.

Sessions run with a fixed thread count and no spinning (``threads``), so that they do not compete with torch's
threads in the same process, in batches of :data:`BATCH` images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from edgecls.export.quant.repairs.qdq_sites import with_outputs

BATCH = 16  # images per onnxruntime call


def session(model: bytes | onnx.ModelProto, precise: bool, threads: int) -> object:
    """An onnxruntime CPU session with ``threads`` intra-op threads that do not spin between calls."""
    import onnxruntime as ort

    from edgecls.export.quant.grading.evaluate import int8_session_options

    so = int8_session_options(precise)
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def run_batches(sess: object, feeds: dict[str, np.ndarray], names: Sequence[str], count: int) -> list[np.ndarray]:
    """``names`` over the first ``count`` images, fed ``feeds`` (each per-image along axis 0) in batches, written
    into one array each (no list of parts to concatenate: the largest are a gigabyte). A tensor that is not
    per-image comes back as the first batch's value."""
    out: list[np.ndarray] = []
    for i in range(0, count, BATCH):
        got = sess.run(list(names), {k: v[i : i + BATCH] for k, v in feeds.items()})  # type: ignore[attr-defined]
        if not out:
            per_image = [v.ndim > 0 and len(v) == min(BATCH, count) for v in got]
            out = [np.empty((count, *v.shape[1:]), v.dtype) if p else v for v, p in zip(got, per_image, strict=True)]
        for whole, value in zip(out, got, strict=True):
            if whole is not value and len(whole) == count and whole.ndim == value.ndim:
                whole[i : i + len(value)] = value
    return out


def dequantized(q: np.ndarray, zero: object, scale: object) -> np.ndarray:
    """float32 (q - zero) * scale of 8- or 16-bit integers ``q``, in two vector passes over one float32 array:
    q and zero are exact in float32 and so is their difference, so the values are the same bits as
    ``(q.astype(int32) - zero).astype(float32) * scale``, without the int32 temporary and its two extra passes
    (a 256-image map of Lite0's first layers is 400 MB; this is 4 times faster on it)."""
    if q.dtype.itemsize > 2:  # beyond 2^24 a float32 no longer holds every integer: subtract in int32 first
        return (q.astype(np.int32) - np.int32(zero)).astype(np.float32) * np.float32(scale)
    out = np.subtract(q, np.float32(zero), dtype=np.float32)  # type: ignore[arg-type]
    return np.multiply(out, np.float32(scale), out=out)  # type: ignore[arg-type]


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor shape inference can name (the rest are float: a QDQ graph's activations)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    return {v.name: v.type.tensor_type.elem_type for v in infos if v.type.tensor_type.elem_type}


class GraphTensors:
    """Tensors of the graph ``model`` over ``inputs`` (float32[N, 3, h, w]), asked in graph order.

    ``model`` may be edited in place between calls (a layer's initializers): only nodes not yet computed are
    run, so ``tensor`` must be asked for a tensor that no edited node feeds into from before it (the input of
    the layer about to be learned, in graph order)."""

    def __init__(self, model: onnx.ModelProto, inputs: np.ndarray, precise: bool, threads: int) -> None:
        self.model, self.precise, self.threads = model, precise, threads
        graph = model.graph
        self.inits = {i.name for i in graph.initializer}
        self.input_name = next(i.name for i in graph.input if i.name not in self.inits)
        self.images = inputs
        self.count = len(inputs)
        self.producer = {o: k for k, n in enumerate(graph.node) for o in n.output}
        self.consumers: dict[str, list[int]] = {}
        for k, node in enumerate(graph.node):
            for name in node.input:
                self.consumers.setdefault(name, []).append(k)
        self.types = _elem_types(model)
        self.values = {i.name: i for i in graph.initializer}
        self.incremental = True
        self._reset()

    def _reset(self) -> None:
        self.state: dict[str, np.ndarray] = {self.input_name: self.images}  # per-image tensors already computed
        self.done: set[int] = set()  # nodes whose outputs are in ``state`` or no longer needed

    def held_bytes(self) -> int:
        return sum(v.nbytes for v in self.state.values())

    def _needed(self, name: str) -> tuple[list[int], list[str]]:
        """(nodes to run, in graph order; tensors of ``state`` they start from) to compute ``name``."""
        nodes: set[int] = set()
        starts: set[str] = set()
        stack = [name]
        while stack:
            t = stack.pop()
            if t in self.state:
                starts.add(t)
            elif t in self.producer and self.producer[t] not in nodes:
                k = self.producer[t]
                nodes.add(k)
                stack += [i for i in self.model.graph.node[k].input if i and i not in self.inits]
        return sorted(nodes), sorted(starts)

    def _value_info(self, names: Iterable[str]) -> list[onnx.ValueInfoProto]:
        return [onnx.helper.make_tensor_value_info(n, self.types.get(n, onnx.TensorProto.FLOAT), None) for n in names]

    def tensor(self, name: str) -> np.ndarray:
        """float32[N, ...] (or the tensor's type): ``name`` in the graph as it is now, over every image."""
        dq = self.model.graph.node[self.producer[name]] if name in self.producer else None
        if self.incremental and dq is not None and dq.op_type == "DequantizeLinear" and name not in self.state:
            scale, zero = self._constant(dq.input[1]), self._constant(dq.input[2]) if len(dq.input) > 2 else 0
            if np.ndim(scale) == 0 and np.ndim(zero) == 0:  # an activation: keep its integers, dequantize here
                q = self._computed(dq.input[0])
                if self.incremental:  # (still: the integers were per-image)
                    return dequantized(q, zero, scale)
        return self._computed(name)

    def _constant(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.values[name]) if name in self.values else None

    def _computed(self, name: str) -> np.ndarray:
        if name in self.state:
            return self.state[name]
        if not self.incremental:
            return self._from_images(name)
        nodes, starts = self._needed(name)
        done = self.done | set(nodes)
        produced = [o for k in nodes for o in self.model.graph.node[k].output if o]
        # what later nodes will still read: kept, with the answer
        later = [o for o in produced if o != name and any(c not in done for c in self.consumers.get(o, []))]
        outputs = [name] + later
        graph = self.model.graph
        used = {i for k in nodes for i in graph.node[k].input}
        sub = onnx.helper.make_model(
            onnx.helper.make_graph(
                [graph.node[k] for k in nodes],
                "stretch",
                self._value_info(starts),
                self._value_info(outputs),
                [i for i in graph.initializer if i.name in used],
            ),
            opset_imports=self.model.opset_import,
            ir_version=self.model.ir_version,
        )
        sess = session(sub, self.precise, self.threads)
        values = run_batches(sess, {s: self.state[s] for s in starts}, outputs, self.count)
        if any(v.ndim == 0 or len(v) != self.count for v in values):
            # not every tensor is per-image (e.g. a shape): compute from the images every time
            self.incremental = False
            self._reset()
            return self._from_images(name)
        self.done = done
        self.state.update(zip(outputs, values, strict=True))
        for kept in list(self.state):
            if kept != name and all(c in self.done for c in self.consumers.get(kept, [])):
                del self.state[kept]  # nothing left to compute reads it
        return self.state[name]

    def _from_images(self, name: str) -> np.ndarray:
        sess = session(with_outputs(self.model, [name]), self.precise, self.threads)
        return run_batches(sess, {self.input_name: self.images}, [name], self.count)[0]
