"""``edgecls batch``: the in-process table and the Ray Data table are the same, row for row.

One local Ray cluster (2 CPUs, loopback, no dashboard) serves the whole module; the images are a few hundred
crops of scikit-image's bundled photos plus broken files, the model the runtime fixtures' 32 px CNN.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_folders import HOSTILE, hostile_folder, watch
from fixtures_folders import colour_model as make_colour_model
from fixtures_runtime import REPO, run_edgecls

from edgecls.runtime.batch.job import BatchJob
from edgecls.runtime.batch.local import classify_in_process

# Loopback only: Ray reads this when imported and then binds 127.0.0.1 instead of the machine's address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'edgecls[ray]')")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
          "motorcycle_left.png", "camera.png")
BAD = ("broken/truncated.jpg", "broken/notes.jpg", "broken/empty.png")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~300 crops (48-160 px, JPEG and PNG, in subfolders) of real photos, 3 broken files, 1 hidden file."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    for name in PHOTOS:
        photo = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        folder = root / Path(name).stem
        folder.mkdir()
        for i in range(37):
            side = int(rng.integers(48, 161))
            y, x = (int(rng.integers(0, photo.shape[k] - side)) for k in (0, 1))
            crop = photo[y : y + side, x : x + side]
            suffix = ".png" if i % 4 == 0 else ".jpg"
            cv2.imwrite(str(folder / f"{i:03d}{suffix}"), crop)
    (root / "broken").mkdir()
    jpeg = (root / "chelsea" / "001.jpg").read_bytes()
    (root / BAD[0]).write_bytes(jpeg[: len(jpeg) // 2])
    (root / BAD[1]).write_text("not an image\n")
    (root / BAD[2]).write_bytes(b"")
    (root / "chelsea" / ".hidden.jpg").write_bytes(jpeg)
    return root


N_IMAGES = len(PHOTOS) * 37 + len(BAD)


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 32 px ONNX classifier whose answer is the photo's dominant colour channel (fixtures_folders)."""
    return make_colour_model(tmp_path_factory.mktemp("colour") / "colour.onnx")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A 2-CPU Ray cluster on loopback for this module; its workers see the crash hook's variable."""
    import ray

    from edgecls.runtime.batch.on_ray import CRASH_ONCE_ENV

    arm = tmp_path_factory.mktemp("crash") / "arm"
    os.environ[CRASH_ONCE_ENV] = str(arm)  # inherited by the workers; the hook fires only while `arm` exists
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    assert context.address_info["address"].startswith("127.0.0.1:")
    yield context, arm
    ray.shutdown()
    os.environ.pop(CRASH_ONCE_ENV, None)


def _sorted_rows(folder: Path) -> list[dict]:
    return sorted(pq.read_table(folder).to_pylist(), key=lambda r: r["source"])


@pytest.fixture(scope="module")
def in_process_rows(colour_model, photo_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("local") / "results"
    summary = classify_in_process(BatchJob(colour_model, (str(photo_folder),), str(out), batch_size=16))
    assert (summary.images, summary.errors) == (N_IMAGES, len(BAD))
    return _sorted_rows(out)


def _assert_same_table(rows: list[dict], reference: list[dict]) -> None:
    assert [r["source"] for r in rows] == [r["source"] for r in reference]
    for got, want in zip(rows, reference, strict=True):
        assert got["error"] == want["error"], got["source"]
        if want["error"] is None:
            assert [p["label"] for p in got["top_k"]] == [p["label"] for p in want["top_k"]], got["source"]
            np.testing.assert_allclose([p["score"] for p in got["top_k"]], [p["score"] for p in want["top_k"]],
                                       atol=1e-5, err_msg=got["source"])
        else:
            assert got["top_k"] is None and got["latency_ms"] is None


def test_in_process_table_has_every_file_once_and_error_rows(in_process_rows: list[dict], photo_folder: Path):
    sources = [r["source"] for r in in_process_rows]
    assert len(sources) == len(set(sources)) == N_IMAGES
    assert all(Path(s).is_absolute() for s in sources)
    assert not any(".hidden" in s for s in sources)
    errors = {Path(r["source"]).relative_to(photo_folder).as_posix(): r["error"] for r in in_process_rows
              if r["error"] is not None}
    assert set(errors) == set(BAD)
    assert "truncated JPEG" in errors["broken/truncated.jpg"]
    assert "empty file" in errors["broken/empty.png"]
    assert "not a decodable image" in errors["broken/notes.jpg"]
    good = [r for r in in_process_rows if r["error"] is None]
    assert all(len(r["top_k"]) == 3 and r["latency_ms"] > 0 for r in good)
    assert len({r["top_k"][0]["label"] for r in good}) > 1  # real photos, not one constant answer


@pytest.mark.slow  # Ray's cluster + worker start: 62 of the module's 79 s at load average 11-13 on 2 cores
def test_ray_table_equals_in_process_table(ray_cluster, colour_model, photo_folder: Path,
                                           in_process_rows: list[dict], tmp_path: Path):
    from edgecls.runtime.batch.on_ray import classify_on_ray

    out = tmp_path / "results"
    missing = str(tmp_path / "no_such_folder")  # an argument that finds nothing: one more error row
    summary = classify_on_ray(BatchJob(colour_model, (str(photo_folder), missing), str(out), batch_size=16,
                                       jsonl=True))
    assert (summary.images, summary.errors) == (N_IMAGES + 1, len(BAD) + 1)
    rows = _sorted_rows(out)
    (problem,) = [r for r in rows if r["source"] == missing]
    assert problem["error"] == f"{missing}: no such file or directory" and problem["top_k"] is None
    _assert_same_table([r for r in rows if r is not problem], in_process_rows)
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(lines) == N_IMAGES + 1
    assert all(set(o) in ({"source", "top_k", "latency_ms"}, {"source", "error"}) for o in lines)


def test_cli_in_process_matches_run_json_and_never_imports_ray(colour_model, photo_folder: Path,
                                                               in_process_rows: list[dict], tmp_path: Path):
    out = tmp_path / "cli"
    code = (
        "import sys\n"
        "from edgecls.cli import app\n"
        f"try:\n    app([{'batch'!r}, {str(colour_model)!r}, {str(photo_folder)!r}, '--out', {str(out)!r},"
        " '--jsonl'])\n"
        "except SystemExit as e:\n    print('exit', e.code)\n"
        "print('ray imported' if 'ray' in sys.modules else 'no ray')\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.stdout.split() == ["exit", "1", "no", "ray"], proc.stdout + proc.stderr  # 1: three error rows
    assert f"{N_IMAGES} image(s), {len(BAD)} error(s)" in proc.stderr
    _assert_same_table(_sorted_rows(out), in_process_rows)
    batch_lines = sorted((json.loads(x) for x in (tmp_path / "cli.jsonl").read_text().splitlines()),
                         key=lambda o: o["source"])
    run = run_edgecls("run", str(colour_model), str(photo_folder), "--json")
    run_lines = sorted((json.loads(x) for x in run.stdout.splitlines()), key=lambda o: o["source"])
    assert [sorted(o) for o in batch_lines] == [sorted(o) for o in run_lines]  # same fields per row
    assert [(o["source"], o.get("error"), [p["label"] for p in o.get("top_k", [])]) for o in batch_lines] == [
        (o["source"], o.get("error"), [p["label"] for p in o.get("top_k", [])]) for o in run_lines
    ]


@pytest.mark.slow  # Ray's cluster + worker start: 62 of the module's 79 s at load average 11-13 on 2 cores
def test_cli_on_the_cluster_survives_a_killed_actor_without_losing_or_repeating_images(
    ray_cluster, colour_model, photo_folder: Path, in_process_rows: list[dict], tmp_path: Path
):
    context, arm = ray_cluster
    arm.write_text("")  # the first actor to delete it exits after classifying its batch, before returning it
    out = tmp_path / "cli_ray"
    proc = run_edgecls("batch", str(colour_model), str(photo_folder), "--out", str(out),
                       "--ray", context.address_info["address"], "--batch-size", "8", timeout=120)
    assert not arm.exists(), "no actor died: the hook did not fire"
    assert proc.returncode == 1, proc.stderr  # 1: error rows; the table is written
    assert f"{N_IMAGES} image(s), {len(BAD)} error(s)" in proc.stderr.splitlines()[-1]
    _assert_same_table(_sorted_rows(out), in_process_rows)  # each image exactly once, same answers


def test_refuses_an_out_that_holds_files(colour_model, photo_folder: Path, tmp_path: Path):
    from edgecls.runtime.errors import EdgeclsError

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "part-00000.parquet").write_bytes(b"old")
    with pytest.raises(EdgeclsError, match="already exists"):
        classify_in_process(BatchJob(colour_model, (str(photo_folder),), str(tmp_path / "used")))
    assert (tmp_path / "used" / "part-00000.parquet").read_bytes() == b"old"


def test_uri_inputs_are_listed_through_pyarrow_like_folders(photo_folder: Path):
    from edgecls.runtime.batch.inputs import list_inputs

    as_folder = list_inputs([str(photo_folder)])
    as_uri = list_inputs([photo_folder.as_uri(), photo_folder.as_uri() + "/no_such_prefix", "rtsp://127.0.0.1/x"])
    assert sorted(as_uri.files) == sorted(as_folder.files) and len(as_folder.files) == N_IMAGES
    assert [p.error.split(": ", 1)[1] for p in as_uri.problems] == [
        "no such file or prefix", "a stream; edgecls batch reads files (use edgecls run)"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real images beside a FIFO, a /dev/zero link, a dangling link and a sparse 150 MB file."""
    return hostile_folder(tmp_path_factory.mktemp("hostile") / "drop")


def _assert_hostile_rows(rows: list[dict]) -> None:
    errors = {Path(r["source"]).name: r["error"] for r in rows if r["error"] is not None}
    assert set(errors) == set(HOSTILE)
    assert all(words in errors[name] for name, words in HOSTILE.items()), errors
    assert sum(r["error"] is None for r in rows) == 2


@pytest.mark.slow  # Ray's cluster + worker start
def test_unreadable_files_are_error_rows_on_both_paths_and_the_tables_agree(
    ray_cluster, colour_model, hostile: Path, tmp_path: Path
):
    """A dangling link (or a pipe, a device, a file over the cap) once failed the whole Ray job with a
    traceback (Ray Data's read_binary_files), where the in-process path wrote an error row."""
    local = watch("batch", str(colour_model), str(hostile), "--out", str(tmp_path / "local"), timeout=120)
    assert local.killed is None and local.returncode == 1 and "Traceback" not in local.stderr, local.stderr
    context, _ = ray_cluster
    on_ray = run_edgecls("batch", str(colour_model), str(hostile), "--out", str(tmp_path / "ray"),
                         "--ray", context.address_info["address"], timeout=120)
    assert on_ray.returncode == 1 and "Traceback" not in on_ray.stderr, on_ray.stderr[-3000:]
    assert f"6 image(s), {len(HOSTILE)} error(s)" in on_ray.stderr.splitlines()[-1]
    local_rows, ray_rows = _sorted_rows(tmp_path / "local"), _sorted_rows(tmp_path / "ray")
    _assert_hostile_rows(local_rows)
    _assert_same_table(ray_rows, local_rows)


def test_the_in_process_table_names_each_unreadable_file(colour_model, hostile: Path, tmp_path: Path):
    # A process of its own, watched: a regression reading /dev/zero must not take the test runner down.
    got = watch("batch", str(colour_model), str(hostile), "--out", str(tmp_path / "t"), timeout=120)
    assert got.killed is None and got.returncode == 1, (got.killed, got.stderr)
    assert got.peak_rss_mb < 500
    assert f"6 image(s), {len(HOSTILE)} error(s)" in got.stderr.splitlines()[-1]
    _assert_hostile_rows(_sorted_rows(tmp_path / "t"))
