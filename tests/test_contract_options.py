"""One contract vocabulary: the flags are ModelContract's field names, parsed once into a contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgecls.cli.options import CONTRACT_FLAGS, contract_flags
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.options import ContractOptions, contract_from_options, flag
from edgecls.runtime.errors import ContractError
from edgecls.runtime.images.files import labelled_images, walk_images
from edgecls.runtime.inference.scores import softmax, to_probabilities, top1_accuracy, top1_agreement, top1_with_score


def test_every_contract_flag_is_a_contract_field_and_every_user_field_has_a_flag() -> None:
    user_fields = {f.name for f in dataclasses.fields(ModelContract)} - {"layout", "schema_version", "provenance"}
    assert set(CONTRACT_FLAGS) == user_fields
    assert {f.name for f in dataclasses.fields(ContractOptions)} == user_fields


def test_contract_from_options_parses_each_spelling(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\n\ndog\n", encoding="utf-8")
    c = contract_from_options(
        ContractOptions(labels=str(labels), input_size="224x160", mean="0.5", std="0.25,0.5,1", color_order="bgr")
    )
    assert c.labels == ("cat", "dog") and c.input_size == (224, 160)
    assert c.mean == (0.5, 0.5, 0.5) and c.std == (0.25, 0.5, 1.0) and c.color_order == "BGR"
    base = ModelContract(labels=("a", "b", "c"), input_size=(32, 32))
    over = contract_from_options(ContractOptions(input_size="64", crop_fraction=1.0), base, {"note": "x"})
    assert over.labels == base.labels and over.input_size == (64, 64) and over.crop_fraction == 1.0
    assert over.provenance == {"note": "x"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ContractOptions(labels="a,b"), "--input-size"),
        (ContractOptions(input_size="32"), "--labels"),
        (ContractOptions(labels="a,b", input_size="32x"), "--input-size must be S or HxW"),
        (ContractOptions(labels="a,b", input_size="32", mean="1,2"), "--mean needs 3"),
        (ContractOptions(labels="a,b", input_size="32", resize_mode="squash"),
         "resize_mode: must be one of stretch, shorter_side_crop, got 'squash'"),
        (ContractOptions(labels="nofile", input_size="32"), "no such file"),
    ],
)
def test_bad_options_name_the_flag(options: ContractOptions, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        contract_from_options(options)


def test_contract_flags_decorator_gives_a_command_every_flag() -> None:
    app = typer.Typer()
    seen: list[ContractOptions] = []

    @app.command()
    @contract_flags
    def cmd(model: Annotated[str, typer.Argument()], *, contract_options: ContractOptions) -> None:
        seen.append(contract_options)

    result = CliRunner().invoke(app, ["m.onnx", "--labels", "a,b", "--crop-fraction", "0.9", "--jpeg-decode", "full"])
    assert result.exit_code == 0, result.output
    assert seen == [ContractOptions(labels="a,b", crop_fraction=0.9, jpeg_decode="full")]
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for name in CONTRACT_FLAGS:
        assert flag(name) in help_text


def test_scores_are_one_implementation() -> None:
    logits = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 0.0]], dtype=np.float32)
    probs = softmax(logits.copy())
    assert np.allclose(probs.sum(axis=1), 1.0) and probs.argmax(1).tolist() == [1, 0]
    idx, score = top1_with_score(logits, "logits")
    assert idx.tolist() == [1, 0] and np.allclose(score, probs.max(axis=1))
    assert np.array_equal(to_probabilities(probs, "probabilities"), probs)
    assert top1_accuracy(logits, np.array([1, 1])) == 0.5
    assert top1_agreement(logits, probs) == 1.0 and top1_agreement(logits, -logits) == 0.0


def test_image_walk_is_sorted_skips_hidden_and_labels_by_first_folder(tmp_path: Path) -> None:
    for rel in ("b/2.png", "b/sub/1.jpg", "a/1.png", "a/.hidden.png", ".git/x.png", "loose.jpg", "a/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)] == [
        "a/1.png",
        "b/2.png",
        "b/sub/1.jpg",
        "loose.jpg",
    ]
    assert [(p.name, c) for p, c in labelled_images(tmp_path)] == [
        ("loose.jpg", None),
        ("1.png", "a"),
        ("2.png", "b"),
        ("1.jpg", "b"),
    ]
