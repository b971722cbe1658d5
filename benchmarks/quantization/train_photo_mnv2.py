"""Train edgecls's MobileNetV2 (width 1.0, 224 px) on photo crops with a plain PyTorch loop, outside edgecls.

The result plays the part of "a pretrained depthwise network edgecls did not train": its weights come from
this script, it enters edgecls through ``edgecls export --model photo_model.py:build --weights ...``.

Before evaluating and saving, BatchNorm's running statistics are re-estimated over training crops with the
final weights (edgecls.training.batchnorm): a run this short (tens of steps) otherwise evaluates with
statistics still close to their initial mean 0 / variance 1, and the 50-step run of 2026-11-30 collapsed onto
one class (6% held-out accuracy = chance) that way.

    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/train_photo_mnv2.py --out WEIGHTS.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from photo_data import PHOTOS, random_crops  # noqa: E402
from photo_model import CONTRACT_FLAGS, build  # noqa: E402

from edgecls.runtime.contract.model_contract import ModelContract  # noqa: E402
from edgecls.runtime.inference.preprocess import preprocess_batch  # noqa: E402
from edgecls.training.batchnorm import reestimate_batchnorm_statistics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bn-images", type=int, default=256, help="training crops that re-estimate BatchNorm")
    args = ap.parse_args()
    torch.manual_seed(0)
    contract = ModelContract(labels=PHOTOS, input_size=(224, 224), **CONTRACT_FLAGS)
    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    t0 = time.time()
    model.train()
    for step in range(args.steps):
        crops, labels = random_crops(args.batch, seed=1000 + step)
        x = torch.from_numpy(preprocess_batch(crops, contract))
        loss = loss_fn(model(x), torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    bn_batches = (random_crops(args.batch, seed=500_000 + i)[0] for i in range(max(1, args.bn_images // args.batch)))
    seen = reestimate_batchnorm_statistics(
        model, (torch.from_numpy(preprocess_batch(crops, contract)) for crops in bn_batches)
    )
    print(f"BatchNorm statistics re-estimated over {seen} training crops", flush=True)
    model.eval()
    crops, labels = random_crops(320, seed=7)  # held-out crops (other seeds than training)
    with torch.no_grad():
        pred = np.concatenate(
            [
                model(torch.from_numpy(preprocess_batch(crops[i : i + 64], contract))).argmax(1).numpy()
                for i in range(0, len(crops), 64)
            ]
        )
    print(f"held-out crop accuracy {np.mean(pred == labels):.3f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
