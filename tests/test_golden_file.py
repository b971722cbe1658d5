"""A golden file is checked before any array is read (docs/SECURITY.md, "Golden files").

Hostile golden files are real .npz archives as numpy or zipfile write them: an inputs array declaring 16,000 rows
(196 MB of zeros, 0.9 MB compressed), an extra member, no labels, 65 images, the wrong input size or dtype, an
object array, sizes the zip and the .npy header disagree on, a zip directory of 2,000 entries. Each is refused
with one line naming the file and what is wrong; the big one in under a second and without the memory it
declares (measured in a real ``edgecls selftest`` process against the same model with its good golden file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures_runtime import REPO, RuntimeModels, _cli_env, run_edgecls
from numpy.lib import format as npy

from edgecls.runtime.device.golden_file import GoldenFileError, read_golden

BIG_ROWS = 16_000


def _good_arrays(runtime_models: RuntimeModels) -> dict[str, np.ndarray]:
    with np.load(runtime_models.cnn.with_name("model.golden.npz")) as z:
        return {k: z[k] for k in z.files}


def _model_copy(runtime_models: RuntimeModels, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(runtime_models.cnn, folder / "m.onnx"))


def _write_big_inputs(path: Path, arrays: dict[str, np.ndarray], rows: int) -> Path:
    """``arrays`` with ``inputs`` replaced by ``rows`` rows of zeros, streamed into the archive (a real .npy member
    of ``rows * 12 KiB``; deflate level 1 keeps writing it to a few seconds)."""
    shape = (rows, *arrays["inputs"].shape[1:])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, value in arrays.items():
            if name != "inputs":
                with zf.open(f"{name}.npy", "w") as f:
                    npy.write_array(f, value)
        with zf.open("inputs.npy", "w", force_zip64=True) as f:
            npy.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
            block, left = bytes(1 << 22), int(np.prod(shape)) * 4
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
    return path


def _refusal(runtime_models: RuntimeModels, path: Path) -> str:
    with pytest.raises(GoldenFileError) as caught:
        read_golden(path, runtime_models.contract)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: not a "), message
    return message


def test_the_exported_golden_file_is_read_and_matches_its_model(runtime_models: RuntimeModels):
    golden = read_golden(runtime_models.cnn.with_name("model.golden.npz"), runtime_models.contract)
    assert golden.labels == runtime_models.contract.labels
    assert golden.images.dtype == np.uint8 and golden.images.shape == (6, 64, 64, 3)
    assert golden.inputs.shape == (6, 3, 32, 32) and golden.logits.shape == (6, 3)
    np.testing.assert_array_equal(golden.logits, _good_arrays(runtime_models)["logits"])


def test_malformed_golden_files_are_refused_with_one_line_naming_the_problem(runtime_models, tmp_path):
    good = _good_arrays(runtime_models)
    cases = {
        "extra": ({**good, "evil": np.zeros(16, np.uint8)}, "unknown member 'evil.npy'"),
        "no_labels": ({k: v for k, v in good.items() if k != "labels"}, "no labels array"),
        "65_images": ({"images": np.zeros((65, 64, 64, 3), np.uint8), "inputs": np.zeros((65, 3, 32, 32), np.float32),
                       "logits": np.zeros((65, 3), np.float32), "labels": good["labels"]},
                      "65 images, expected 1 to 64"),
        "other_size": ({**good, "inputs": np.zeros((6, 3, 48, 48), np.float32)},
                       "inputs: shape [6, 3, 48, 48], expected [6, 3, 32, 32]"),
        "float64": ({**good, "logits": good["logits"].astype(np.float64)}, "logits: dtype float64, expected float32"),
        "more_classes": ({**good, "logits": np.zeros((6, 4), np.float32)}, "logits: shape [6, 4], expected [6, 3]"),
        "object_labels": ({**good, "labels": np.array(["a", 1, None], dtype=object)}, "labels: dtype object"),
    }
    for name, (arrays, expected) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        assert expected in _refusal(runtime_models, path), name


def test_archive_level_lies_are_refused(runtime_models, tmp_path):
    good = _good_arrays(runtime_models)
    short = tmp_path / "short.npz"  # the header declares 6 rows of inputs, the member holds 5
    with zipfile.ZipFile(short, "w") as zf:
        for name, value in good.items():
            with zf.open(f"{name}.npy", "w") as f:
                if name == "inputs":
                    npy.write_array_header_1_0(f, npy.header_data_from_array_1_0(value))
                    f.write(value[:5].tobytes())
                else:
                    npy.write_array(f, value)
    assert "inputs: the archive declares" in _refusal(runtime_models, short)
    commented = tmp_path / "commented.npz"
    np.savez(commented, **good)
    with zipfile.ZipFile(commented, "a") as zf:
        zf.comment = b"hello"
    assert "not a zip archive as numpy.savez writes it" in _refusal(runtime_models, commented)
    many = tmp_path / "many.npz"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(2_000):
            zf.writestr(f"e{i}", b"")
    started = time.perf_counter()
    assert "2,000 members" in _refusal(runtime_models, many)
    assert time.perf_counter() - started < 1.0
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a zip archive" in _refusal(runtime_models, garbage)


def test_a_golden_file_declaring_16000_rows_is_refused_fast_and_small(runtime_models, tmp_path):
    big = _write_big_inputs(tmp_path / "big.npz", _good_arrays(runtime_models), BIG_ROWS)
    assert big.stat().st_size < 4 * 2**20  # a small file on disk that declares 196 MB
    started = time.perf_counter()
    message = _refusal(runtime_models, big)
    assert time.perf_counter() - started < 1.0
    assert f"inputs: declares {BIG_ROWS * 3 * 32 * 32 * 4 + 128:,} bytes, more than" in message  # the zip says so


def test_selftest_fails_a_model_whose_golden_file_has_no_labels_or_an_extra_array(runtime_models, tmp_path):
    good = _good_arrays(runtime_models)
    for name, arrays in {"no_labels": {k: v for k, v in good.items() if k != "labels"},
                         "extra": {**good, "evil": np.zeros(1000, np.float32)}}.items():
        model = Path(shutil.copy(runtime_models.cnn, tmp_path / f"{name}.onnx"))
        np.savez(model.with_name(f"{name}.golden.npz"), **arrays)
    r = run_edgecls("selftest", str(tmp_path), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = {Path(row["model"]).stem: row for row in map(json.loads, r.stdout.splitlines())}
    assert not rows["no_labels"]["passed"] and "no labels array" in rows["no_labels"]["problems"][0]
    assert not rows["extra"]["passed"] and "unknown member 'evil.npy'" in rows["extra"]["problems"][0]


def _selftest_peak(model: Path) -> tuple[dict, int]:
    """``edgecls selftest MODEL --json`` in a real process: its row and its peak RSS (kB, from getrusage)."""
    code = ("import atexit, resource, sys\n"
            "out = sys.argv[1]\n"
            "atexit.register(lambda: open(out, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
            "sys.argv = ['edgecls', *sys.argv[2:]]\n"
            "from edgecls.cli import main\n"
            "main()\n")
    peak = model.with_suffix(".rss")
    r = subprocess.run([sys.executable, "-c", code, str(peak), "selftest", str(model), "--json"],
                       capture_output=True, text=True, timeout=120, cwd=REPO, env=_cli_env())
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout.splitlines()[0]), int(peak.read_text())


@pytest.mark.slow  # 12 s on the loaded 2-core box: two selftest processes and a 196 MB member to deflate
def test_selftest_refuses_the_16000_row_golden_file_without_its_memory(runtime_models, tmp_path):
    good_model = _model_copy(runtime_models, tmp_path / "good")
    shutil.copy(runtime_models.cnn.with_name("model.golden.npz"), good_model.with_name("m.golden.npz"))
    hostile_model = _model_copy(runtime_models, tmp_path / "hostile")
    _write_big_inputs(hostile_model.with_name("m.golden.npz"), _good_arrays(runtime_models), BIG_ROWS)
    good_row, good_peak = _selftest_peak(good_model)
    hostile_row, hostile_peak = _selftest_peak(hostile_model)
    assert good_row["passed"] and not hostile_row["passed"]
    assert any("not a valid golden file: inputs: declares" in p for p in hostile_row["problems"])
    assert hostile_peak - good_peak < 100 * 1024, (good_peak, hostile_peak)  # kB: the 196 MB were never allocated


def test_export_fits_the_golden_file_of_a_large_model_in_what_the_reader_accepts(tmp_path):
    import torch

    from edgecls.export.golden import make_golden, write_golden
    from edgecls.runtime.contract.model_contract import ModelContract

    contract = ModelContract(labels=("a", "b"), input_size=(1200, 1200))  # 8 inputs would be 132 MB
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2)).eval()
    images = [np.full((80, 80, 3), 30 * i, np.uint8) for i in range(8)]
    golden = read_golden(write_golden(tmp_path / "m.golden.npz", make_golden(images, contract, model)), contract)
    assert 1 <= len(golden.inputs) < 8 and golden.inputs.shape[1:] == (3, 1200, 1200)
