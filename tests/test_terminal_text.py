"""Outside strings on the terminal: Rich markup and control codes in file names, folder names, labels and a
contract's provenance (docs/SECURITY.md, "What reaches the terminal").

The attacks are real files on disk and real ONNX models whose contract carries the strings, run through the real
command line (a subprocess, and once under a pseudo-terminal); the property-based part feeds arbitrary strings as
file names and labels through ``run``, ``info`` and ``selftest`` (in-process, so each example costs milliseconds):
never a traceback, never a raw control character, and every name shown as written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import REPO, RuntimeModels, _cli_env, edgecls_in_process, run_edgecls, set_contract_metadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecls.runtime.terminal.text import markup, plain, rich_text

# Everything plain() escapes, less the newline an output's own lines end with.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
IMAGE = np.full((24, 24, 3), (40, 120, 200), np.uint8)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich folds a long path over several table lines at 80 columns; a name is easier to find on one line."""
    monkeypatch.setenv("COLUMNS", "1000")


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", IMAGE)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def _model_with(runtime_models: RuntimeModels, folder: Path, name: str, **contract_changes: object) -> Path:
    """A copy of the fixture classifier (and its golden file) whose contract has ``contract_changes``, written as
    raw JSON: a hostile exporter is not held to edgecls's own constructor."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {**runtime_models.contract.to_dict(), **contract_changes}
    model = set_contract_metadata(runtime_models.cnn, folder / f"{name}.onnx", json.dumps(doc))
    shutil.copy(runtime_models.cnn.with_name("model.golden.npz"), folder / f"{name}.golden.npz")
    return model


def _assert_clean(*outputs: str) -> None:
    for text in outputs:
        assert "Traceback" not in text and "MarkupError" not in text, text
        assert not RAW_CONTROL.search(text), repr(text)


# --- the module itself ------------------------------------------------------------------------------------------
def test_plain_makes_control_characters_visible_and_keeps_other_text():
    assert plain("a\x1b[2Jb\nc\rd\te\x7f\x9b\u202e") == "a\\x1b[2Jb\\nc\\rd\\te\\x7f\\x9b\\u202e"
    assert plain("été 🙂 [bold red]x.png") == "été 🙂 [bold red]x.png"  # letters, emoji and brackets stay


def test_rich_text_and_markup_print_markup_as_written():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=200)
    console.print(rich_text("[bold red]b.png"))
    console.print(f"[yellow]{markup('[/] x[')}[/]")
    assert out.getvalue().splitlines() == ["[bold red]b.png", "[/] x["]


# --- the reported attacks, through the real command line -------------------------------------------------------
def test_a_folder_named_x_bracket_holding_bracket_y_png_is_a_row_not_a_markup_error(runtime_models, tmp_path):
    _image(tmp_path / "x[" / "]y.png")
    r = run_edgecls("run", str(runtime_models.cnn), str(tmp_path / "x["))
    assert r.returncode == 0, r.stderr
    _assert_clean(r.stdout, r.stderr)
    assert "x[/]y.png" in r.stdout.replace("\n", "")


def test_markup_in_labels_and_variant_prints_as_written_in_run_info_and_selftest(runtime_models, tmp_path):
    labels = ["[/]", "[bold red]sq", "tri"]
    model = _model_with(runtime_models, tmp_path / "m", "labels", labels=labels,
                        provenance={"variant": "[/]", "arch": "[link=http://evil/]x"})
    images = tmp_path / "images"
    _image(images / "[bold red]b.png")
    run = run_edgecls("run", str(model), str(images), "--top-k", "3")
    assert run.returncode == 0, run.stderr
    _assert_clean(run.stdout, run.stderr)
    assert "[bold red]b.png" in run.stdout and "[/] 0." in run.stdout and "[bold red]sq 0." in run.stdout
    status, info = edgecls_in_process("info", str(model))
    assert status == 0, info
    assert "[/], [bold red]sq, tri" in info and "[link=http://evil/]x" in info
    status, selftest = edgecls_in_process("selftest", str(model))
    assert status == 1  # the golden file's labels are the fixture's: a mismatch row, not a crash
    assert re.search(r"│ \[/\]\s+│", selftest), selftest  # the variant column
    _assert_clean(info, selftest)


def test_control_characters_in_labels_or_provenance_are_refused_with_one_line(runtime_models, tmp_path):
    attacks = {
        "clear": {"labels": ["a\x1b[2J", "b", "c"]},
        "title": {"labels": ["a", "b\x1b]0;owned\x07", "c"]},
        "link": {"labels": ["a", "b", "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\"]},
        "newline": {"labels": ["a", "b\nerror: fake line", "c"]},
        "variant": {"provenance": {"variant": "int8\x1b[2J"}},
    }
    image = str(_image(tmp_path / "one.png"))
    for name, changes in attacks.items():
        model = str(_model_with(runtime_models, tmp_path, name, **changes))
        for status, text in (edgecls_in_process("run", model, image), edgecls_in_process("info", model)):
            assert status == 2, (name, text)
            _assert_clean(text)
            errors = [line for line in text.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and "contains a control character" in errors[0], (name, text)
            assert ("provenance.variant" if name == "variant" else "labels[") in errors[0]
    r = run_edgecls("run", str(tmp_path / "newline.onnx"), image)  # and once through a real process
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "labels[1]: contains a control" in r.stderr
    _assert_clean(r.stdout, r.stderr)


def _squeezed(text: str) -> str:
    """``text`` without whitespace and table rules: a long name folded over two table lines is whole again."""
    return re.sub(r"[\s│]", "", text)


def test_escape_codes_and_newlines_in_file_names_are_shown_escaped(runtime_models, tmp_path):
    names = ["a\x1b[2J.png", "b\x1b]0;owned\x07.png", "c\x1b]8;;evil.example\x1b\\d.png", "e\nerror: fake line.png",
             "f\r.png", "\u202egnp.png"]
    for name in names:
        _image(tmp_path / "in" / name)
    (tmp_path / "in" / "missing\x1b[2J.png").symlink_to(tmp_path / "nowhere")  # an error row naming it
    console = run_edgecls("run", str(runtime_models.cnn), str(tmp_path / "in"), "--top-k", "1")
    as_json = run_edgecls("run", str(runtime_models.cnn), str(tmp_path / "in"), "--json")
    for r in (console, as_json):
        assert r.returncode == 1, r.stderr  # the dangling link is an error row
        _assert_clean(r.stdout, r.stderr)
        assert not any(line.startswith("error: fake line") for line in (r.stdout + r.stderr).splitlines())
        assert "missing\\x1b[2J.png" in r.stderr
    for name in names:
        assert _squeezed(plain(name)) in _squeezed(console.stdout), (name, console.stdout)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]  # --json keeps the real names
    assert {Path(row["source"]).name for row in rows} == {*names, "missing\x1b[2J.png"}


def test_on_a_real_terminal_only_richs_own_colour_codes_are_written(runtime_models, tmp_path):
    for name in ("a\x1b[2J.png", "b\x1b]0;owned\x07.png", "[bold red]c.png"):
        _image(tmp_path / "in" / name)
    controller, device = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgecls", "run", str(runtime_models.cnn), str(tmp_path / "in")],
                            stdin=device, stdout=device, stderr=device, cwd=REPO,
                            env={**_cli_env(), "TERM": "xterm-256color", "COLUMNS": "200"})
    os.close(device)
    out = b""
    with contextlib.suppress(OSError):  # EIO once the child has closed its side
        while chunk := os.read(controller, 65536):
            out += chunk
    os.close(controller)
    assert proc.wait(timeout=60) == 0, out
    text = out.decode()
    assert "Traceback" not in text
    # Rich styles with SGR sequences (ESC [ ... m); nothing else may start with ESC, and no BEL arrives.
    assert not re.search(r"\x1b(?!\[[0-9;]*m)", text) and "\x07" not in text, repr(text)
    assert "a\\x1b[2J.png" in text and "[bold red]c.png" in text


# --- any string as a file name or a label ----------------------------------------------------------------------
FEW = settings(max_examples=10, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Any character a Linux file name may hold ("/" and NUL cannot; surrogates cannot be encoded).
_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=24).filter(lambda s: s not in (".", ".."))


@FEW
@given(names=st.lists(_NAMES, min_size=1, max_size=4, unique=True), folder=_NAMES)
def test_any_file_or_folder_name_reaches_the_terminal_escaped(runtime_models, tmp_path_factory, names, folder):
    root = tmp_path_factory.mktemp("names")
    for name in names:
        _image(root / folder / f"{name}.png")
    status, text = edgecls_in_process("run", str(runtime_models.cnn), str(root))
    assert status == 0, text
    _assert_clean(text)
    for name in names:
        assert _squeezed(plain(f"{name}.png")) in _squeezed(text), (name, text)


_LABEL_CHARS = st.characters(blacklist_categories=("Cs",))


@FEW
@given(labels=st.lists(st.text(_LABEL_CHARS, min_size=1, max_size=12), min_size=3, max_size=3),
       variant=st.text(_LABEL_CHARS, max_size=12))
def test_any_label_or_variant_reaches_the_terminal_escaped_or_is_refused(runtime_models, tmp_path_factory, labels,
                                                                         variant):
    root = tmp_path_factory.mktemp("labels")
    model = _model_with(runtime_models, root, "m", labels=labels, provenance={"variant": variant})
    image = _image(root / "one.png")
    for args in (["run", str(model), str(image)], ["info", str(model)], ["selftest", str(model)]):
        status, text = edgecls_in_process(*args)
        _assert_clean(text)
        assert status in (0, 1, 2), (args, text)
        if status == 2:  # refused (control characters, duplicate or empty labels): one error line
            assert sum(line.startswith("error:") for line in text.splitlines()) == 1, text
