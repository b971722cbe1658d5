"""SOURCE argument expansion: files, folders, globs, videos, URLs, cameras, problems."""

from __future__ import annotations

from pathlib import Path

from edgecls.runtime.sources.source_specs import camera_source, expand_one, expand_sources


def _tree(root: Path) -> Path:
    for rel in (
        "a.jpg",
        "b.PNG",
        "sub/c.png",
        "sub/deeper/d.webp",
        ".hidden/e.png",
        "sub/.f.png",
        "notes.txt",
        "clip.mp4",
        "sub/movie.AVI",
    ):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (root / "empty").mkdir()
    return root


def test_folder_is_walked_recursively_for_images_only(tmp_path):
    root = _tree(tmp_path)
    specs, problems = expand_one(str(root))
    assert problems == []
    assert [Path(s.target).relative_to(root).as_posix() for s in specs] == [
        "a.jpg",
        "b.PNG",
        "sub/c.png",
        "sub/deeper/d.webp",
    ]
    assert {s.kind for s in specs} == {"image"}


def test_files_videos_urls_and_cameras(tmp_path):
    root = _tree(tmp_path)
    args = [
        str(root / "a.jpg"),
        str(root / "clip.mp4"),
        str(root / "sub/movie.AVI"),
        str(root / "notes.txt"),
        "rtsp://127.0.0.1:8554/cam",
        "http://127.0.0.1:8080/x.mjpg",
    ]
    specs, problems = expand_sources(args, cameras=[0, 2])
    assert problems == []
    assert [s.kind for s in specs] == [
        "image",
        "video",
        "video",
        "image",
        "stream",
        "stream",
        "camera",
        "camera",
    ]
    assert specs[-1] == camera_source(2) and specs[-1].name == "camera:2" and specs[-1].camera_index == 2
    assert [s.live for s in specs] == [False] * 4 + [True] * 4


def test_globs_expand_here_and_recursively(tmp_path):
    root = _tree(tmp_path)
    specs, problems = expand_one(str(root / "**" / "*.png"))
    assert problems == []
    assert sorted(Path(s.target).name for s in specs) == ["c.png"]  # hidden ones skipped by glob too
    specs, _ = expand_one(str(root / "*.jpg"))
    assert [Path(s.target).name for s in specs] == ["a.jpg"]


def test_problems_do_not_stop_expansion(tmp_path):
    root = _tree(tmp_path)
    specs, problems = expand_sources(
        [
            str(root / "missing.jpg"),
            str(root / "empty"),
            str(root / "*.nothing"),
            "ftp://host/x",
            str(root / "a.jpg"),
        ]
    )
    assert [s.target for s in specs] == [str(root / "a.jpg")]
    msgs = [p.error for p in problems]
    assert "no such file" in msgs[0] and "missing.jpg" in msgs[0]
    assert "no images" in msgs[1]
    assert "no files match" in msgs[2]
    assert "unsupported URL scheme" in msgs[3]


def test_duplicates_removed_in_order(tmp_path):
    root = _tree(tmp_path)
    specs, _ = expand_sources([str(root / "a.jpg"), str(root), str(root / "a.jpg")], cameras=[1, 1])
    targets = [s.target for s in specs]
    assert targets.count(str(root / "a.jpg")) == 1 and targets[0] == str(root / "a.jpg")
    assert [s.name for s in specs].count("camera:1") == 1


def test_dev_video_and_file_urls(tmp_path):
    specs, problems = expand_one("/dev/video97")
    assert specs == [] and "no such camera device" in problems[0].error
    img = tmp_path / "x.png"
    img.write_bytes(b"x")
    specs, problems = expand_one(f"file://{img}")
    assert problems == [] and specs[0].kind == "image"
