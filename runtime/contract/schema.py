"""The model contract's JSON schema, checked by msgspec before any field is used.

A contract arrives from files other people make (an ONNX model's metadata, a checkpoint), so every field's type,
range and size is checked here, declaratively, and a bad one is refused with one line naming the field
(``input_size[1]: expected int >= 1``). Two limits run before parsing, because the parser itself is what they
protect: the text's length (:data:`MAX_CONTRACT_CHARS`) and the nesting depth of its brackets
(:data:`MAX_NESTING`; 100k nested lists would otherwise exhaust the parser's recursion).

Why msgspec: the edge runtime reads a contract on every ``edgecls run`` cold start, and msgspec is a small C
extension whose import cost about 1/7 of jsonschema's or pydantic's (median 19 ms against 133 and 141 ms, 9
alternating cold imports each on a 2-core Xeon at load average 18); it decodes and validates in one pass, names
the failing field by path, and ships manylinux wheels for x86-64 and aarch64 (cp311 included).
Cross-field rules (unique labels, float32-finite normalisation) stay in :class:`ModelContract`.

Text is printed: labels on every result row, provenance by ``edgecls info`` and ``selftest``. A control character
(C0, DEL, C1: ESC sequences, newlines) in a label or in any string of ``provenance`` (keys included) is refused
like any other malformed field; what is accepted is still shown through :mod:`edgecls.runtime.terminal.text`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
import numpy as np
from msgspec import Meta

from edgecls.runtime.errors import ContractError

#: The schema's version, written into every contract. Bump when a field changes meaning: readers refuse newer
#: versions with a clear message.
SCHEMA_VERSION = 1
#: Longest contract text read (characters): 100k labels of 40 characters fit with room to spare.
MAX_CONTRACT_CHARS = 8 * 2**20
#: Deepest nesting of objects/arrays (the contract itself nests 3 deep; provenance a few more).
MAX_NESTING = 32
#: Most labels (ImageNet-21k has 21,841 classes) and the longest label.
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1_000
#: Bounds that keep preprocessing's memory and arithmetic finite for any contract a file may carry: no
#: classifier consumes more than 8192 px a side, and timm/torchvision crop fractions are 0.5-1.0.
MAX_INPUT_SIDE = 8192
MIN_CROP_FRACTION = 0.25
#: Magnitude bound of scale/mean/std: finite in float32, where preprocessing computes (NaN fails it too).
MAX_MAGNITUDE = 1e30

_Side = Annotated[int, Meta(ge=1, le=MAX_INPUT_SIDE)]
_Finite = Annotated[float, Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
_Positive = Annotated[float, Meta(gt=0, le=MAX_MAGNITUDE)]
#: Unicode category Cc: C0 controls, DEL and C1 controls (a regex msgspec checks, and the provenance walk below).
CONTROL_CHARACTER = r"[\x00-\x1f\x7f-\x9f]"
_NO_CONTROL = f"\\A[^{CONTROL_CHARACTER[1:-1]}]*\\Z"  # \Z: "$" would let a final newline through
_Label = Annotated[str, Meta(max_length=MAX_LABEL_CHARS, pattern=_NO_CONTROL)]


class ContractDoc(msgspec.Struct, kw_only=True):
    """The contract as JSON holds it; defaults are those of :class:`ModelContract` (unknown keys are ignored)."""

    labels: Annotated[list[_Label], Meta(min_length=2, max_length=MAX_LABELS)]
    input_size: Annotated[list[_Side], Meta(min_length=2, max_length=2)]  # (height, width)
    layout: Literal["NCHW"] = "NCHW"
    color_order: Literal["RGB", "BGR"] = "RGB"
    scale: _Positive = 1.0 / 255.0
    mean: Annotated[list[_Finite], Meta(min_length=3, max_length=3)] = msgspec.field(
        default_factory=lambda: [0.485, 0.456, 0.406]
    )
    std: Annotated[list[_Positive], Meta(min_length=3, max_length=3)] = msgspec.field(
        default_factory=lambda: [0.229, 0.224, 0.225]
    )
    resize_mode: Literal["stretch", "shorter_side_crop"] = "shorter_side_crop"
    crop_fraction: Annotated[float, Meta(ge=MIN_CROP_FRACTION, le=1.0)] = 0.875
    interpolation: Literal["nearest", "linear", "cubic", "area"] = "linear"
    output_kind: Literal["logits", "probabilities"] = "logits"
    jpeg_decode: Literal["reduced", "full"] = "reduced"
    schema_version: Annotated[int, Meta(ge=1)] = SCHEMA_VERSION
    provenance: dict[str, Any] = msgspec.field(default_factory=dict)


# msgspec says "Expected `int` >= 1 - at `$.input_size[1]`"; the refusal leads with the field instead.
_AT = re.compile(r"^(?P<what>.*?) - at `\$\.?(?P<field>[^`]*)`$")
# The allowed values of each enumerated field, which msgspec's "Invalid enum value" does not list.
_CHOICES: dict[str, tuple[str, ...]] = {
    name: get_args(hint) for name, hint in get_type_hints(ContractDoc).items() if get_origin(hint) is Literal
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def _refusal(error: msgspec.ValidationError | msgspec.DecodeError) -> ContractError:
    text = str(error).replace("`", "")
    m = _AT.match(str(error))
    if m:
        what, name = m.group("what").replace("`", ""), m.group("field")
        if what.startswith("Invalid enum value") and name in _CHOICES:
            what = f"must be one of {', '.join(_CHOICES[name])}, got {what.rsplit(' ', 1)[-1]}"
        elif "matching regex" in what:  # the one pattern of the schema: text without control characters
            what = _CONTROL_REFUSAL
        text = f"{name or 'contract'}: {what[0].lower()}{what[1:]}"
    elif text.startswith("Object missing required field"):
        text = f"{text.rsplit(' ', 1)[-1]}: required field missing"
    return ContractError(f"invalid model contract: {text}")


def nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting in JSON ``text`` (brackets inside strings do not count)."""
    brackets = re.sub(r"[^\[\]{}]", "", _STRINGS.sub("", text)).encode()
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, np.uint8)
    # "[" and "{" open (+1), "]" and "}" close (-1); the running sum is the depth at each bracket.
    return int(np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1)).max())


def _check_size(text: str) -> None:
    if len(text) > MAX_CONTRACT_CHARS:
        raise ContractError(
            f"invalid model contract: {len(text):,} characters of JSON, more than the {MAX_CONTRACT_CHARS:,} allowed"
        )
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise ContractError(f"invalid model contract: JSON nested {depth} deep, more than the {MAX_NESTING} allowed")


def _check_version(raw: dict[str, Any]) -> None:
    """A newer schema is named as such before its fields are judged by this version's rules."""
    version = raw.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ContractError(
            f"model contract schema version {version} is newer than this edgecls understands "
            f"(field schema_version, up to {SCHEMA_VERSION}); upgrade edgecls to read this model"
        )


_CONTROL_REFUSAL = "contains a control character (escape codes, newlines and tabs are not allowed)"
_CONTROL = re.compile(CONTROL_CHARACTER)


def _text_with_control(value: Any, where: str) -> str | None:
    """The path of the first string (key or value) in ``value`` holding a control character, or None."""
    if isinstance(value, str):
        return where if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _CONTROL.search(key):
                return f"{where} (a key)"
            found = _text_with_control(item, f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _text_with_control(item, f"{where}[{i}]")
            if found:
                return found
    return None


def validate_contract_dict(raw: object) -> ContractDoc:
    """``raw`` (a dict from JSON or a checkpoint) checked against the schema; ContractError names the field."""
    if not isinstance(raw, dict):
        raise ContractError(f"invalid model contract: must be a JSON object, got {type(raw).__name__}")
    _check_version(raw)
    try:
        doc = msgspec.convert(raw, ContractDoc, strict=True)
        where = _text_with_control(doc.provenance, "provenance")
    except msgspec.ValidationError as e:
        raise _refusal(e) from None
    except RecursionError:  # a dict built in Python (not parsed from text) nested past the interpreter's limit
        raise ContractError(f"invalid model contract: nested more than the {MAX_NESTING} levels allowed") from None
    if where:
        # The key path is the file's own text: made visible, so the refusal stays one printable line.
        from edgecls.runtime.terminal.text import plain

        raise ContractError(f"invalid model contract: {plain(where)}: {_CONTROL_REFUSAL}")
    return doc


def parse_contract_json(text: str) -> ContractDoc:
    """The contract in JSON ``text``: length and nesting checked first, then parsed and validated."""
    _check_size(text)
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise ContractError(f"model contract is not valid JSON: {e}") from None
    return validate_contract_dict(raw)


def doc_fields(doc: ContractDoc) -> dict[str, Any]:
    """The validated fields as keyword arguments of :class:`ModelContract`."""
    return {name: getattr(doc, name) for name in doc.__struct_fields__}
