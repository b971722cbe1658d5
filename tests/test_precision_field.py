"""``--precision`` is a typed field from the command line to the engine (``Precision``), passed explicitly; a
provider option named ``precision`` is the provider's, as every other ``--provider-option`` is."""

from __future__ import annotations

import pytest
from fixtures_cli import cli_in_process

from edgecls.runtime.errors import ProviderError
from edgecls.runtime.providers.precision import Precision
from edgecls.runtime.run.main import RunOptions, load_classifier


def test_a_provider_option_called_precision_goes_to_the_provider(runtime_models, runtime_images, capsys) -> None:
    image = str(runtime_images.good[0])
    code, out, err = cli_in_process(["run", str(runtime_models.cnn), image, "--provider", "cpu", "--json",
                                     "--provider-option", "precision=bf16"], capsys)
    assert code == 0 and len(out.splitlines()) == 1, err  # onnxruntime's CPU EP takes it (and ignores it)
    code, _, err = cli_in_process(["run", str(runtime_models.cnn), image, "--provider", "cpu",
                                   "--precision", "bf16"], capsys)
    assert code == 2 and err.startswith("error: --precision bf16 is an OpenVINO setting")


def test_run_options_carry_the_precision_to_the_session(runtime_models) -> None:
    with pytest.raises(ProviderError, match="--precision bf16 is an OpenVINO setting"):
        load_classifier(RunOptions(runtime_models.cnn, provider="cpu", precision=Precision.bf16))
    clf = load_classifier(RunOptions(runtime_models.cnn, provider="cpu", precision=Precision.f32))
    assert clf.info.precision is None  # onnxruntime: nothing to read back; f32 is what it runs anyway


def test_the_command_line_takes_the_members_and_the_library_the_engines_spellings(runtime_models, capsys) -> None:
    assert [Precision.parse(s) for s in ("f32", "FP16", "bfloat16", Precision.f16)] == [
        Precision.f32, Precision.f16, Precision.bf16, Precision.f16]
    with pytest.raises(ProviderError, match="choose f32, bf16, f16"):
        Precision.parse("fp64")
    code, _, err = cli_in_process(["info", str(runtime_models.cnn), "--precision", "fp16"], capsys)
    assert code == 2 and "'fp16' is not one of 'f32', 'bf16', 'f16'" in " ".join(err.replace("│", " ").split())
