"""``edgecls train``: parses the flags into one TrainConfig for edgecls.training.resume.train_or_resume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import TrustCheckpointOpt, contract_flags_for
from edgecls.runtime.contract.options import ContractOptions

TRAIN_HELP = """Train a CNN classifier on an ImageFolder tree or a built-in set.

DATA is a folder with one sub-folder of images per class (optionally under train/ val/ test/; otherwise a
seeded stratified split is made and saved as split.json), or builtin:shapes / builtin:digits.

The run directory gets best.pt, last.pt (for --resume), config.json, contract.json (the preprocessing
contract export will embed), history.csv/json, curves.png and eval/ (test metrics, confusion matrix).

Example:  edgecls train builtin:digits --out runs/digits
          edgecls train my_photos --input-size 160 --resize-mode shorter_side_crop --out runs/photos

The contract flags set the preprocessing the model is trained with (and that export embeds). Each one not given
comes from the pretrained weights (--pretrained: their size, mean/std, interpolation and crop), else from the
data: 32 px, stretch and area for built-in sets; 224 px, shorter_side_crop and linear for folders.

Fine-tune a pretrained network (a few hundred photos are enough):
    edgecls train my_photos --arch efficientnet_lite0 --pretrained --epochs 6 --out runs/photos
    edgecls train my_photos --model my_net.py:build --pretrained --head fc

Distributed:  torchrun --nproc-per-node 2 -m edgecls train DATA --out runs/ddp
"""

@contract_flags_for(
    "input_size", "mean", "std", "scale", "resize_mode", "crop_fraction", "interpolation", "color_order", "jpeg_decode"
)
def train_command(
    data: Annotated[str, typer.Argument(help="ImageFolder path, or builtin:shapes / builtin:digits.")],
    arch: Annotated[
        str,
        typer.Option(
            help="Architecture: cnn, mobilenetv2, mobilenetv2_050, efficientnet_lite0, resnet10, resnet18."
        ),
    ] = "mobilenetv2",
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs (early stopping may end sooner).")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per training step.")] = 64,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/exp"),
    seed: Annotated[int, typer.Option(help="Seeds the split, initialisation, order and augmentation.")] = 0,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (default 2e-3 AdamW, 0.05 SGD).")
    ] = None,
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.1,
    patience: Annotated[
        int,
        typer.Option(
            min=1,
            help="Early stop after this many epochs without validation improvement (higher accuracy, or the "
            "same accuracy at a lower validation loss).",
        ),
    ] = 8,
    min_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Early stopping cannot fire before this epoch (default 12 when fine-tuning, where a small "
            "validation set saturates at once; 0 from scratch).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 0,
    hflip: Annotated[bool | None, typer.Option("--hflip/--no-hflip", help="Random horizontal flips.")] = None,
    noise: Annotated[float | None, typer.Option(help="Gaussian noise std (0-255 scale), 0 = off.")] = None,
    jitter: Annotated[float | None, typer.Option(help="Colour jitter strength, 0 = off.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last.pt (with its saved config).")
    ] = False,
    pretrained: Annotated[
        bool,
        typer.Option(
            "--pretrained",
            help="Fine-tune from ImageNet weights (efficientnet_lite0: from the pretrained extra, no network; "
            "mobilenetv2, resnet18: torchvision's, downloaded once into torch.hub's cache) or, with --model, from "
            "the model's own weights. The contract's preprocessing and the default --input-size come from them.",
        ),
    ] = False,
    weights: Annotated[
        Path | None,
        typer.Option(help="A local copy of the pretrained weights (a state dict file); implies --pretrained."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Your own torch network, FILE.py:FACTORY or module:FACTORY, instead of --arch. Runs FILE.py (or "
            "imports the module) as Python code, by design: give only code you trust."
        ),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option(help="--model's classifier module to replace (default: its last nn.Linear), e.g. fc."),
    ] = None,
    head_epochs: Annotated[
        float | None,
        typer.Option(min=0.0, help="Fine-tuning: epochs training only the new head (default 1)."),
    ] = None,
    backbone_lr_scale: Annotated[
        float, typer.Option(min=0.0, help="Fine-tuning: the backbone's learning rate = this x the head's.")
    ] = 0.1,
    batchnorm: Annotated[
        str | None,
        typer.Option(
            help="frozen (keep the pretrained statistics; default when fine-tuning), reestimate (recompute them "
            "before each validation; default from scratch) or train (moving average only)."
        ),
    ] = None,
    trust_checkpoint: TrustCheckpointOpt = False,
    *,
    contract_options: ContractOptions,
) -> None:
    from edgecls.training.config import TrainConfig, square_input_size
    from edgecls.training.resume import AugmentOverrides, train_or_resume

    config = TrainConfig(
        data=data,
        arch=arch,
        epochs=epochs,
        input_size=square_input_size(contract_options.input_size),  # square only: HxW with H != W is refused
        batch_size=batch_size,
        out=str(out),
        seed=seed,
        optimizer=optimizer,  # type: ignore[arg-type]  (TrainConfig checks it)
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
        batchnorm=batchnorm,  # type: ignore[arg-type]  (TrainConfig checks it)
        **{k: v for k, v in contract_options.given().items() if k != "input_size"},
    )
    train_or_resume(
        config, AugmentOverrides(hflip=hflip, noise_std=noise, jitter=jitter), trust_checkpoint=trust_checkpoint
    )


def register(app: typer.Typer) -> None:
    app.command("train", help=TRAIN_HELP)(train_command)
