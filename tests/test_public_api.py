"""The one documented Python API, ``from edgecls.runtime import Classifier``: lazy, and the docs' example runs.

``edgecls.runtime`` re-exports Classifier, Prediction and ModelContract lazily (runtime/__init__.py) so that
importing the package costs nothing on a device: OpenCV and onnxruntime load when Classifier is first touched.
"""

from __future__ import annotations

import re
import subprocess
import sys

from fixtures_runtime import LABELS, REPO, RuntimeImages, RuntimeModels

_ENGINES = ("onnxruntime", "cv2")

_PROBE = (
    "import sys\n"
    "engines = {engines!r}\n"
    "import edgecls.runtime\n"
    "print(sorted(m for m in engines if m in sys.modules))\n"
    "edgecls.runtime.Classifier  # touching it is what loads the engines\n"
    "print(sorted(m for m in engines if m in sys.modules))\n"
)


def _python(code: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_import_edgecls_runtime_loads_no_engine_until_classifier_is_touched() -> None:
    before, after = _python(_PROBE.format(engines=_ENGINES))
    assert before == "[]"  # import edgecls.runtime: neither OpenCV nor onnxruntime
    assert "cv2" in after  # the re-export is real: Classifier's module (and its decoder) loads on first touch


def _documented_example() -> str:
    """The Python block under docs/contract.md's "Python API" heading, as a reader would copy it."""
    page = (REPO / "docs" / "contract.md").read_text()
    section = page.split("## Python API", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "docs/contract.md's Python API section has no python block"
    return block.group(1)


def test_documented_python_example_runs(runtime_models: RuntimeModels, runtime_images: RuntimeImages) -> None:
    example = _documented_example()
    assert "from edgecls.runtime import Classifier" in example
    # The reader's files are the fixture model (3 labelled classes, contract embedded) and a real JPEG.
    code = example.replace("model.int8.onnx", str(runtime_models.cnn)).replace(
        "photo.jpg", str(runtime_images.root / "photo.jpg")
    )
    out = _python(code)
    assert len(out) == 1 and out[0].startswith("[Prediction("), out
    labels = re.findall(r"label='([^']*)'", out[0])
    assert len(labels) == 3 and set(labels) == set(LABELS)  # top_k=3 of 3 classes: each once
