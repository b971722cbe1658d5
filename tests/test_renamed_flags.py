"""Renamed flags: the old spelling is rewritten to the new one with one warning line; removed flags are refused with
one error line; both tables are the changelog's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main
from fixtures_cli import cli_in_process

from edgecls.cli import app
from edgecls.cli.renamed_flags import (
    NEW_MEANINGS,
    REMOVED,
    RENAMES,
    Removal,
    RemovedFlagError,
    Rename,
    rewrite_argv,
)

REPO = Path(__file__).resolve().parents[1]
TABLE = (
    Rename("run", "--workers", "--decode-threads"),
    Rename("pack", "--target", "--platform", when=lambda v: v.startswith("linux-")),
)


def test_old_spellings_become_new_ones_with_one_warning_each() -> None:
    said: list[str] = []
    argv = ["run", "m.onnx", "--workers", "3", "--workers=4", "--top-k", "2", "--", "--workers"]
    assert rewrite_argv(argv, said.append, TABLE) == [
        "run", "m.onnx", "--decode-threads", "3", "--decode-threads=4", "--top-k", "2", "--", "--workers"]
    assert said == ["run --workers is renamed --decode-threads; the old spelling goes in the next release"] * 2


def test_a_rename_applies_to_its_own_command_and_values_only() -> None:
    said: list[str] = []
    assert rewrite_argv(["serve", "m.onnx", "--workers", "3"], said.append, TABLE) == ["serve", "m.onnx",
                                                                                      "--workers", "3"]
    assert rewrite_argv(["pack", "m.onnx", "--target", "arm64"], said.append, TABLE)[2] == "--target"
    assert rewrite_argv(["pack", "m.onnx", "--target", "linux-aarch64"], said.append, TABLE)[2] == "--platform"
    pack = rewrite_argv(["pack", "m.onnx", "--target=linux-aarch64"], said.append, TABLE)
    assert pack[2] == "--platform=linux-aarch64"
    assert len(said) == 2 and rewrite_argv([], said.append, TABLE) == []


def _options(command: str) -> set[str]:
    click_app = typer.main.get_command(app)
    return {o for p in click_app.commands[command].params for o in getattr(p, "opts", [])}


def test_every_rename_names_a_flag_the_command_has_and_an_old_one_it_no_longer_declares() -> None:
    for r in RENAMES:
        have = _options(r.command)
        assert r.new in have, f"{r.command} has no {r.new}"
        if r.when is None:  # a value-dependent rename keeps the old flag for its other values
            assert r.old not in have, f"{r.command} still declares {r.old}: its --help would show both"


def _listed(changelog: str, command: str, old: str, new: str) -> bool:
    """``old`` -> ``new`` in the changelog: its table's cells (``| `edgecls run --workers N` | `edgecls run
    --decode-threads N` |``) or an arrow between the two spellings."""
    cell = rf"`edgecls {command}[^`]*{re.escape(old)}(?=[\s=`])[^`]*`\s*(->|→|\|)\s*`edgecls {command}[^`]*"
    return re.search(cell + rf"{re.escape(new)}(?=[\s=`])", changelog) is not None


def test_the_changelog_lists_every_rename_and_new_meaning() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    for r in RENAMES:
        assert _listed(changelog, r.command, r.old, r.new), f"CHANGELOG.md does not list {r.command} {r.old} -> {r.new}"
    for m in NEW_MEANINGS:
        old, new = f"{m.flag} {m.value}", m.before
        assert _listed(changelog, m.command, old, new), f"CHANGELOG.md does not list {m.command} {old} -> {new}"


GONE = (Removal("quantize", "--distill", "it lost", "use --reconstruct"),)


def test_a_removed_flag_is_refused_with_why_and_what_instead_on_its_own_command_only() -> None:
    for argv in (["quantize", "m.onnx", "--distill", "on"], ["quantize", "m.onnx", "--distill=on"]):
        with pytest.raises(RemovedFlagError, match=r"^quantize --distill was removed in this release: it lost; use "):
            rewrite_argv(argv, print, TABLE, removed=GONE)
    said: list[str] = []
    kept = ["export", "r", "--distill", "on"], ["quantize", "m.onnx", "--", "--distill"]
    assert [rewrite_argv(argv, said.append, TABLE, removed=GONE) for argv in kept] == list(kept) and not said


def test_every_removed_flag_is_gone_from_its_command_and_listed_in_the_changelog() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    for r in REMOVED:
        assert r.flag not in _options(r.command), f"{r.command} still declares {r.flag}"
        assert re.search(rf"`edgecls {r.command}[^`]*{re.escape(r.flag)}[^`]*`", changelog.split("### Removed")[-1]), (
            f"CHANGELOG.md's Removed section does not list {r.command} {r.flag}")


# --- each rename of this release, through the real console entry point: the old spelling still works, says so once


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ") and "next release" in line]


def _refusal(err: str) -> str:
    """typer's usage error box, its lines joined."""
    return " ".join(err.replace("│", " ").split())


def test_run_workers_is_decode_threads(runtime_models, runtime_images, capsys) -> None:
    image = str(runtime_images.good[0])
    code, out, err = cli_in_process(["run", str(runtime_models.cnn), image, "--json", "--workers", "2"], capsys)
    assert code == 0 and len(out.splitlines()) == 1, err
    assert _warnings(err) == ["warning: run --workers is renamed --decode-threads; the old spelling goes in the "
                              "next release"]
    code, _, err = cli_in_process(["run", str(runtime_models.cnn), image, "--workers", "0"], capsys)
    assert code == 2 and "Invalid value for '--decode-threads'" in _refusal(err)  # it reached the new flag


def test_batch_concurrency_is_actors_with_ray_and_decode_threads_without(runtime_models, runtime_images, tmp_path,
                                                                        capsys) -> None:
    args = ["batch", str(runtime_models.cnn), str(runtime_images.good[0]), "--out", str(tmp_path / "t")]
    code, _, err = cli_in_process([*args, "--concurrency", "2"], capsys)
    assert code == 0 and (tmp_path / "t").is_dir(), err
    assert len(_warnings(err)) == 1 and "batch --concurrency is renamed --decode-threads (with --ray it is" in err
    code, _, err = cli_in_process([*args, "--ray", "local", "--concurrency", "0"], capsys)  # refused before Ray
    assert code == 2 and "Invalid value for '--actors'" in _refusal(err)
    assert _warnings(err) == ["warning: batch --concurrency with --ray is renamed --actors; the old spelling goes in "
                              "the next release"]
    code, _, err = cli_in_process([*args, "--concurrency=0"], capsys)
    assert code == 2 and "Invalid value for '--decode-threads'" in _refusal(err)


def test_batch_refuses_a_flag_for_the_other_path(runtime_models, runtime_images, tmp_path, capsys) -> None:
    args = ["batch", str(runtime_models.cnn), str(runtime_images.good[0]), "--out", str(tmp_path / "t")]
    code, _, err = cli_in_process([*args, "--actors", "2"], capsys)
    assert code == 2 and err.startswith("error: --actors sizes Ray's pool") and not (tmp_path / "t").exists()


_FAST_BENCH = ["--runs", "2", "--warmup", "0", "--threads", "1", "--no-baselines", "--no-compare", "--in-process",
               "--json"]


def test_bench_batch_is_batch_size(runtime_models, capsys) -> None:
    code, out, err = cli_in_process(["bench", str(runtime_models.cnn), "--batch", "2", *_FAST_BENCH], capsys)
    assert code == 0, err
    assert [r["batch"] for r in json.loads(out)["rows"]] == [2]
    assert _warnings(err) == ["warning: bench --batch is renamed --batch-size; the old spelling goes in the next "
                              "release"]


def test_bench_provider_auto_measures_what_run_picks_and_says_what_all_does(runtime_models, capsys) -> None:
    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.providers.session import auto_provider

    code, out, err = cli_in_process(["bench", str(runtime_models.cnn), "--provider", "auto", *_FAST_BENCH], capsys)
    assert code == 0, err
    doc = json.loads(out)
    run_uses = Classifier(runtime_models.cnn, provider="auto").providers[0]
    assert [r["provider"] for r in doc["rows"]] == [auto_provider()] == [run_uses]
    assert doc["settings"]["auto_picks"] == [] and doc["settings"]["auto_max_drop_points"] is None
    assert _warnings(err) == ["warning: bench --provider auto now measures the one provider `edgecls run` picks; "
                              "--provider all does what it did before (this line goes in the next release)"]


def test_serve_max_batch_is_max_batch_size(runtime_models, capsys) -> None:
    code, _, err = cli_in_process(["serve", str(runtime_models.cnn), "--max-batch", "0"], capsys)
    assert code == 2 and "Invalid value for '--max-batch-size'" in _refusal(err)
    # A good value parses and the command goes on: to the bind check, which refuses a public address without a token.
    code, _, err = cli_in_process(["serve", str(runtime_models.cnn), "--max-batch", "4", "--host", "0.0.0.0"], capsys)
    assert code == 2 and "error: --host 0.0.0.0 is reachable from other machines" in err
    assert _warnings(err) == ["warning: serve --max-batch is renamed --max-batch-size; the old spelling goes in the "
                              "next release"]


def test_selftest_camera_given_a_file_is_source(tmp_path, capsys) -> None:
    code, _, err = cli_in_process(["selftest", "--camera", str(tmp_path / "missing.mp4")], capsys)
    assert code == 2 and "no such file" in err  # a source's error, not "--camera: expected N or pi:N"
    assert _warnings(err) == ["warning: selftest --camera is renamed --source; the old spelling goes in the next "
                              "release"]
    said: list[str] = []
    assert rewrite_argv(["selftest", "--camera", "pi:0"], said.append) == ["selftest", "--camera", "pi:0"]
    assert rewrite_argv(["selftest", "--camera=/dev/video2"], said.append)[1] == "--camera=/dev/video2"
    assert said == []
