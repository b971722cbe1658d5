"""Flags renamed so that one concept has one name across every command: the old spellings keep working for one
release, each with a one-line ``warning:`` naming the new spelling. Flags of removed features are refused with one
``error:`` line saying why and what to use instead (exit status 2), not silently ignored.

The old spelling is rewritten in ``argv`` before typer parses it, so each command declares only its new flags and
``--help`` shows only them. ``RENAMES`` and ``REMOVED`` are the lists CHANGELOG.md gives (tests/test_renamed_flags.py
checks that every entry is in the changelog, that the old spelling reaches the command as the new one, and that a
removed flag is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class Rename:
    """``edgecls COMMAND OLD VALUE`` means ``edgecls COMMAND NEW VALUE`` (for this release).

    ``when``: only values it accepts are renamed (a flag whose old values split between two new flags, e.g. a
    platform given to pack's ``--target`` is its ``--platform``); None: every value. ``given``: only when the
    command line also gives this flag (batch's ``--concurrency`` is ``--actors`` with ``--ray``); the first entry
    that matches wins. ``note`` ends the warning line (what the other spelling would have been).
    """

    command: str
    old: str
    new: str
    when: Callable[[str], bool] | None = None
    given: str | None = None
    note: str = ""

    def matches(self, value: str | None, flags: Collection[str] | None = None) -> bool:
        """Whether ``value`` given to ``old`` is renamed; ``flags``: the command line's other flags (None: not
        known, as for a flag shown in the docs: ``given`` is not checked)."""
        if self.given is not None and flags is not None and self.given not in flags:
            return False
        return self.when is None or (value is not None and self.when(value))

    def warning(self) -> str:
        context = f" with {self.given}" if self.given else ""
        note = f" ({self.note})" if self.note else ""
        return (f"{self.command} {self.old}{context} is renamed {self.new}{note}; the old spelling goes in the next "
                "release")


@dataclass(frozen=True)
class NewMeaning:
    """``edgecls COMMAND FLAG VALUE`` keeps its spelling but now means what the same value means in every other
    command; what it did before is spelled ``before`` (one warning line, for this release)."""

    command: str
    flag: str
    value: str
    now: str  # what it does now, in a few words
    before: str  # the spelling of what it did before this release

    def matches(self, value: str | None) -> bool:  # a comma-separated list holds the value (bench's sweeps)
        return value is not None and self.value in (v.strip() for v in value.split(","))

    def warning(self) -> str:
        return (f"{self.command} {self.flag} {self.value} now {self.now}; {self.before} does what it did before "
                "(this line goes in the next release)")


def _is_camera(value: str) -> bool:
    from edgecls.runtime.sources.source_specs import is_camera_spelling  # OpenCV: only when the flag is given

    return is_camera_spelling(value)


def _is_platform(value: str) -> bool:
    """A value of pack's old ``--target`` that names a platform (all of edgecls.deploy.platforms' are linux-*)."""
    return value.startswith("linux-")


#: Every rename of this release, in the order CHANGELOG.md lists them.
RENAMES: tuple[Rename, ...] = (
    Rename("run", "--workers", "--decode-threads"),
    Rename("batch", "--concurrency", "--actors", given="--ray"),
    Rename("batch", "--concurrency", "--decode-threads", note="with --ray it is --actors"),
    Rename("bench", "--batch", "--batch-size"),
    Rename("serve", "--max-batch", "--max-batch-size"),
    Rename("selftest", "--camera", "--source", when=lambda value: not _is_camera(value)),
    # int8's seconds per learning step, not bench's seconds per configuration (bench keeps --time-budget)
    Rename("quantize", "--time-budget", "--max-learning-seconds"),
    Rename("export", "--time-budget", "--max-learning-seconds"),
    # --target is the int8 recipe's CPU on every command; pack's device is its --platform
    Rename("pack", "--target", "--platform", when=_is_platform),
    Rename("pack", "--quantize-target", "--target"),
)

#: Values that now mean what they mean in every other command, in the order CHANGELOG.md lists them.
NEW_MEANINGS: tuple[NewMeaning, ...] = (
    NewMeaning("bench", "--provider", "auto", "measures the one provider `edgecls run` picks", "--provider all"),
)


@dataclass(frozen=True)
class Removal:
    """``edgecls COMMAND FLAG`` was removed in this release: ``why``, and what to use ``instead``."""

    command: str
    flag: str
    why: str
    instead: str

    def message(self) -> str:
        return f"{self.command} {self.flag} was removed in this release: {self.why}; {self.instead}"


class RemovedFlagError(EdgeclsError):
    """A command line uses a flag of a removed feature (exit status 2)."""


# Distillation (int8 learned from the float torch model) measured against layer-wise reconstruction in
# benchmarks/quantization/README.md.
_DISTILLATION_LOST = "learning int8 by distillation lost to layer-wise reconstruction on every measured held-out set"
_TORCH_MODEL_GONE = f"it gave distillation its torch model, and {_DISTILLATION_LOST}"
_USE_RECONSTRUCT = "drop it: --reconstruct (auto by default) repairs int8 that misses the budget"
_ONNX_FILE_ENOUGH = "drop it: --reconstruct needs only the ONNX file"

#: Every flag removed in this release, in the order CHANGELOG.md lists them.
REMOVED: tuple[Removal, ...] = (
    Removal("export", "--distill", _DISTILLATION_LOST, _USE_RECONSTRUCT),
    Removal("quantize", "--distill", _DISTILLATION_LOST, _USE_RECONSTRUCT),
    Removal("quantize", "--model", _TORCH_MODEL_GONE, _ONNX_FILE_ENOUGH),
    Removal("quantize", "--weights", _TORCH_MODEL_GONE, _ONNX_FILE_ENOUGH),
)


def _split(arg: str) -> tuple[str, str | None]:
    """``--name=value`` -> (``--name``, ``value``); anything else -> (arg, None)."""
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


def rewrite_argv(
    argv: Sequence[str],
    warn: Callable[[str], None],
    renames: Sequence[Rename] = RENAMES,
    meanings: Sequence[NewMeaning] = NEW_MEANINGS,
    removed: Sequence[Removal] = REMOVED,
) -> list[str]:
    """``argv`` (without the program name) with the old spellings of its command's renamed flags replaced, a
    warning for each value whose meaning changed; :class:`RemovedFlagError` when it uses a removed flag.

    Only the command's own flags are looked at: the first argument names the command; everything after ``--`` is
    left alone (file names that look like flags)."""
    if not argv:
        return []
    command, out, i = argv[0], [argv[0]], 1
    mine = [r for r in renames if r.command == command]
    changed = [m for m in meanings if m.command == command]
    end = argv.index("--") if "--" in argv else len(argv)
    flags = {_split(a)[0] for a in argv[1:end] if a.startswith("--")}
    gone = {r.flag: r for r in removed if r.command == command}
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out += argv[i:]
            break
        name, inline = _split(arg)
        if name in gone:
            raise RemovedFlagError(gone[name].message())
        value = inline if inline is not None else (argv[i + 1] if i + 1 < len(argv) else None)
        rename = next((r for r in mine if r.old == name and r.matches(value, flags)), None)
        if rename is not None:
            warn(rename.warning())
            name = rename.new
            arg = f"{name}={inline}" if inline is not None else name
        for meaning in changed:
            if meaning.flag == name and meaning.matches(value):
                warn(meaning.warning())
        out.append(arg)
        i += 1
    return out
