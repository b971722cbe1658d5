"""Reading the docs as a newcomer reads them, for tests/test_docs.py: links, the commands shown, the defaults
stated for flags, the modules and files cited, and layout.md's tree.

Everything here reads text and the typer app's own declarations; nothing runs a command. The parsers are strict
about shape (a claim must look like one) so that prose is never mistaken for a claim, and each one is exercised
on a deliberately broken page in tests/test_docs.py.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The pages people read (the benchmark results' own .md files are generated reports, not docs).
DOC_FILES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "benchmarks").rglob("README.md")),
]
# Pages whose flag defaults are the CLI's (benchmarks/ READMEs describe their scripts' own flags as well).
USER_PAGES = [p for p in DOC_FILES if "benchmarks" not in p.relative_to(REPO).parts]
# The command(s) a page is about: a flag default stated there without naming a command is that command's.
PAGE_COMMANDS = {
    "serve.md": ("serve",), "SECURITY.md": ("serve",), "run.md": ("run",), "RELIABILITY.md": ("run",),
    "batch.md": ("batch",), "training.md": ("train", "eval"), "bench-and-providers.md": ("bench",),
    "DEVICE.md": ("pack", "selftest", "update"), "export-and-int8.md": ("export", "quantize"),
}
# `edgecls.X` strings the docs cite that are names of other things, not modules.
NOT_MODULES = {
    "edgecls.contract": "the metadata_props key of the contract",
    "edgecls.watch.files": "a Parquet schema metadata key",
    "edgecls.service": "the systemd unit's file name",
    "edgecls.env": "the service's settings file",
}
# Files the docs name that belong to other projects.
FOREIGN_FILES = {"efficientnet_lite_builder.py": "TensorFlow's EfficientNet-Lite builder"}

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?$(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`([^`\n]+)`")
# A command line starts with the program: `edgecls train ...`, `$ .venv/bin/edgecls ...`, `VAR=1 edgecls ...`,
# `python -m edgecls train ...`, `torchrun --nproc-per-node 2 -m edgecls train ...`; prose that merely contains
# the word (an error message quoted in a span) is not a command.
_COMMAND = re.compile(
    r"^(?:\$\s*)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*python3?\s+-m\s+|torchrun\s.*?-m\s+|\S*/)?"
    r"edgecls\s+([a-z][a-z0-9-]*)(.*)"
)
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?:=(\S+))?")
# What ends one command's words: a comment, a shell separator, a pipe to another program.
_COMMAND_END = re.compile(r"\s#\s|\s#$|;|&&|\|\||\s\|\s(?!-)")


def strip_fences(text: str) -> str:
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped except '-' and '_', spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    text = strip_fences(md.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def links(md: Path) -> Iterator[str]:
    for m in _LINK.finditer(strip_fences(md.read_text(encoding="utf-8"))):
        if not re.match(r"^[a-z]+:", m.group(1)):  # http:, https:, mailto: are not checked (no network)
            yield m.group(1)


def code_texts(md: Path) -> Iterator[str]:
    """Every line of every fenced block, and every inline code span outside them."""
    text = md.read_text(encoding="utf-8")
    for block in _FENCE.finditer(text):
        yield from block.group(1).splitlines()
    yield from (m.group(1) for m in _INLINE.finditer(strip_fences(text)))


def shown_commands(md: Path) -> Iterator[tuple[str, list[tuple[str, str | None]], str]]:
    """(command, [(option, the value written after it or None)], the line) for each `edgecls COMMAND ...`."""
    for text in code_texts(md):
        m = _COMMAND.match(text.strip().replace("\\|", "|"))
        if not m:
            continue
        words = _COMMAND_END.split(m.group(2))[0].split()
        opts = []
        for i, word in enumerate(words):
            o = _OPTION.match(word)
            if o and o.end(1) == len(word.split("=")[0]):
                nxt = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("-") else None
                opts.append((o.group(1), o.group(2) if o.group(2) is not None else nxt))
        yield m.group(1), opts, text.strip()


@cache
def cli_commands() -> dict[str, Any]:
    """The click commands typer builds from edgecls's app, by name."""
    import typer.main

    from edgecls.cli import app

    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def cli_options() -> dict[str, set[str]]:
    return {
        name: {"--help", *(o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--"))}
        for name, cmd in cli_commands().items()
    }


def cli_default(command: str, flag: str) -> tuple[bool, Any]:
    """(known, value): the flag's default on that command, as a user would write it.

    A default of None means the library decides; then the help text's own `default N` is the CLI's word, and a
    help text that states none (or states it in words) leaves nothing to compare: known is False."""
    param = next(p for p in cli_commands()[command].params if flag in (*p.opts, *p.secondary_opts))
    value = param.default
    if value is None:
        m = re.search(r"\bdefault:?\s+(\d[\d.,]*|`[^`]+`)", getattr(param, "help", "") or "")
        return (True, m.group(1).strip("`")) if m else (False, None)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return True, value


_NUMBER = r"\d[\d,]*(?:\.\d+)?(?:\s*M(?![A-Za-z]))?"
_VALUE = rf"`[^`]+`|{_NUMBER}"
_FLAG_SPAN = r"`(--[a-z][a-z0-9-]*)(?:[ =]([^`]*))?`"
# Each shape of "this flag's default is V" the pages use; a claim must be within one clause of its flag.
_CLAIMS = [
    # `--max-file-mb`, default 100 / `--settle` seconds (default 2; / `--agreement-on decisive|all`, default `x`
    re.compile(rf"{_FLAG_SPAN}[^`;|.]{{0,40}}?\bdefault:?\s+(?P<v>{_VALUE})"),
    # `--time-budget` seconds (600 by default
    re.compile(rf"{_FLAG_SPAN}[^`;|.]{{0,40}}?\((?P<v>{_NUMBER})[^`;|.)]{{0,12}} by default"),
    # (`--max-body-mb`, 20; / `--header-timeout` (10 s) / `--max-headers` lines (100; (numeric_only: the last)
    re.compile(rf"`(--[a-z][a-z0-9-]*)()`(?:,\s*|\s*\(|\s+[a-z]+\s+\()(?P<v>{_NUMBER})(?=[\s,;:)])"),
    # `--service run` (default) / `--host 127.0.0.1`, the default
    re.compile(r"`(--[a-z][a-z0-9-]*) (?P<v>[\w.-]+)`(?:\s*\(default\)|, the default\b(?! from| when))"),
]


@dataclass(frozen=True)
class DefaultClaim:
    page: str
    flag: str
    value: str
    where: str  # the sentence or table row it was read from
    numeric_only: bool = False  # `--flag`, N: a claim only where the flag's default is a number


def _sentences(text: str) -> Iterator[str]:
    """Paragraphs joined into lines, then cut at sentence ends; table rows stay whole."""
    for block in re.split(r"\n\s*\n", strip_fences(text)):
        if block.lstrip().startswith("|"):
            yield from block.splitlines()
            continue
        yield from re.split(r"(?<=[.!?])\s+(?=[A-Z`(*])", " ".join(block.split()))


def _default_tables(text: str) -> Iterator[tuple[int, list[str]]]:
    """(the default column, the rows) of each table whose header has a `default` column."""
    for table in re.findall(r"(?:^\|.*\|\s*$\n?)+", strip_fences(text), re.M):
        rows = table.strip().splitlines()
        header = [c.strip().lower() for c in rows[0].strip("|").split("|")]
        if "default" in header:
            yield header.index("default"), rows[2:]


def _table_claims(col: int, rows: list[str]) -> Iterator[tuple[str, str, str]]:
    """(flag, value, row) from a default table's rows whose first cell names one flag."""
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        flags = re.findall(_FLAG_SPAN, cells[0])
        value = re.match(rf"(?P<v>{_VALUE}|none)\b", cells[col]) if col < len(cells) else None
        if len(flags) == 1 and not flags[0][1] and value:
            yield flags[0][0], value.group("v"), row


def default_claims(md: Path) -> Iterator[DefaultClaim]:
    text = md.read_text(encoding="utf-8")
    page = md.name
    table_rows: set[str] = set()
    for col, rows in _default_tables(text):
        table_rows |= {r.strip() for r in rows}
        for flag, value, row in _table_claims(col, rows):
            yield DefaultClaim(page, flag, value, row)
    for sentence in _sentences(text):
        if sentence.strip() in table_rows:
            continue  # a default table's row says its default in its column, read above
        for shape in _CLAIMS:
            for m in shape.finditer(sentence):
                yield DefaultClaim(page, m.group(1), m.group("v"), sentence, numeric_only=shape is _CLAIMS[2])


def _as_number(text: str) -> float | None:
    m = re.fullmatch(r"(\d[\d,]*(?:\.\d+)?)(\s*M)?", text.strip())
    if not m:
        return None
    return float(m.group(1).replace(",", "")) * (1e6 if m.group(2) else 1.0)


def same_default(claimed: str, default: Any) -> bool:
    claimed = claimed.strip("`").strip()
    if default is None or claimed == "none":
        return default is None and claimed == "none"
    if not isinstance(default, bool) and isinstance(default, (int, float)) or _as_number(str(default)) is not None:
        number = _as_number(claimed)
        return number is not None and abs(number - float(default)) <= 1e-9 * max(1.0, abs(number))
    return claimed == str(default)


def commands_named(sentence: str) -> set[str]:
    """Commands a sentence names: `edgecls serve`, `serve`, `run --json` (as a code span's first word)."""
    names = set(re.findall(r"\bedgecls ([a-z]+)", sentence))
    names |= {m.split()[0] for m in _INLINE.findall(sentence) if m.split() and m.split()[0] in cli_commands()}
    return names & set(cli_commands())


# Paths the pages cite into the repository: `runtime/images/decode.py`, export/quant/, tests/test_x.py, globs included.
_PATH = re.compile(r"(?<![\w./~$-])((?:edgecls|export|runtime|tests|benchmarks)/[\w.*{},/-]*)")
_BARE_PY = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*\.py)\b(?!:)")  # FILE.py:FACTORY is the user's file
_DOTTED = re.compile(r"(?<![\w./-])(edgecls(?:\.[A-Za-z_]\w*)+)")


def _expand_braces(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m.group(1).split(",") for x in _expand_braces(pattern[: m.start()] + alt + pattern[m.end():])]


def path_exists(cited: str) -> bool:
    """A cited repository path: a file or folder (a module may be cited without `.py`), or a glob that matches."""
    cited = cited.rstrip(".,")
    for one in _expand_braces(cited):
        if "*" in one:
            if not any(REPO.glob(one)):
                return False
        elif not ((REPO / one).exists() or (REPO / f"{one.rstrip('/')}.py").is_file()):
            return False
    return True


@cache
def _repo_basenames() -> frozenset[str]:
    return frozenset(
        p.name for top in ("edgecls", "export", "runtime", "tests", "benchmarks") for p in (REPO / top).rglob("*.py")
    )


@cache
def _package_dirs() -> dict[str, Path]:
    """pyproject's package-dir mapping: import prefix -> folder (edgecls.export -> export/)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is 3.11+; edgecls supports 3.10
    table = re.search(r"^\[tool\.setuptools\.package-dir\]\n((?:\"[^\"]+\"\s*=\s*\"[^\"]+\"\n)+)", text, re.M)
    assert table, "pyproject.toml has no [tool.setuptools.package-dir] table"
    return {prefix: REPO / folder for prefix, folder in re.findall(r'"([^"]+)"\s*=\s*"([^"]+)"', table.group(1))}


def _module_file(dotted: str) -> Path | None:
    """The file of a module or package through the package-dir mapping, without importing it."""
    prefix = max((p for p in _package_dirs() if dotted == p or dotted.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        return None
    base = _package_dirs()[prefix].joinpath(*dotted[len(prefix):].split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _top_level_names(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def dotted_name_exists(dotted: str) -> bool:
    """`edgecls.runtime.run.main.run`: the longest prefix that is a module, then names defined in it."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        source = _module_file(".".join(parts[:i]))
        if source is None:
            continue
        rest = parts[i:]
        if not rest:
            return True
        if source.name == "__init__.py" and "__getattr__" in _top_level_names(source):
            return True  # a lazy package (edgecls.runtime's Classifier): its names resolve on first use
        return len(rest) == 1 and rest[0] in _top_level_names(source) or (
            len(rest) == 2 and rest[0] in _top_level_names(source)  # Class.method
        )
    return False


# A test named in a code span (`test_x`, `test_x[2-130]`); `test_eval_refuses_...` abbreviates a family.
_TEST_NAME = re.compile(r"(?<![\w/.])(test_[a-z0-9_]+)(?![\w.])")


def cited_names(md: Path) -> Iterator[tuple[str, str]]:
    """(kind, name) for every repository path, bare `*.py` file name, `edgecls.x.y` name and test a page cites."""
    text = md.read_text(encoding="utf-8")
    text = _LINK.sub(lambda m: m.group(0).split("](")[0], text)  # links are checked as links
    for m in _PATH.finditer(text):
        yield "path", m.group(1).rstrip(".,")
    for m in _BARE_PY.finditer(text):
        yield "file", m.group(1)
    for m in _DOTTED.finditer(text):
        yield "module", m.group(1)
    for span in _INLINE.findall(strip_fences(text)):
        yield from (("test", m.group(1)) for m in _TEST_NAME.finditer(span) if not span[m.end():].startswith("..."))


@cache
def _test_functions() -> frozenset[str]:
    return frozenset(
        name for p in (REPO / "tests").rglob("*.py")
        for name in re.findall(r"^\s*(?:async )?def (test_\w+)", p.read_text(encoding="utf-8"), re.M)
    )


def cited_name_is_real(kind: str, name: str) -> bool:
    if kind == "path":
        return path_exists(name)
    if kind == "file":
        return name in _repo_basenames() or name in FOREIGN_FILES
    if kind == "test":
        return name in _test_functions()
    return name in NOT_MODULES or dotted_name_exists(name)


def python_packages() -> list[str]:
    """Every package folder (with __init__.py) of edgecls/, export/ and runtime/, as a repository path."""
    return sorted(
        p.parent.relative_to(REPO).as_posix()
        for top in ("edgecls", "export", "runtime") for p in (REPO / top).rglob("__init__.py")
    )


def layout_tree(md: Path) -> dict[str, str]:
    """layout.md's tree (its first fenced block): each entry's repository path -> its text (continuations included).

    An entry is a line whose first word sits left of the description column and ends in `/` (a folder) or
    `.py`; its depth is its indentation in steps of two."""
    block = _FENCE.search(md.read_text(encoding="utf-8"))
    assert block, f"{md.name} has no tree block"
    entries: dict[str, str] = {}
    stack: list[str] = []
    current = None
    for line in block.group(1).splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m:
            continue
        indent, word = len(m.group(1)), m.group(2)
        if indent < 20 and (word.endswith("/") or word.endswith(".py")):
            depth = indent // 2
            stack = stack[:depth] + [word.rstrip("/")]
            current = "/".join(stack)
            entries[current] = line[m.end(2):]
        elif current is not None:
            entries[current] += " " + line.strip()
    return entries


def package_named_in_tree(package: str, tree: dict[str, str]) -> bool:
    """A package is named by its own entry, or as `name/` in its parent folder's entry text."""
    parent, _, name = package.rpartition("/")
    return package in tree or (parent in tree and re.search(rf"(?<![\w/]){re.escape(name)}/", tree[parent]) is not None)
