"""One labelled-folder layout, read once (runtime/images/files.read_class_tree), by training, int8 calibration and
validation, and the bench; class names become label indices in one place (runtime/contract/class_labels).

The same tree must give all three the same files in the same order with the same classes, and each keeps the
errors and fallbacks it had for folders that are not a clean ImageFolder tree."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import LABELS, run_edgecls

from edgecls.data.folders import load_image_folder
from edgecls.export.quant.grading.image_sets import load_role_images
from edgecls.runtime.bench.images import scan_images
from edgecls.runtime.bench.rows import BenchError
from edgecls.runtime.contract.class_labels import UnknownClassesError, label_indices
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import DataError

# The model's labels in an order other than the folders' (circle < square by name): indices must be mapped.
CONTRACT = ModelContract(labels=("square", "circle", "triangle"), input_size=(16, 16), resize_mode="stretch")


def _put(root: Path, rel: str, k: int) -> None:
    """A lossless 16x16 image whose every pixel is (k, 255 - k, 7 k mod 256): ``_ident`` reads k back."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((16, 16, 3), (k, 255 - k, (7 * k) % 256), np.uint8))


def _ident(image: np.ndarray) -> int:
    return int(image[0, 0, 0])


#: relative path -> (image number, class): the tree every reader must agree on, in the order they must give it.
TREE = {
    "circle/a.png": (1, "circle"),
    "circle/b.bmp": (2, "circle"),
    "square/sub/d.png": (3, "square"),  # a class folder's sub-folders belong to it, walked in path order
    "square/sub/deep/c.png": (4, "square"),
    "square/z.png": (5, "square"),
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for rel, (k, _) in TREE.items():
        _put(root, rel, k)
    _put(root, "square/.hidden.png", 60)  # hidden files and folders are no one's images
    _put(root, "circle/.thumbs/t.png", 61)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / ".git").mkdir()
    return root


def _rel(root: Path, paths) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


def test_training_quantize_and_bench_read_one_tree_as_the_same_images_and_classes(tree: Path):
    files = list(TREE)
    classes = [c for _, c in TREE.values()]

    train = load_image_folder(tree)  # edgecls train DATA
    assert train.classes == ("circle", "square")
    assert _rel(tree, train.paths) == files and [train.classes[t] for t in train.targets] == classes

    evaluated = load_image_folder(tree, classes=CONTRACT.labels)  # edgecls eval MODEL DATA --split all
    assert _rel(tree, evaluated.paths) == files
    assert [CONTRACT.labels[t] for t in evaluated.targets] == classes

    quant = load_role_images(tree, CONTRACT, "validation")  # edgecls quantize --val DATA
    assert [_ident(im) for im in quant.images] == [k for k, _ in TREE.values()] and not quant.skipped
    assert quant.labels is not None and [CONTRACT.labels[i] for i in quant.labels] == classes

    bench = scan_images(tree)  # edgecls bench --data DATA
    assert _rel(tree, [p for p, _ in bench]) == files and [c for _, c in bench] == classes


def test_an_empty_class_folder_and_loose_images(tree: Path):
    (tree / "triangle").mkdir()
    _put(tree, "loose.png", 9)
    with pytest.raises(DataError, match="class folder.s. without images: triangle"):
        load_image_folder(tree)  # training: a class it could never learn
    assert _rel(tree, load_image_folder(tree, classes=CONTRACT.labels).paths) == list(TREE)  # loose ones ignored
    quant = load_role_images(tree, CONTRACT, "calibration")
    assert [_ident(im) for im in quant.images] == [k for k, _ in TREE.values()] and quant.labels is not None
    bench = scan_images(tree)
    assert (_rel(tree, [bench[0][0]]), bench[0][1]) == (["loose.png"], None)  # loose first, unlabelled
    assert _rel(tree, [p for p, _ in bench[1:]]) == list(TREE)


def test_a_class_folder_the_model_does_not_know(tree: Path, runtime_models):
    _put(tree, "fish/f.png", 7)
    _put(tree, "loose.png", 8)
    with pytest.raises(DataError, match=r"data: class folder\(s\) fish are not among the model's labels"):
        load_image_folder(tree, classes=CONTRACT.labels)
    # int8 grading falls back to every image under the folder, unlabelled (agreement with fp32), in walk order
    quant = load_role_images(tree, CONTRACT, "validation")
    assert quant.labels is None
    assert [_ident(im) for im in quant.images] == [1, 2, 7, 8, 3, 4, 5]  # circle/ fish/ loose square/...
    assert [c for _, c in scan_images(tree)] == [None, "circle", "circle", "fish", "square", "square", "square"]
    # eval: a folder split (read without the model's labels) is mapped to them in one place, one line, exit 2
    model = str(runtime_models.cnn)
    proc = run_edgecls("eval", model, str(tree), "--split", "all")
    assert proc.returncode == 2 and "class folder(s) fish are not among the model's labels" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_edgecls("eval", model, str(tree), "--split", "test")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    labels = ", ".join(LABELS)
    assert f"evaluation data: class(es) fish are not among the model's labels ({labels})" in proc.stderr


def test_a_missing_folder_is_one_error_on_each_path(tmp_path: Path):
    gone = tmp_path / "gone"
    with pytest.raises(DataError, match="no such data folder"):
        load_image_folder(gone)
    with pytest.raises(DataError, match="no such folder or built-in set for calibration"):
        load_role_images(gone, CONTRACT, "calibration")
    with pytest.raises(BenchError, match="no such data folder"):
        scan_images(gone)


def test_label_indices_maps_by_name_and_names_each_unknown_class_once():
    assert label_indices(["circle", "square", "circle"], CONTRACT.labels, "x").tolist() == [1, 0, 1]
    with pytest.raises(UnknownClassesError, match=r"^x: class\(es\) fish, bird are not among") as e:
        label_indices(["fish", "circle", "bird", "fish"], CONTRACT.labels, "x")
    assert e.value.unknown == ("fish", "bird") and isinstance(e.value, DataError)
