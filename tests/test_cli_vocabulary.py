"""One name per concept on the command line: a flag several commands take means one thing (one type, one concept
in its help), every closed set of values is an enum that matches the library's own list, and a flag that still
takes free text is declared so here."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import typer.main

from edgecls.cli import app, choices


@dataclass(frozen=True)
class Meaning:
    """What a shared flag means. ``phrase``: words every command's help for it contains; ``types``: the value types
    it may have when they differ (a list of them is bench's sweep); empty: one type everywhere."""

    what: str
    phrase: str
    types: tuple[type, ...] = ()


#: Every flag name more than one command takes. A new shared name goes here, with the one thing it means.
SHARED: dict[str, Meaning] = {
    # model contract (options.CONTRACT_FLAGS): the ModelContract field of the same name
    "--labels": Meaning("the model's class labels", "labels"),
    "--input-size": Meaning("the input size the network consumes", "input size"),
    "--mean": Meaning("per-channel mean", "mean"),
    "--std": Meaning("per-channel std", "std"),
    "--scale": Meaning("pixel scale before mean/std", "scale"),
    "--resize-mode": Meaning("how an image becomes the input size", "resize"),
    "--crop-fraction": Meaning("the centre crop's share", "crop"),
    "--interpolation": Meaning("resize interpolation", "interpolation"),
    "--color-order": Meaning("channel order", "channel order"),
    "--output-kind": Meaning("what the model outputs", "outputs"),
    "--jpeg-decode": Meaning("how much of a JPEG is decoded", "decode"),
    # running a model
    "--provider": Meaning("the execution provider (auto: the one run picks)", "provider"),
    "--precision": Meaning("what OpenVINO computes in", "what openvino computes in"),
    "--threads": Meaning("onnxruntime's intra-op threads", "intra-op threads"),
    "--strict": Meaning("a provider falling back to CPU is an error", "falls back to cpu"),
    "--batch-size": Meaning("images per batch", "images per"),
    "--decode-threads": Meaning("image decode threads, beside the model", "decode threads"),
    "--top-k": Meaning("classes reported per input", "classes reported"),
    "--max-pixels": Meaning("the largest declared width x height", "width x height"),
    "--max-file-mb": Meaning("the largest image file", "mb"),
    "--camera": Meaning("a camera: N or pi:N (pack's unit: N)", "camera", (str, int)),
    "--source": Meaning("a stream URL or video file", "stream url or video file"),
    "--watch": Meaning("keep watching the folders", "watching the folders"),
    "--settle": Meaning("seconds a file must stay unchanged", "unchanged"),
    "--move-done": Meaning("where a finished file moves", "move each file"),
    # outputs
    "--json": Meaning("JSON on stdout", "json"),
    "--csv": Meaning("rows written as CSV", "csv"),
    "--out": Meaning("where the command writes (batch: also s3:// URIs)", "", (Path, str)),
    # data and models
    "--data": Meaning("images to read: a folder (or builtin:NAME)", "", (str, Path)),
    "--calib": Meaning("calibration images", "calibration images"),
    "--val": Meaning("validation images", "validation images"),
    "--seed": Meaning("the split's seed", "split"),
    "--epochs": Meaning("training epochs", "epochs"),
    "--arch": Meaning("a built-in architecture", "architecture"),
    "--model": Meaning("your own torch model, FILE.py:FACTORY", "file.py:factory"),
    "--weights": Meaning("a state dict file", "state dict"),
    "--trust-checkpoint": Meaning("a checkpoint may run code as it loads", "runs code"),
    "--fp16": Meaning("also make the fp16 model", "fp16"),
    "--quantize": Meaning("also make the int8 model", "int8"),
    "--port": Meaning("a TCP port", "tcp port"),
    # int8 (cli/int8_options.py)
    "--max-drop": Meaning("the accuracy budget, in points", "points"),
    "--agreement-on": Meaning("which images grade agreement", "agreement"),
    "--reconstruct": Meaning("learn each layer's weight rounding", "weight rounding"),
    "--allow-over-budget": Meaning("write int8 over budget", "budget"),
    "--require-verified": Meaning("exit 4 when unverified", "unverified"),
    "--target": Meaning("the CPU an int8 file is made for", "int8"),
    "--calib-images": Meaning("at most this many calibration images", "calibration images"),
    "--val-images": Meaning("at most this many validation images", "validation images"),
    "--max-learning-seconds": Meaning("a safety cap on an int8 learning step", "seconds"),
}

#: Flags that take free text (names, paths, URLs, specs), not one of a closed set. A closed set is an enum.
FREE_TEXT = {
    "--labels", "--input-size", "--mean", "--std", "--provider", "--provider-option", "--camera", "--source",
    "--host", "--allow-host", "--token", "--ray", "--out", "--data", "--calib", "--val", "--model", "--head",
    "--python", "--extra", "--find-links", "--sign", "--unit",
}


def _commands() -> dict[str, typing.Any]:
    return typer.main.get_command(app).commands  # type: ignore[attr-defined]


def _base(annotation: typing.Any) -> typing.Any:
    """``int | None`` -> int, ``list[int]`` (bench's sweeps, repeatable flags) -> int."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _uses() -> dict[str, list[tuple[str, typing.Any, str]]]:
    """flag -> [(command, base type, help)] for every option of every command."""
    uses: dict[str, list[tuple[str, typing.Any, str]]] = {}
    for name, command in _commands().items():
        for param in command.params:
            for flag in [*param.opts, *(param.secondary_opts or [])]:
                if flag.startswith("--") and flag != "--help":
                    base = _base(param.type_descriptor.annotation)
                    uses.setdefault(flag, []).append((name, base, param.help or ""))
    return uses


def test_a_flag_several_commands_take_means_one_thing() -> None:
    wrong = []
    for flag, uses in sorted(_uses().items()):
        if len({command for command, _, _ in uses}) < 2:
            continue
        meaning = SHARED.get(flag)
        if meaning is None:
            wrong.append(f"{flag} is taken by {[u[0] for u in uses]}: add it to SHARED with the one thing it means")
            continue
        kinds = {base for _, base, _ in uses}
        if meaning.types:
            wrong += [f"{flag} in {c} is {b}, not one of {meaning.types}" for c, b, _ in uses
                      if not any(b is t or (isinstance(b, type) and issubclass(b, t)) for t in meaning.types)]
        elif len(kinds) > 1:
            wrong.append(f"{flag} has several types: {[(c, b) for c, b, _ in uses]}")
        wrong += [f"{flag} in {c}: help does not say {meaning.phrase!r} ({meaning.what}): {h!r}"
                  for c, _, h in uses if meaning.phrase.lower() not in h.lower()]
    assert not wrong, "\n".join(wrong)


def test_the_table_of_shared_flags_names_only_shared_flags() -> None:
    uses = _uses()
    unshared = [f for f in SHARED if len({c for c, _, _ in uses.get(f, [])}) < 2]
    assert not unshared, f"in SHARED but taken by one command or none: {unshared}"


def test_a_closed_set_of_values_is_an_enum() -> None:
    """A text flag is free text (declared in FREE_TEXT); anything else with a closed set of values must be an Enum,
    so typer lists the values and refuses others."""
    text = sorted(f for f, uses in _uses().items() if any(b is str for _, b, _ in uses))
    assert set(text) <= FREE_TEXT, f"text flags not declared free text: {set(text) - FREE_TEXT}"
    enums = {f for f, uses in _uses().items() if any(isinstance(b, type) and issubclass(b, Enum) for _, b, _ in uses)}
    assert {"--spin", "--optimizer", "--batchnorm", "--exporter", "--precision", "--split", "--arch",
            "--resize-mode", "--interpolation", "--color-order", "--output-kind", "--jpeg-decode", "--target",
            "--agreement-on", "--reconstruct", "--platform", "--service"} <= enums


def _values(enum: type[Enum]) -> list[str]:
    return [e.value for e in enum]


def test_each_choice_enum_is_the_library_s_own_list() -> None:
    import edgecls.models  # noqa: F401  (the model files register their architectures)
    from edgecls.data.folders import SPLIT_NAMES
    from edgecls.deploy.platforms import DEVICE_TARGETS
    from edgecls.export.onnx_export import EXPORTERS
    from edgecls.export.quant.grading.decisive import AGREEMENT_ON
    from edgecls.models.registry import ARCHITECTURES
    from edgecls.runtime.bench.benchmark import SPIN_MODES
    from edgecls.runtime.contract.model_contract import (
        COLOR_ORDERS,
        INTERPOLATIONS,
        JPEG_DECODES,
        RESIZE_MODES,
        ModelContract,
    )
    from edgecls.training.config import BATCHNORM_MODES, OPTIMIZERS

    assert sorted(_values(choices.Arch)) == sorted(ARCHITECTURES)
    assert _values(choices.Optimizer) == list(OPTIMIZERS)
    assert _values(choices.Batchnorm) == list(BATCHNORM_MODES)
    assert _values(choices.Exporter) == list(EXPORTERS)
    assert _values(choices.Split) == [*SPLIT_NAMES, "all"]
    assert _values(choices.Spin) == list(SPIN_MODES)
    assert _values(choices.ResizeMode) == list(RESIZE_MODES)
    assert _values(choices.Interpolation) == list(INTERPOLATIONS)
    assert _values(choices.ColorOrder) == list(COLOR_ORDERS)
    assert _values(choices.JpegDecode) == list(JPEG_DECODES)
    output_kind = typing.get_type_hints(ModelContract)["output_kind"]
    assert _values(choices.OutputKind) == list(typing.get_args(output_kind))
    assert _values(choices.AgreementOn) == list(AGREEMENT_ON)
    assert _values(choices.Platform) == list(DEVICE_TARGETS)
