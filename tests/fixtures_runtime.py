"""Shared fixtures of the runtime tests: small real ONNX models and real image files.

The fixtures may use torch and onnx (tests run with everything installed); the code under test may not.
Models are exported with the TorchScript exporter (``dynamo=False``) and the contract is added as the one
``metadata_props`` entry, which is what the export stage writes.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.runtime.contract.model_contract import METADATA_KEY, ModelContract
from edgecls.runtime.inference.preprocess import preprocess_batch

LABELS = ("circle", "square", "triangle")
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RuntimeModels:
    """Paths of the fixture models (all 3 classes unless said otherwise)."""

    cnn: Path  # 32 px, dynamic batch, contract embedded, golden file beside it
    fixed2: Path  # same network exported with a fixed batch of 2
    foreign: Path  # 32 px, no contract
    nonclassifier: Path  # rank-3 output
    two_inputs: Path  # two inputs
    int_input: Path  # uint8 input
    wrong_size: Path  # graph input 32x32, contract says 48x48
    corrupt: Path  # random bytes
    empty: Path  # 0 bytes
    contract: ModelContract


def add_contract(path: Path, contract: ModelContract | None) -> None:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    if contract is not None:
        entry = m.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, contract.to_json()
    onnx.save(m, str(path))


def set_contract_metadata(src: Path, dst: Path, text: str) -> Path:
    """Copy ``src`` to ``dst`` with the contract entry replaced by ``text`` (raw, possibly invalid JSON)."""
    import onnx

    model = onnx.load(str(src))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, text
    onnx.save(model, str(dst))
    return dst


def export_torch(model, path: Path, size: int, batch: int | None) -> None:
    """Export an eval-mode torch module; ``batch=None`` gives a dynamic batch dimension."""
    import torch

    x = torch.randn(batch or 2, 3, size, size)
    dynamic = None if batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is "legacy"
        torch.onnx.export(
            model, x, str(path), dynamo=False, input_names=["input"], output_names=["logits"],
            dynamic_axes=dynamic, opset_version=17,
        )


def golden_images(n: int, seed: int = 0) -> np.ndarray:
    """``uint8[n, 64, 64, 3]`` BGR: smooth colour gradients with a shape, so logits are not all alike."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 64, 64, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(n):
        c = rng.integers(0, 256, size=(2, 3))
        t = ((xx + yy) / 126.0)[..., None]
        img = (c[0] * (1 - t) + c[1] * t).astype(np.uint8)
        cv2.circle(img, (int(rng.integers(16, 48)), int(rng.integers(16, 48))), int(rng.integers(5, 15)),
                   tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        out[i] = img
    return out


def write_golden(model, model_path: Path, contract: ModelContract, n: int = 6) -> Path:
    """The golden file export writes: images, preprocessed inputs, PyTorch logits, labels."""
    import torch

    images = golden_images(n)
    inputs = preprocess_batch(list(images), contract)
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs)).numpy().astype(np.float32)
    path = model_path.with_name(model_path.stem + ".golden.npz")
    np.savez(path, images=images, inputs=inputs, logits=logits, labels=np.array(contract.labels))
    return path


def make_onnx(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_slow_classifier(path: Path, size: int = 224, width: int = 32, convs: int = 2) -> Path:
    """A deliberately heavy classifier (full-resolution 3x3 convs) for the live-stream tests.

    ``float32[N, 3, size, size]`` -> Conv(3->width) -> ``convs`` x Conv(width->width) at full resolution
    -> GlobalAveragePool -> Flatten -> Gemm -> ``float32[N, 3]``: tens of milliseconds per frame here,
    slower than a 60 fps stream.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes = [], []
    prev, cin = "input", 3
    for i in range(convs + 1):
        w = (rng.standard_normal((width, cin, 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev, cin = f"r{i}", width
    inits.append(numpy_helper.from_array((rng.standard_normal((3, width)) * 0.1).astype(np.float32), "fc"))
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc"], ["logits"], transB=1),
    ]
    make_onnx(
        path, nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    add_contract(path, ModelContract(labels=LABELS, input_size=(size, size), resize_mode="stretch"))
    return path


def _odd_models(d: Path) -> dict[str, Path]:
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    nonclassifier = make_onnx(
        d / "nonclassifier.onnx",
        [helper.make_node("Reshape", ["input", "shape3"], ["out"])],
        [helper.make_tensor_value_info("input", f, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", f, [1, 3, 1024])],
        [numpy_helper.from_array(np.array([1, 3, 1024], dtype=np.int64), "shape3")],
    )
    two_inputs = make_onnx(
        d / "two_inputs.onnx",
        [helper.make_node("Add", ["a", "b"], ["s"]),
         helper.make_node("GlobalAveragePool", ["s"], ["g"]), helper.make_node("Flatten", ["g"], ["out"])],
        [helper.make_tensor_value_info(n, f, [1, 3, 32, 32]) for n in ("a", "b")],
        [helper.make_tensor_value_info("out", f, [1, 3])],
    )
    int_input = make_onnx(
        d / "int_input.onnx",
        [helper.make_node("Cast", ["input"], ["x"], to=f),
         helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["out"])],
        [helper.make_tensor_value_info("input", TensorProto.UINT8, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", f, [1, 3])],
    )
    w = numpy_helper.from_array(np.eye(3, dtype=np.float32), "w")
    wrong_size = make_onnx(
        d / "wrong_size.onnx",
        [helper.make_node("GlobalAveragePool", ["input"], ["g"]), helper.make_node("Flatten", ["g"], ["fl"]),
         helper.make_node("Gemm", ["fl", "w"], ["out"])],
        [helper.make_tensor_value_info("input", f, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("out", f, ["batch", 3])],
        [w],
    )
    add_contract(wrong_size, ModelContract(labels=LABELS, input_size=(48, 48)))
    return {"nonclassifier": nonclassifier, "two_inputs": two_inputs, "int_input": int_input,
            "wrong_size": wrong_size}


@pytest.fixture(scope="session")
def runtime_models(tmp_path_factory: pytest.TempPathFactory) -> RuntimeModels:
    import torch

    from edgecls.models.registry import build_model

    d = tmp_path_factory.mktemp("runtime_models")
    contract = ModelContract(labels=LABELS, input_size=(32, 32), provenance={"arch": "cnn"})
    torch.manual_seed(0)
    model = build_model("cnn", len(LABELS), 32, width=8).eval()
    cnn = d / "model.onnx"
    export_torch(model, cnn, 32, None)
    add_contract(cnn, contract)
    write_golden(model, cnn, contract)
    fixed2 = d / "fixed2.onnx"
    export_torch(model, fixed2, 32, 2)
    add_contract(fixed2, contract)
    foreign = d / "foreign.onnx"
    export_torch(model, foreign, 32, None)
    add_contract(foreign, None)
    corrupt = d / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = d / "empty.onnx"
    empty.write_bytes(b"")
    return RuntimeModels(cnn=cnn, fixed2=fixed2, foreign=foreign, corrupt=corrupt, empty=empty,
                         contract=contract, **_odd_models(d))


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_slow_classifier(tmp_path_factory.mktemp("slow") / "slow224.onnx")


@dataclass(frozen=True)
class RuntimeImages:
    root: Path
    good: tuple[Path, ...]  # odd but valid: must be classified
    bad: tuple[Path, ...]  # broken: must become error rows


@pytest.fixture(scope="session")
def runtime_images(tmp_path_factory: pytest.TempPathFactory) -> RuntimeImages:
    d = tmp_path_factory.mktemp("runtime_images")
    imgs = golden_images(4, seed=3)
    good: list[Path] = []

    def put(name: str, arr: np.ndarray, params: tuple[int, ...] = ()) -> Path:
        p = d / name
        ok, buf = cv2.imencode(p.suffix, arr, list(params))
        assert ok
        p.write_bytes(buf.tobytes())
        return p

    good.append(put("color.png", imgs[0]))
    good.append(put("photo.jpg", cv2.resize(imgs[1], (80, 60))))
    good.append(put("gray.png", cv2.cvtColor(imgs[2], cv2.COLOR_BGR2GRAY)))
    good.append(put("rgba.png", cv2.cvtColor(imgs[3], cv2.COLOR_BGR2BGRA)))
    good.append(put("deep16.png", imgs[0].astype(np.uint16) * 257))
    good.append(put("one_pixel.png", imgs[1][:1, :1]))
    good.append(put("huge.jpg", cv2.resize(imgs[2], (6000, 6000), interpolation=cv2.INTER_NEAREST),
                    (cv2.IMWRITE_JPEG_QUALITY, 50)))
    bad: list[Path] = []
    (d / "empty.jpg").write_bytes(b"")
    bad.append(d / "empty.jpg")
    (d / "notes.png").write_text("this is not an image\n")
    bad.append(d / "notes.png")
    jpg = (d / "photo.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    bad.append(d / "truncated.jpg")
    png = (d / "color.png").read_bytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    bad.append(d / "truncated.png")
    return RuntimeImages(root=d, good=tuple(good), bad=tuple(bad))


def _cli_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run_edgecls(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m edgecls ARGS`` in a subprocess, text output captured."""
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True,
                          timeout=timeout, env=_cli_env(), cwd=REPO)


def start_edgecls(*args: str) -> subprocess.Popen[str]:
    """``python -m edgecls ARGS`` started in the background (stdout/stderr pipes, text)."""
    return subprocess.Popen([sys.executable, "-m", "edgecls", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_cli_env(), cwd=REPO)


def edgecls_in_process(*args: str) -> tuple[int, str]:
    """``edgecls ARGS`` in this process through the console entry point (``edgecls.cli.main``, as the installed
    command): (exit status, stdout + stderr). Milliseconds instead of a second's interpreter start, for
    property-based tests that run the command line many times."""
    import warnings

    from edgecls.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, hook = sys.argv, warnings.showwarning
    sys.argv = ["edgecls", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                status = 0
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv, warnings.showwarning = argv, hook
    return status, out.getvalue() + err.getvalue()
