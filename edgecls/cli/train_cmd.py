"""``edgecls train``: parses the flags into one TrainConfig for edgecls.training.resume.train_or_resume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.choices import Arch, Batchnorm, Optimizer
from edgecls.cli.options import TrustCheckpointOpt, contract_flags_for
from edgecls.runtime.contract.options import ContractOptions

TRAIN_HELP = """Train a CNN classifier on an ImageFolder tree or a built-in set.

DATA is a folder with one sub-folder of images per class (optionally under train/ val/ test/; otherwise a
seeded stratified split is made and saved as split.json), or builtin:shapes / builtin:digits.

The run directory gets best.pt, last.pt (for --resume), config.json, contract.json (the preprocessing
contract export will embed), history.csv/json, curves.png and eval/ (test metrics, confusion matrix).

The contract flags set the preprocessing the model is trained with (and that export embeds). Each one not given
comes from the pretrained weights (--pretrained: their size, mean/std, interpolation and crop), else from the
data: 32 px, stretch and area for built-in sets; 224 px, shorter_side_crop and linear for folders.

Examples:
  edgecls train builtin:digits --out runs/digits
  edgecls train my_photos --input-size 160 --resize-mode shorter_side_crop \\
      --out runs/photos

Fine-tune a pretrained network (a few hundred photos are enough):
  edgecls train my_photos --arch efficientnet_lite0 --pretrained --epochs 6 \\
      --out runs/photos
  edgecls train my_photos --model my_net.py:build --pretrained --head fc

Distributed:
  torchrun --nproc-per-node 2 -m edgecls train DATA --out runs/ddp
"""

_MODEL = "Network"
_SCHEDULE = "Optimisation and early stopping"
_FINETUNE = "Fine-tuning"
_AUGMENT = "Augmentation"


@contract_flags_for(
    "input_size", "mean", "std", "scale", "resize_mode", "crop_fraction", "interpolation", "color_order", "jpeg_decode"
)
def train_command(
    data: Annotated[str, typer.Argument(help="ImageFolder path, or builtin:shapes / builtin:digits.")],
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/exp"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last.pt (with its saved config).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seeds the split, initialisation, order and augmentation.")] = 0,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes (0: load in the main process).")] = 0,
    arch: Annotated[Arch, typer.Option(help="Built-in architecture.", rich_help_panel=_MODEL)] = Arch.mobilenetv2,
    model: Annotated[
        str | None,
        typer.Option(
            help="Your own torch network, FILE.py:FACTORY or module:FACTORY, instead of --arch. Runs FILE.py (or "
            "imports the module) as Python code, by design: give only code you trust.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Maximum epochs (early stopping may end sooner).", rich_help_panel=_SCHEDULE)
    ] = 30,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images per training step.", rich_help_panel=_SCHEDULE)
    ] = 64,
    optimizer: Annotated[Optimizer, typer.Option(help="Optimizer.", rich_help_panel=_SCHEDULE)] = Optimizer.adamw,
    lr: Annotated[
        float | None,
        typer.Option(help="Peak learning rate (default 2e-3 AdamW, 0.05 SGD).", rich_help_panel=_SCHEDULE),
    ] = None,
    label_smoothing: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Label smoothing of the loss.", rich_help_panel=_SCHEDULE)
    ] = 0.1,
    patience: Annotated[
        int,
        typer.Option(
            min=1,
            help="Early stop after this many epochs without validation improvement (higher accuracy, or the "
            "same accuracy at a lower validation loss).",
            rich_help_panel=_SCHEDULE,
        ),
    ] = 8,
    min_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Early stopping cannot fire before this epoch (default 12 when fine-tuning, where a small "
            "validation set saturates at once; 0 from scratch).",
            rich_help_panel=_SCHEDULE,
        ),
    ] = None,
    batchnorm: Annotated[
        Batchnorm | None,
        typer.Option(
            help="frozen: keep the pretrained statistics (default when fine-tuning); reestimate: recompute them "
            "before each validation (default from scratch); train: moving average only.",
            rich_help_panel=_SCHEDULE,
        ),
    ] = None,
    pretrained: Annotated[
        bool,
        typer.Option(
            "--pretrained",
            help="Fine-tune from ImageNet weights (efficientnet_lite0: from the pretrained extra, no network; "
            "mobilenetv2, resnet18: torchvision's, downloaded once into torch.hub's cache) or, with --model, from "
            "the model's own weights. The contract's preprocessing and the default --input-size come from them.",
            rich_help_panel=_FINETUNE,
        ),
    ] = False,
    weights: Annotated[
        Path | None,
        typer.Option(help="A local copy of the pretrained weights (a state dict file); implies --pretrained.",
                     rich_help_panel=_FINETUNE),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option(help="--model's classifier module to replace (default: its last nn.Linear), e.g. fc.",
                     rich_help_panel=_FINETUNE),
    ] = None,
    head_epochs: Annotated[
        float | None,
        typer.Option(min=0.0, help="Epochs training only the new head (default 1).", rich_help_panel=_FINETUNE),
    ] = None,
    backbone_lr_scale: Annotated[
        float,
        typer.Option(min=0.0, help="The backbone's learning rate = this x the head's.", rich_help_panel=_FINETUNE),
    ] = 0.1,
    hflip: Annotated[
        bool | None, typer.Option("--hflip/--no-hflip", help="Random horizontal flips.", rich_help_panel=_AUGMENT)
    ] = None,
    noise: Annotated[
        float | None, typer.Option(help="Gaussian noise std (0-255 scale), 0 = off.", rich_help_panel=_AUGMENT)
    ] = None,
    jitter: Annotated[
        float | None, typer.Option(help="Colour jitter strength, 0 = off.", rich_help_panel=_AUGMENT)
    ] = None,
    trust_checkpoint: TrustCheckpointOpt = False,
    *,
    contract_options: ContractOptions,
) -> None:
    from edgecls.training.config import TrainConfig, square_input_size
    from edgecls.training.resume import AugmentOverrides, train_or_resume

    config = TrainConfig(
        data=data,
        arch=arch.value,
        epochs=epochs,
        input_size=square_input_size(contract_options.input_size),  # square only: HxW with H != W is refused
        batch_size=batch_size,
        out=str(out),
        seed=seed,
        optimizer=optimizer.value,  # type: ignore[arg-type]  (a value of OPTIMIZERS: tests/test_cli_vocabulary.py)
        lr=lr,
        label_smoothing=label_smoothing,
        patience=patience,
        min_epochs=min_epochs,
        workers=workers,
        resume=resume,
        pretrained=pretrained or weights is not None,
        weights=str(weights) if weights is not None else None,
        model=model,
        head=head,
        head_epochs=head_epochs,
        backbone_lr_scale=backbone_lr_scale,
        batchnorm=batchnorm.value if batchnorm else None,  # type: ignore[arg-type]  (a BATCHNORM_MODES value)
        **{k: v for k, v in contract_options.given().items() if k != "input_size"},
    )
    train_or_resume(
        config, AugmentOverrides(hflip=hflip, noise_std=noise, jitter=jitter), trust_checkpoint=trust_checkpoint
    )


def register(app: typer.Typer) -> None:
    app.command("train", help=TRAIN_HELP)(train_command)
