"""``edgecls serve``'s start-up order (runtime/serve/launch.py): what fails, fails before the model loads.

A missing serve extra and a refused bind are one error line (exit 2) that costs nothing: the model named is
never opened (here it does not even exist, so a model error would be a different line). Nothing listens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_runtime import REPO

# Runs the real console entry point with one package of the serve extra made unimportable.
_WITHOUT = (
    "import sys\n"
    "class Missing:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == {package!r}:\n"
    "            raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)\n"
    "sys.meta_path.insert(0, Missing())\n"
    "sys.argv = ['edgecls', *{argv!r}]\n"
    "from edgecls.cli import main\n"
    "main()\n"
)


def _edgecls_without(package: str, *argv: str) -> subprocess.CompletedProcess[str]:
    code = _WITHOUT.format(package=package, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_a_missing_serve_extra_is_one_line_before_the_model_is_read(tmp_path: Path) -> None:
    absent = tmp_path / "absent.onnx"
    for package in ("uvicorn", "multipart"):
        r = _edgecls_without(package, "serve", str(absent))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: edgecls serve needs the serve extra"), r.stderr
        assert f"({package} is missing)" in lines[0] and "edgecls[serve]" in lines[0]


def test_a_refused_bind_comes_before_the_model_is_read(tmp_path: Path) -> None:
    # The serve extra is there (nothing blocked): the bind rule refuses first, so the absent model is never opened.
    r = _edgecls_without("no_such_package", "serve", str(tmp_path / "absent.onnx"), "--host", "0.0.0.0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--token" in r.stderr and "absent.onnx" not in r.stderr, r.stderr


def test_serve_camera_takes_what_run_camera_takes() -> None:
    """--camera is one concept in every command: N, /dev/videoN or pi:N (serve took only N)."""
    from edgecls.runtime.errors import EdgeclsError
    from edgecls.runtime.serve.launch import live_source

    assert [live_source(c, None).target for c in ("0", "/dev/video2", "pi:1")] == ["0", "2", "pi:1"]  # type: ignore[union-attr]
    with pytest.raises(EdgeclsError, match="expected N"):
        live_source("usb0", None)
