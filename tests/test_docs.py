"""The docs never lie about the tool: links resolve, commands and flags exist, defaults are the CLI's, and every
module, file and package they name is real.

README.md and docs/*.md are read as a newcomer reads them (benchmarks/ READMEs too, except for defaults: they
describe their scripts' flags). Each relative link must name a file of the repository (and, with ``#anchor``, a
heading of that file); each ``edgecls COMMAND --option`` shown in a code block or an inline code span must name a
real command and options that command really takes, never an old spelling kept only for one release
(edgecls/cli/renamed_flags.py); each default stated for a flag must be the default typer declares; each
repository path, ``*.py`` file, ``edgecls.x.y`` name and test function named must exist; and docs/layout.md's
tree must name every Python package. The readers are in tests/fixtures_docs.py; the last tests break a page on
purpose for each check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_docs import (
    DOC_FILES,
    PAGE_COMMANDS,
    REPO,
    USER_PAGES,
    anchors,
    cited_name_is_real,
    cited_names,
    cli_commands,
    cli_default,
    cli_options,
    code_texts,
    commands_named,
    default_claims,
    layout_tree,
    links,
    package_named_in_tree,
    python_packages,
    same_default,
    shown_commands,
)

from edgecls.cli.renamed_flags import RENAMES, Rename


def broken_links(md: Path) -> list[str]:
    broken = []
    for target in links(md):
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def _renamed(command: str, flag: str, value: str | None, renames: tuple[Rename, ...]) -> Rename | None:
    values = [v for v in (value or "").replace("[", "|").replace("]", "|").split("|") if v] or [None]
    return next((r for r in renames if r.command == command and r.old == flag and any(map(r.matches, values))), None)


def wrong_commands(md: Path, renames: tuple[Rename, ...] = RENAMES) -> list[str]:
    options = cli_options()
    wrong = []
    for command, opts, where in shown_commands(md):
        if command not in options:
            wrong.append(f"no command `edgecls {command}` (in: {where})")
            continue
        for flag, value in opts:
            rename = _renamed(command, flag, value, renames)
            if rename is not None:
                wrong.append(f"`edgecls {command} {flag}` is the old spelling of {rename.new} (in: {where})")
            elif flag not in options[command]:
                wrong.append(f"`edgecls {command}` has no {flag} (in: {where})")
    # A flag named alone in a code span that is an old spelling on every command that had it, and no longer exists.
    current = set().union(*options.values())
    gone = {r.old: r.new for r in renames if r.when is None and r.old not in current}
    wrong += [f"`{t}` is an old spelling of {gone[t.split()[0]]}" for t in code_texts(md) if t.split()[:1] and
              t.split()[0] in gone]
    return wrong


def wrong_defaults(md: Path) -> list[str]:
    wrong = []
    for claim in default_claims(md):
        having = [c for c in cli_commands() if claim.flag in cli_options()[c]]
        if not having:
            wrong.append(f"{claim.flag}: no command has it (in: {claim.where})")
            continue
        named = commands_named(claim.where) & set(having)
        on_page = set(PAGE_COMMANDS.get(md.name, ())) & set(having)
        for command in sorted(named or on_page or set(having)):
            known, default = cli_default(command, claim.flag)
            if claim.numeric_only and not isinstance(default, (int, float)):
                continue
            if known and not same_default(claim.value, default):
                wrong.append(f"{claim.flag} of `edgecls {command}` defaults to {default!r}, not {claim.value} "
                             f"(in: {claim.where})")
    return wrong


def unknown_names(md: Path) -> list[str]:
    return sorted({f"{kind} {name}" for kind, name in cited_names(md) if not cited_name_is_real(kind, name)})


# What each page must not contain, by check: links that resolve nowhere, commands or options that do not exist (or
# are old spellings), defaults that are not the CLI's (pages about the CLI only), names of things that do not exist.
CHECKS = {
    "links-resolve": (DOC_FILES, broken_links),
    "commands-and-options-exist": (DOC_FILES, wrong_commands),
    "defaults-are-the-clis": (USER_PAGES, wrong_defaults),
    "cited-names-exist": (DOC_FILES, unknown_names),
}


@pytest.mark.parametrize(
    ("check", "md"), [(c, md) for c, (pages, _) in CHECKS.items() for md in pages],
    ids=lambda x: x.relative_to(REPO).as_posix() if isinstance(x, Path) else x,
)
def test_every_page_says_only_what_is_true(check: str, md: Path) -> None:
    problems = CHECKS[check][1](md)
    assert not problems, f"{md.relative_to(REPO)}: {check}, not so:\n" + "\n".join(problems)


def test_layout_names_every_python_package() -> None:
    tree = layout_tree(REPO / "docs" / "layout.md")
    missing = [p for p in python_packages() if not package_named_in_tree(p, tree)]
    assert not missing, f"docs/layout.md's tree does not name these packages: {missing}"


def test_the_link_and_command_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A broken link, a missing anchor, an unknown command, a flag that does not exist and an old spelling."""
    (tmp_path / "other.md").write_text("# A heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-heading) [gone](missing.md) [bad anchor](other.md#nope)\n\n"
        "```\nedgecls train DATA --epochs 3   # a comment --not-an-option\nedgecls frobnicate x\n"
        "edgecls pack m --target linux-aarch64\nedgecls pack m --target arm64\n```\n"
        "Inline: `edgecls run m.onnx --img-size 32`, `pip install 'edgecls[serve]'`,\n"
        "`newer than edgecls understands`, `--spread 2`.\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md: no such file", "other.md#nope: no heading #nope in other.md"]
    shown = [(c, o) for c, o, _ in shown_commands(page)]
    assert shown == [("train", [("--epochs", "3")]), ("frobnicate", []), ("pack", [("--target", "linux-aarch64")]),
                     ("pack", [("--target", "arm64")]), ("run", [("--img-size", "32")])]
    renames = (Rename("pack", "--target", "--platform", when=lambda v: v.startswith("linux-")),
               Rename("serve", "--spread", "--port"))
    wrong = wrong_commands(page, renames)
    assert any("frobnicate" in w for w in wrong) and any("has no --img-size" in w for w in wrong)
    assert [w for w in wrong if "old spelling" in w] == [
        "`edgecls pack --target` is the old spelling of --platform (in: edgecls pack m --target linux-aarch64)",
        "`--spread 2` is an old spelling of --port",
    ]
    assert wrong_commands(page, ())[2:] == []  # without renames, only the unknown command and flag are wrong


def test_the_default_check_catches_a_wrong_default(tmp_path: Path) -> None:
    """Each shape of default claim on a page about serve, read, compared and, when wrong, named."""
    page = tmp_path / "serve.md"
    page.write_text(
        "Batches of `--max-batch-size`, default 8 and `--max-wait-ms` (default 2).\n\n"
        "Limits: (`--max-body-mb`, 20; ...), `--max-headers` lines (100; 431), `--header-timeout` (10 s).\n\n"
        "Bound to `--host 127.0.0.1`, the default. `--drain-timeout` seconds (30 by default).\n\n"
        "| limit | defends against | default |\n|---|---|---|\n| `--max-pixels` | bombs | 40,000,000 |\n"
        "| `--token` | strangers | none |\n\n"
        "`edgecls run` reads `--max-file-mb` (default 100).\n",
        encoding="utf-8",
    )
    claims = {(c.flag, c.value) for c in default_claims(page)}
    assert claims == {("--max-batch-size", "8"), ("--max-wait-ms", "2"), ("--max-body-mb", "20"),
                      ("--max-headers", "100"), ("--header-timeout", "10"), ("--host", "127.0.0.1"),
                      ("--drain-timeout", "30"), ("--max-pixels", "40,000,000"), ("--token", "none"),
                      ("--max-file-mb", "100")}
    assert wrong_defaults(page) == []
    broken = page.read_text().replace("default 8", "default 9").replace("40,000,000", "40 M").replace(
        "(default 100)", "(default 10)").replace("`--host 127.0.0.1`", "`--host 0.0.0.0`")
    page.write_text(broken, encoding="utf-8")
    wrong = wrong_defaults(page)
    assert sorted(w.split()[0] for w in wrong) == ["--host", "--max-batch-size", "--max-file-mb"]  # 40 M is 40,000,000
    assert "`edgecls run` defaults to 100" in " ".join(wrong)  # the command named beside the flag is checked


def test_the_name_checks_catch_what_does_not_exist(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Real: `runtime/images/decode.py`, export/quant/, `runtime/images/files`, tests/test_reliability_*.py, "
        "`benchmarks/results/serve_{reload,slow_bodies}_intel-xeon_avx512vnni_ort1.32.0_2026-12-07.json`, "
        "`decisive.py`, `edgecls.runtime.run.main.run(RunOptions(...))`, `edgecls.runtime.Classifier`, "
        "`edgecls.runtime.contract.model_contract.ModelContract.from_json`, the `edgecls.contract` key.\n"
        "Gone: `runtime/output.py`, `quant_equalize.py`, `edgecls.export.export_checkpoint`, "
        "`edgecls.runtime.bench.nothing`, benchmarks/results/serve_{reload,gone}_intel-xeon_*.json, "
        "`test_gone_away`; real tests: `test_signal_stops_a_live_run_cleanly[2-130]`, `test_eval_refuses_...`.\n",
        encoding="utf-8",
    )
    assert unknown_names(page) == [
        "file quant_equalize.py", "module edgecls.export.export_checkpoint", "module edgecls.runtime.bench.nothing",
        "path benchmarks/results/serve_{reload,gone}_intel-xeon_*.json", "path runtime/output.py",
        "test test_gone_away",
    ]


def test_the_layout_check_catches_a_package_left_out(tmp_path: Path) -> None:
    page = tmp_path / "layout.md"
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    tree = layout_tree(REPO / "docs" / "layout.md")
    assert {"edgecls/cli", "export/quant", "runtime/serve"} <= set(tree)
    assert package_named_in_tree("edgecls/models/pretrained", tree)  # named in its parent's entry
    page.write_text(text.replace("  prescan/", "  pre-scan/").replace("pretrained/ (", "pretrained (", 1),
                    encoding="utf-8")
    broken = layout_tree(page)
    missing = [p for p in python_packages() if not package_named_in_tree(p, broken)]
    assert missing == ["edgecls/models/pretrained", "runtime/images/prescan"]
