"""Reduced-scale JPEG decoding: large JPEGs decode at 1/2, 1/4 or 1/8 scale, never below what the resize needs.

Checked on real JPEG files made from scikit-image's sample photo: the chosen scale, EXIF orientation, that
the preprocessed tensor stays close to the full-decode one, and that every inference path (Python API,
folder runner, evaluation) decodes the same way, so accuracy measured in training is the device's.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from fixtures_reliability import exif_rotated_jpeg
from fixtures_runtime import RuntimeModels
from hypothesis import given
from hypothesis import strategies as st

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.images.decode import decode_bytes, decode_image, reduced_decode_flag
from edgecls.runtime.images.prescan.jpeg import walk_jpeg
from edgecls.runtime.images.prescan.scan import prescan
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import decode_floor, decode_for_contract, preprocess
from edgecls.runtime.sources.image_batches import classify_files, classify_files_sequential

CONTRACT_224 = ModelContract(labels=("a", "b"), input_size=(224, 224), interpolation="linear")


def photo(width: int, height: int) -> np.ndarray:
    """A real photo (scikit-image's astronaut) resized to ``width x height``, uint8 BGR."""
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_CUBIC)


def jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return enc.tobytes()


def test_decode_floor_is_what_the_resize_needs() -> None:
    assert decode_floor(CONTRACT_224) == (256, 256)  # 224 / 0.875
    stretch = ModelContract(labels=("a", "b"), input_size=(96, 128), resize_mode="stretch")
    assert decode_floor(stretch) == (96, 128)


def test_jpeg_size_reads_the_frame_header() -> None:
    assert prescan(jpeg(photo(640, 480)), "photo.jpg").jpeg.size == (480, 640)
    png = prescan(cv2.imencode(".png", photo(64, 48))[1].tobytes(), "photo.png")
    assert png.jpeg is None and (png.width, png.height) == (64, 48)
    assert walk_jpeg(b"\xff\xd8\xff", "cut.jpg", 100, 10**9).size is None  # header cut short


@pytest.mark.parametrize(
    ("size", "expected"),
    [((640, 480), (480, 640)), ((1920, 1080), (270, 480)), ((4032, 3024), (378, 504)), ((1100, 520), (260, 550))],
)
def test_large_jpegs_decode_at_the_smallest_scale_above_the_floor(size, expected) -> None:
    data = jpeg(photo(*size))
    reduced = decode_bytes(data, "photo.jpg", decode_floor(CONTRACT_224))
    assert reduced.shape == (*expected, 3)
    assert decode_bytes(data, "photo.jpg").shape == (size[1], size[0], 3)  # no floor: full size


@given(
    h=st.integers(1, 20000), w=st.integers(1, 20000), fh=st.integers(1, 2000), fw=st.integers(1, 2000)
)
def test_the_chosen_scale_never_goes_below_the_floor_in_either_orientation(h, w, fh, fw) -> None:
    flag = reduced_decode_flag((h, w), (fh, fw))
    k = {cv2.IMREAD_COLOR: 1, cv2.IMREAD_REDUCED_COLOR_2: 2, cv2.IMREAD_REDUCED_COLOR_4: 4,
         cv2.IMREAD_REDUCED_COLOR_8: 8}[flag]
    rh, rw = -(-h // k), -(-w // k)
    if k > 1:
        assert min(rh, rw) >= min(fh, fw) and max(rh, rw) >= max(fh, fw)
        assert rh >= fh and rw >= fw and rw >= fh and rh >= fw
    if k < 8:  # the next larger reduction would have gone below the floor
        k2 = 2 * k
        r2h, r2w = -(-h // k2), -(-w // k2)
        assert not (r2h >= fh and r2w >= fw and r2w >= fh and r2h >= fw)


def test_exif_rotation_is_applied_at_reduced_scale_too() -> None:
    data = exif_rotated_jpeg(width=480, height=240, orientation=6)
    full = decode_bytes(data, "phone.jpg")
    reduced = decode_bytes(data, "phone.jpg", (100, 50))
    assert full.shape == (480, 240, 3) and reduced.shape == (240, 120, 3)
    small = cv2.resize(full, (120, 240), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.astype(int) - small.astype(int)).mean() < 4


def test_reduced_decode_keeps_the_model_input_close_to_full_decode() -> None:
    """Normalised units (1.0 ~ 57 grey levels): the scaled IDCT averages like an area filter."""
    for size in ((1920, 1080), (4032, 3024)):
        data = jpeg(photo(*size))
        full = preprocess(decode_bytes(data), CONTRACT_224)
        reduced = preprocess(decode_bytes(data, "p.jpg", decode_floor(CONTRACT_224)), CONTRACT_224)
        area = ModelContract(labels=("a", "b"), input_size=(224, 224), interpolation="area")
        reference = preprocess(decode_bytes(data), area)  # the least aliased downscale
        assert np.abs(full - reduced).mean() < 0.1
        assert np.abs(reduced - reference).mean() < np.abs(full - reference).mean() * 1.5


def test_every_inference_path_decodes_the_same_reduced_way(runtime_models: RuntimeModels, tmp_path) -> None:
    clf = Classifier(runtime_models.cnn, provider="cpu")
    paths = []
    for i, size in enumerate(((1920, 1080), (800, 600), (70, 60))):
        p = tmp_path / f"photo{i}.jpg"
        p.write_bytes(jpeg(np.ascontiguousarray(np.roll(photo(*size), 37 * i, axis=1))))
        paths.append(str(p))
    floor = decode_floor(clf.contract)
    expected = [clf.predict(decode_image(p, floor), top_k=3) for p in paths]
    full = [clf.predict(decode_image(p), top_k=3) for p in paths]
    assert [clf.predict(p, top_k=3) for p in paths] == expected
    _assert_same(classify_files(clf, paths, top_k=3, batch_size=2), expected)  # batched: float noise only
    _assert_same(classify_files_sequential(clf, paths, top_k=3), expected)
    assert np.array_equal(decode_for_contract(paths[0], clf.contract), decode_image(paths[0], floor))
    assert decode_image(paths[0], floor).shape[0] < decode_image(paths[0]).shape[0]
    assert full[0] != expected[0]  # so the equalities above can tell the two decodes apart
    assert full[2] == expected[2]  # 70x60 is below 2x the floor (37 px for this 32 px model): full either way


def test_evaluation_decodes_as_the_device_and_augmented_training_in_full(tmp_path) -> None:
    pytest.importorskip("torch")
    from edgecls.data.augment import AugmentConfig
    from edgecls.data.imageset import FileImageSet
    from edgecls.training.torch_data import ContractDataset

    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg(photo(1920, 1080)))
    images = FileImageSet(classes=("a", "b"), paths=[path], targets=[0])
    floor = decode_floor(CONTRACT_224)
    assert images.subset([0]).load(0, floor).shape == (270, 480, 3)
    x, _, _ = ContractDataset(images, CONTRACT_224)[0]
    assert np.array_equal(x.numpy(), preprocess(decode_image(path, floor), CONTRACT_224))
    loaded: list[tuple[int, int] | None] = []

    class Spy(FileImageSet):
        def load(self, index, min_size=None):
            loaded.append(min_size)
            return super().load(index, min_size)

    ContractDataset(Spy(("a", "b"), [path], [0]), CONTRACT_224, AugmentConfig())[0]
    assert loaded == [None]


def _assert_same(results, expected) -> None:
    got = [r.predictions for r in results]
    assert [[p.index for p in g] for g in got] == [[p.index for p in e] for e in expected]
    flat = [p.score for g in got for p in g]
    assert flat == pytest.approx([p.score for e in expected for p in e], abs=1e-6)


def test_a_contract_can_ask_for_full_decoding(runtime_models: RuntimeModels, tmp_path) -> None:
    """For a foreign model whose accuracy was measured on fully decoded images: ``--jpeg-decode full``."""
    from fixtures_runtime import run_edgecls

    from edgecls.runtime.errors import ContractError

    full_contract = CONTRACT_224.replace(jpeg_decode="full")
    assert decode_floor(full_contract) is None
    assert ModelContract.from_json(full_contract.to_json()).jpeg_decode == "full"
    assert ModelContract.from_dict({"labels": ["a", "b"], "input_size": [8, 8]}).jpeg_decode == "reduced"
    with pytest.raises(ContractError, match="jpeg_decode"):
        CONTRACT_224.replace(jpeg_decode="draft")

    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg(photo(1920, 1080)))
    clf = Classifier(runtime_models.cnn, provider="cpu", contract={"jpeg_decode": "full"})
    assert clf.contract.jpeg_decode == "full"
    assert clf.predict(path, top_k=3) == clf.predict(decode_image(path), top_k=3)

    def top_score(*flags: str) -> float:
        done = run_edgecls("run", str(runtime_models.cnn), str(path), "--json", "--top-k", "1", *flags)
        assert done.returncode == 0, done.stderr
        return float(json.loads(done.stdout)["top_k"][0]["score"])

    reduced = Classifier(runtime_models.cnn, provider="cpu")
    assert top_score() == pytest.approx(reduced.predict(path, top_k=1)[0].score, abs=1e-6)
    assert top_score("--jpeg-decode", "full") == pytest.approx(clf.predict(path, top_k=1)[0].score, abs=1e-6)
