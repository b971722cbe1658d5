"""The closed sets of values the command line takes, as enums: typer lists them in ``--help`` and refuses any other
value with one line.

Each set belongs to a library module that ``edgecls --help`` must not import (torch, OpenCV), so the values are
written here; tests/test_cli_vocabulary.py checks each enum against the library's own list. Sets the runtime
keeps in light modules (the contract's, OpenVINO's precision) are built from them, not copied.
"""

from __future__ import annotations

from enum import Enum

from edgecls.deploy.platforms import DEVICE_TARGETS
from edgecls.runtime.contract.model_contract import COLOR_ORDERS, INTERPOLATIONS, JPEG_DECODES, RESIZE_MODES
from edgecls.runtime.cpu_isa import TARGETS


class Choice(str, Enum):
    """A value typed on the command line: prints as itself (``sgd``, not ``Optimizer.sgd``)."""

    def __str__(self) -> str:
        return self.value


def _choices(name: str, values: tuple[str, ...], doc: str) -> type[Choice]:
    choice = Choice(name, {v: v for v in values})  # type: ignore[call-overload]  (the functional Enum API)
    choice.__doc__ = doc
    return choice


ResizeMode = _choices("ResizeMode", RESIZE_MODES, "runtime.contract.model_contract.RESIZE_MODES")
Interpolation = _choices("Interpolation", INTERPOLATIONS, "runtime.contract.model_contract.INTERPOLATIONS")
ColorOrder = _choices("ColorOrder", COLOR_ORDERS, "runtime.contract.model_contract.COLOR_ORDERS")
JpegDecode = _choices("JpegDecode", JPEG_DECODES, "runtime.contract.model_contract.JPEG_DECODES")


OutputKind = _choices("OutputKind", ("logits", "probabilities"), "ModelContract.output_kind")
#: The built-in architectures (--model brings your own).
Arch = _choices("Arch", ("cnn", "mobilenetv2", "mobilenetv2_050", "efficientnet_lite0", "resnet10", "resnet18"),
                "edgecls.models.registry.ARCHITECTURES")
Optimizer = _choices("Optimizer", ("adamw", "sgd"), "edgecls.training.config.OPTIMIZERS")
Batchnorm = _choices("Batchnorm", ("frozen", "reestimate", "train"), "edgecls.training.config.BATCHNORM_MODES")
Exporter = _choices("Exporter", ("auto", "dynamo", "torchscript"), "edgecls.export.onnx_export.EXPORTERS")
Split = _choices("Split", ("train", "val", "test", "all"), "edgecls.data.eval_set: a split's name, or all of it")
Spin = _choices("Spin", ("off", "on", "both"), "edgecls.runtime.bench.benchmark.SPIN_MODES")
# int8 (cli/int8_options.py) and pack
AgreementOn = _choices("AgreementOn", ("decisive", "all"), "edgecls.export.quant.grading.decisive.AGREEMENT_ON: "
                       "where unlabelled validation images grade agreement")
Reconstruct = _choices("Reconstruct", ("auto", "on", "off"), "edgecls.export.quant.repairs.reconstruct: when an "
                       "int8 file's layers are reconstructed")
#: The CPU an int8 file is made for: ``auto`` or one of runtime.cpu_isa.TARGETS (built from them: they cannot drift).
Int8Target = _choices("Int8Target", ("auto", *TARGETS), "auto or edgecls.runtime.cpu_isa.TARGETS")
#: The platforms pack makes bundles for (built from edgecls.deploy.platforms.DEVICE_TARGETS).
Platform = _choices("Platform", tuple(DEVICE_TARGETS), "edgecls.deploy.platforms.DEVICE_TARGETS")
