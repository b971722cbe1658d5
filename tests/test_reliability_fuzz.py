"""Property-based fuzzing of the decode -> coerce -> preprocess path (hypothesis).

The property everywhere: the call returns a value of exactly the promised shape and dtype, or raises an
:class:`EdgeclsError` subclass with a one-line message. Never another exception, never a crash, never NaN.

Each test runs ``EDGECLS_FUZZ_EXAMPLES`` examples (default 300, so the suite stays fast); the figures in
docs/RELIABILITY.md come from one run with ``EDGECLS_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fixtures_fuzz import EXAMPLES, SEEDS, mutated_images
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ContractError, EdgeclsError, ImageDecodeError
from edgecls.runtime.images.decode import decode_bytes, to_bgr_uint8
from edgecls.runtime.inference.preprocess import preprocess, preprocess_batch

# Numeric overflow (a float32 cast to inf, NaN arithmetic) counts as a failure, not a warning.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_image(out: Any, expect_hw: tuple[int, int] | None = None) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] >= 1 and out.shape[1] >= 1
    assert out.flags.c_contiguous
    if expect_hw is not None:
        assert out.shape[:2] == expect_hw


def _check_error(e: EdgeclsError, name: str) -> None:
    message = str(e)
    assert message.startswith(name) and "\n" not in message, message


def _image_or_named_error(call, name: str, ok: str, expect_hw=None) -> None:
    """``call()`` returns a proper BGR image (event ``ok``) or raises ImageDecodeError naming ``name``."""
    try:
        out = call()
    except ImageDecodeError as e:
        event("named error")
        _check_error(e, name)
    else:
        event(ok)
        _check_image(out, expect_hw() if expect_hw else None)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), mutated_images()))
def test_decode_bytes_returns_an_image_or_a_named_error(data: bytes) -> None:
    _image_or_named_error(lambda: decode_bytes(data, "fuzz.bin"), "fuzz.bin", "decoded")


_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.uint64, np.float16,
           np.float32, np.float64, np.bool_, np.complex64, np.dtype(">u2"), np.dtype(">f4"),
           np.dtype("<M8[s]")]


@st.composite
def odd_arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays of any rank 0-4 (sides 0-9), many dtypes and all values, sometimes a strided/reversed view."""
    dtype = draw(st.sampled_from(_DTYPES))
    side = st.integers(1, 9)
    shape = draw(st.one_of(  # image-like shapes half the time, anything else the other half
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9),
        st.tuples(side, side),
        st.tuples(side, side, st.sampled_from([1, 2, 3, 4])),
    ))
    arr = draw(hnp.arrays(dtype, shape))
    view = draw(st.sampled_from(["as_is", "reversed", "transposed", "strided"]))
    if arr.ndim >= 2 and view == "reversed":
        arr = arr[::-1, ::-1]
    elif arr.ndim >= 2 and view == "transposed":
        arr = arr.swapaxes(0, 1)
    elif arr.ndim >= 1 and view == "strided":
        arr = arr[::2]
    return arr


@FUZZ
@given(image=st.one_of(odd_arrays(), st.none(), st.text(max_size=5),
                       st.lists(st.integers(0, 255), max_size=6)))
def test_to_bgr_uint8_coerces_or_names_the_problem(image: Any) -> None:
    _image_or_named_error(lambda: to_bgr_uint8(image, "frame 7"), "frame 7", "coerced",
                          expect_hw=lambda: tuple(image.shape[:2]))


_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-3, 3),
                    st.sampled_from([0.0, 1e-300]))


@st.composite
def contract_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plausible contracts with one or two fields pushed to odd or invalid values."""
    size = st.one_of(st.integers(1, 48), st.integers(-2, 0), st.integers(10**5, 10**7))
    fields: dict[str, Any] = {
        "labels": draw(st.one_of(st.lists(st.text(max_size=4), min_size=0, max_size=5), st.text(max_size=4))),
        "input_size": (draw(size), draw(size)),
        "color_order": draw(st.sampled_from(["RGB", "BGR", "rgb", "XYZ"])),
        "resize_mode": draw(st.sampled_from(["stretch", "shorter_side_crop", "pad"])),
        "crop_fraction": draw(st.one_of(st.floats(0.05, 1.0), _FLOATS)),
        "interpolation": draw(st.sampled_from(["nearest", "linear", "cubic", "area", "lanczos"])),
        "scale": draw(st.one_of(st.just(1 / 255), st.just(1.0), _FLOATS)),
        "mean": tuple(draw(st.one_of(st.floats(0, 1), _FLOATS)) for _ in range(3)),
        "std": tuple(draw(st.one_of(st.floats(0.01, 1), _FLOATS)) for _ in range(3)),
    }
    # Make most contracts valid so preprocessing itself gets exercised, not only validation.
    keep = draw(st.sets(st.sampled_from(sorted(fields)), max_size=2))
    sane = {"labels": ["a", "b"], "input_size": (draw(st.integers(1, 48)), draw(st.integers(1, 48))),
            "color_order": "RGB", "resize_mode": fields["resize_mode"] if fields["resize_mode"] != "pad" else
            "stretch", "crop_fraction": 0.875, "interpolation": "linear", "scale": 1 / 255,
            "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    return {k: fields[k] if k in keep else sane[k] for k in fields}


@FUZZ
@given(fields=contract_fields(),
       image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80), st.just(3))))
def test_preprocess_with_random_contracts(fields: dict[str, Any], image: np.ndarray) -> None:
    try:
        contract = ModelContract(**fields)
    except ContractError as e:
        event("contract refused")
        assert str(e).startswith("invalid model contract") and "\n" not in str(e)
        return
    event("preprocessed")
    h, w = contract.input_size
    out = preprocess(image, contract)
    assert out.dtype == np.float32 and out.shape == (3, h, w)
    assert np.isfinite(out).all()
    assert np.array_equal(preprocess_batch([image, image], contract)[1], out)


@FUZZ
@given(image=odd_arrays())
def test_preprocess_takes_any_array_the_coercion_takes(image: np.ndarray) -> None:
    contract = ModelContract(labels=("a", "b"), input_size=(8, 6), resize_mode="shorter_side_crop")
    try:
        out = preprocess(image, contract)
    except ImageDecodeError as e:
        event("named error")
        _check_error(e, "<array>")
    else:
        event("preprocessed")
        assert out.dtype == np.float32 and out.shape == (3, 8, 6) and np.isfinite(out).all()


@FUZZ
@given(text=st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.dictionaries(st.text(max_size=12),
                    st.one_of(st.none(), st.integers(), st.text(max_size=5),
                              st.lists(st.integers(), max_size=4)),
                    max_size=6).map(repr),
))
def test_contract_json_parsing_never_crashes(text: str) -> None:
    import json

    candidates = [text]
    try:  # also feed the same junk as a JSON object with the required keys, so field checks run
        candidates.append(json.dumps({"labels": text, "input_size": [1, text]}))
    except (TypeError, ValueError):
        pass
    for candidate in candidates:
        try:
            ModelContract.from_json(candidate)
        except ContractError as e:
            assert "\n" not in str(e)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_file_decodes(seed: int) -> None:
    """The mutation seeds themselves are valid, so mutations start from real files."""
    _check_image(decode_bytes(SEEDS[seed], "seed"))
