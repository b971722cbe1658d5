"""TrainConfig: every knob of a training run; saved as config.json and inside every checkpoint.

Field names follow the contract where they set it (``input_size``, ``mean``, ``std``, ``scale``, ``resize_mode``,
``crop_fraction``, ``interpolation``, ``color_order``, ``jpeg_decode``): the flag ``--input-size`` fills
``input_size``, which becomes ``ModelContract.input_size``. None means "not given": the pretrained weights' value
(their architecture spec's partial contract), else the data's default (training/run_contract.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from edgecls.data.augment import AugmentConfig
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.options import parse_input_size
from edgecls.runtime.errors import EdgeclsError

OPTIMIZERS = ("adamw", "sgd")
BATCHNORM_MODES = ("frozen", "reestimate", "train")
#: Fine-tuning's default ``min_epochs``: pretrained features make a small validation set (e.g. 8 images per
#: class) saturate at 100% from the first epoch, before the unfrozen backbone has adapted to the data.
FINETUNE_MIN_EPOCHS = 12
#: config.json files written before the field took the contract's name.
_RENAMED = {"img_size": "input_size"}
#: 2: contract fields are None unless given, and given ones win over the pretrained weights' (version 1, unmarked:
#: mean/std were always stored, ImageNet's by default, and the weights' preprocessing won over the config's).
CONFIG_VERSION = 2
_WEIGHTS_WON_IN_V1 = ("mean", "std", "interpolation", "resize_mode")


def square_input_size(text: str | int | None) -> int | None:
    """``--input-size`` for training: ``S`` or ``SxS``. The built-in networks and the training pipeline make
    square inputs only (random resized crops to S x S), so ``HxW`` with H != W is refused."""
    if text is None:
        return None
    height, width = parse_input_size(text)
    if height != width:
        raise EdgeclsError(f"--input-size {text}: training makes square inputs; give one size S (e.g. {height})")
    return height


@dataclass(frozen=True)
class TrainConfig:
    data: str  # ImageFolder path or builtin:shapes / builtin:digits
    arch: str = "mobilenetv2"
    epochs: int = 30
    input_size: int | None = None  # square side in px; None: the weights' size, else 32 built-in / 224 folders
    batch_size: int = 64
    out: str = "runs/exp"
    seed: int = 0
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float | None = None  # None: 2e-3 for AdamW, 0.05 for SGD (scaled by batch_size / 64)
    weight_decay: float | None = None  # None: 0.05 for AdamW, 5e-4 for SGD
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    patience: int = 8  # early stopping: epochs without improvement (val accuracy, ties broken by val loss)
    # Early stopping cannot fire before this many epochs. None: FINETUNE_MIN_EPOCHS when fine-tuning (a small
    # validation set saturates at 100% from the first epoch, long before the backbone has adapted), 0 from scratch.
    min_epochs: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    workers: int = 0  # DataLoader worker processes; 0 decodes in the main process
    # The contract's preprocessing (None: the pretrained weights' value, else the data's default).
    resize_mode: str | None = None  # None: stretch for built-in sets, shorter_side_crop for folders
    interpolation: str | None = None  # None: area for built-in sets (pure downscaling), linear for folders
    mean: tuple[float, float, float] | None = None  # None: ImageNet's
    std: tuple[float, float, float] | None = None  # None: ImageNet's
    crop_fraction: float | None = None  # None: 0.875
    scale: float | None = None  # None: 1/255
    color_order: str | None = None  # None: RGB
    jpeg_decode: str | None = None  # None: reduced
    augment: AugmentConfig | None = None  # None: data-dependent default (no flips for digits)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    max_train_batches: int | None = None  # cap per epoch (tests, smoke runs)
    # Transfer learning (edgecls.training.finetune): start from pretrained weights and fine-tune.
    pretrained: bool = False  # the architecture's ImageNet weights, or --model's own weights
    weights: str | None = None  # a local copy of those weights (implies pretrained)
    model: str | None = None  # a user's FILE.py:FACTORY or module:FACTORY instead of --arch
    head: str | None = None  # --model's classifier module to replace (None: its last nn.Linear)
    head_epochs: float | None = None  # backbone frozen, head only; None: 1 when fine-tuning, 0 from scratch
    backbone_lr_scale: float = 0.1  # fine-tuning: the backbone's learning rate = this x the head's
    # frozen: BatchNorm keeps its running statistics (and normalises with them) while fine-tuning;
    # reestimate: statistics recomputed over training images before every validation; train: PyTorch's EMA only.
    # None: frozen when fine-tuning, reestimate from scratch.
    batchnorm: Literal["frozen", "reestimate", "train"] | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise EdgeclsError(f"--optimizer must be {' or '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.batchnorm not in (None, *BATCHNORM_MODES):
            raise EdgeclsError(f"--batchnorm must be {', '.join(BATCHNORM_MODES)}, got {self.batchnorm!r}")
        if self.head is not None and self.model is None:
            raise EdgeclsError(
                "--head names the classifier of --model FILE.py:FACTORY; built-in architectures know theirs"
            )
        if self.input_size is not None and self.input_size < 8:
            raise EdgeclsError(f"--input-size must be at least 8 px, got {self.input_size}")
        # The contract flags fail here, before the data is read, with ModelContract's own rules and words.
        ModelContract(labels=("a", "b"), **self.contract_fields() | {"input_size": (8, 8)})

    @property
    def fine_tuning(self) -> bool:
        return self.pretrained or self.weights is not None

    def resolved_head_epochs(self) -> float:
        return self.head_epochs if self.head_epochs is not None else (1.0 if self.fine_tuning else 0.0)

    def resolved_min_epochs(self) -> int:
        if self.min_epochs is not None:
            return self.min_epochs
        return min(self.epochs, FINETUNE_MIN_EPOCHS) if self.fine_tuning else 0

    def resolved_batchnorm(self) -> str:
        return self.batchnorm or ("frozen" if self.fine_tuning else "reestimate")

    def resolved_lr(self) -> float:
        base = self.lr if self.lr is not None else (2e-3 if self.optimizer == "adamw" else 0.05)
        return base if self.lr is not None else base * self.batch_size / 64

    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.05 if self.optimizer == "adamw" else 5e-4

    def resolved_augment(self) -> AugmentConfig:
        if self.augment is not None:
            return self.augment
        if self.data == "builtin:digits":  # a flipped digit is another symbol (or none)
            return AugmentConfig(crop_scale=(0.75, 1.0), hflip=False, jitter=0.2, noise_std=4.0)
        if self.data == "builtin:shapes":  # shapes may touch the border: a deep crop would cut a square into a triangle
            return AugmentConfig(crop_scale=(0.8, 1.0), hflip=True, jitter=0.2, noise_std=4.0)
        return AugmentConfig()

    def contract_fields(self) -> dict[str, Any]:
        """The contract fields this config sets (given ones only), as ModelContract keywords."""
        names = ("mean", "std", "scale", "resize_mode", "crop_fraction", "interpolation", "color_order", "jpeg_decode")
        given = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.input_size is not None:
            given["input_size"] = (self.input_size, self.input_size)
        return given

    def to_dict(self) -> dict[str, Any]:
        d = {"config_version": CONFIG_VERSION, **dataclasses.asdict(self)}
        d["augment"] = dataclasses.asdict(self.resolved_augment())
        d["head_epochs"] = self.resolved_head_epochs()  # the recipe as run, so --resume/export need no flags
        d["batchnorm"] = self.resolved_batchnorm()
        d["min_epochs"] = self.resolved_min_epochs()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A saved config (config.json, a checkpoint's train_config), from any edgecls version."""
        d = {_RENAMED.get(k, k): v for k, v in d.items()}
        fine_tuned = bool(d.get("pretrained") or d.get("weights")) and not d.get("model")
        if int(d.get("config_version", 1)) < 2 and fine_tuned:
            # Version 1 stored these but the weights' preprocessing won: keep what the run really fed.
            d = {k: v for k, v in d.items() if k not in _WEIGHTS_WON_IN_V1}
        aug = d.get("augment")
        if isinstance(aug, dict):
            d["augment"] = AugmentConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
            )
        for key in ("mean", "std"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
