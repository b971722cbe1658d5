"""Where layer-wise reconstruction gets each layer's tensors: the fp32 graph's outputs (its targets) and the int8
graph's inputs to the layer, over the same calibration images, computed as few times as the memory bound allows.

- :class:`FloatTargets`: the fp32 graph is fixed, so the outputs of a run of consecutive layers come from one
  pass over the images (as many layers as fit in its share of the memory bound); a pass per layer computed the
  same tensors 50 times on EfficientNet-Lite0.
- :class:`Int8Tensors`: the int8 graph changes after each layer is learned, but only from that layer on. It
  keeps the tensors that cross from the part of the graph already computed to the rest (a residual block's
  input and the current activation, at most a few), and computes each next layer's input from them: the nodes
  between two layers run once, not once per later layer. A graph whose tensors are not all per-image (a shape
  computed from the batch) is computed from the images each time instead.

Both run onnxruntime with a fixed thread count and no spinning (``threads``), so that they do not compete with
torch's threads in the same process, and in batches of :data:`BATCH` images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx

from edgecls.export.quant.qdq_sites import with_outputs

BATCH = 16  # images per onnxruntime call


def session(model: bytes | onnx.ModelProto, precise: bool, threads: int) -> object:
    """An onnxruntime CPU session with ``threads`` intra-op threads that do not spin between calls."""
    import onnxruntime as ort

    from edgecls.export.quant.evaluate import int8_session_options

    so = int8_session_options(precise)
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def _run_batches(sess: object, feeds: dict[str, np.ndarray], names: Sequence[str], count: int) -> list[np.ndarray]:
    """``names`` over the first ``count`` images, fed ``feeds`` (each per-image along axis 0) in batches."""
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for i in range(0, count, BATCH):
        got = sess.run(list(names), {k: v[i : i + BATCH] for k, v in feeds.items()})  # type: ignore[attr-defined]
        for part, value in zip(parts, got, strict=True):
            part.append(value)
    return [np.concatenate(p) for p in parts]


class FloatTargets:
    """Outputs of the fp32 graph over ``inputs`` (float32[N, 3, h, w]) for tensors asked in a fixed order
    (``order``): each pass computes the next tensors of the order that fit in ``max_bytes`` together (at least
    one), and a tensor is returned as many times as asked until the pass after it."""

    def __init__(
        self,
        fp32: onnx.ModelProto,
        inputs: np.ndarray,
        order: Sequence[str],
        max_bytes: float,
        precise: bool,
        threads: int,
    ) -> None:
        self.fp32, self.inputs, self.order = fp32, inputs, list(order)
        self.max_bytes, self.precise, self.threads = max_bytes, precise, threads
        self.held: dict[str, np.ndarray] = {}
        self.passes = 0
        self._per_image = self._bytes_per_image()

    def _bytes_per_image(self) -> dict[str, int]:
        """Bytes each ordered tensor takes per image (one pass over a single image)."""
        sess = session(with_outputs(self.fp32, self.order), self.precise, self.threads)
        got = sess.run(self.order, {sess.get_inputs()[0].name: self.inputs[:1]})  # type: ignore[attr-defined]
        return {name: int(value.nbytes) for name, value in zip(self.order, got, strict=True)}

    def get(self, name: str) -> np.ndarray:
        if name not in self.held:
            self._pass_from(self.order.index(name))
        return self.held[name]

    def _pass_from(self, start: int) -> None:
        self.held.clear()  # the tensors of the last pass are not asked again (the order is the order of use)
        n, names, total = len(self.inputs), [], 0
        for name in dict.fromkeys(self.order[start:]):
            size = self._per_image[name] * n
            if names and total + size > self.max_bytes:
                break
            names.append(name)
            total += size
        sess = session(with_outputs(self.fp32, names), self.precise, self.threads)
        feeds = {sess.get_inputs()[0].name: self.inputs}  # type: ignore[attr-defined]
        self.held = dict(zip(names, _run_batches(sess, feeds, names, n), strict=True))
        self.passes += 1


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor shape inference can name (the rest are float: a QDQ graph's activations)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    return {v.name: v.type.tensor_type.elem_type for v in infos if v.type.tensor_type.elem_type}


class Int8Tensors:
    """Tensors of the int8 graph ``model`` over ``inputs`` (float32[N, 3, h, w]), asked in graph order.

    ``model`` is edited in place between calls (a layer's initializers), and only nodes not yet computed are run:
    ``tensor`` must be asked for a tensor that no edited node feeds into from before it (the input of the layer
    about to be learned, in graph order)."""

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
        """float32[N, ...]: the tensor ``name`` of the int8 graph as it is now, over every image."""
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
                "layer-inputs",
                self._value_info(starts),
                self._value_info(outputs),
                [i for i in graph.initializer if i.name in used],
            ),
            opset_imports=self.model.opset_import,
            ir_version=self.model.ir_version,
        )
        sess = session(sub, self.precise, self.threads)
        values = _run_batches(sess, {s: self.state[s] for s in starts}, outputs, self.count)
        if any(len(v) != self.count for v in values):
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
        return _run_batches(sess, {self.input_name: self.images}, [name], self.count)[0]
