"""The deep arm at the paper's budget on a GPU: three ResNets + DLRCR, augmentation included.

Paper profile: 132 development patients x 3 phases x 3 slices at 256 x 256, batch 64, 200
epochs for each ResNet (early stopping switched off so that every epoch runs), then DLRCR for
its 100 epochs, all through the same code as `dlr train --arms deep` (modeling.deep.fit:
batched on-device augmentation, bf16 autocast where the GPU has it, one inner-split evaluation
per epoch). Inputs are random tensors of the paper's shape (the timing does not depend on the
pixel values); 27 of the 132 patients form the inner split, as fold 1 of a 5-fold split would.

Anchors (issue 12, one H100, a minimal plain-PyTorch loop with batched GPU augmentation, 200
epochs): ResNet-10 7.9 s (bf16), ResNet-18 9.8 s, ResNet-34 14.2 s. Goal: the whole arm within
1.5 x the anchors' sum (about 70 s with DLRCR).

Run on a GPU machine (about 2 minutes):

    python benchmarks/bench_deep_gpu.py [--device cuda] [--epochs 200] [--out bench_deep_gpu.json]

Expected output: one line per network with its seconds and seconds per epoch, the total, and
the ratio to the anchors; the same as JSON in --out.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from modeling.deep.arm import _fit_dlrcr, _inner_and_train, _state  # noqa: E402
from modeling.deep.fit import fit_network, resolve_device  # noqa: E402
from modeling.deep.networks import MultiPhaseNet  # noqa: E402
from modeling.deep.settings import deep_settings  # noqa: E402

ANCHORS = {"ResNet10": 7.9, "ResNet18": 9.8, "ResNet34": 14.2}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patients", type=int, default=132)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default="bench_deep_gpu.json")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    settings = deep_settings("paper", image_size=args.size, epochs=args.epochs, patience=10 ** 6,
                             fusion_epochs=max(args.epochs // 2, 1))
    n = args.patients
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(n, 3, 3, args.size, args.size)).astype(np.float32))
    y = np.arange(n) % 2
    fold = np.arange(n) % 5 + 1
    dev = np.ones(n, dtype=bool)
    train, inner = _inner_and_train(dev, fold, 1)
    x_dev = x.to(device)  # on the device once, as dlr train holds it
    rows, states = [], {}
    for network in settings.networks:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fitted = fit_network(lambda: MultiPhaseNet(network, 3, 3), x_dev, y, train, inner, settings, seed=1,
                             device=device, name=network, bar=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        states[network] = _state(fitted.model)
        rows.append({"network": network, "epochs": fitted.n_epochs, "seconds": seconds,
                     "s_per_epoch": seconds / fitted.n_epochs, "anchor_s": ANCHORS[network]})
        print(f"{network}: {seconds:.1f} s ({seconds / fitted.n_epochs * 1000:.0f} ms/epoch; anchor "
              f"{ANCHORS[network]} s)", flush=True)
    tabular = pd.DataFrame(rng.normal(size=(n, 25)), columns=[f"t{k}" for k in range(25)])
    start = time.perf_counter()
    fusion = _fit_dlrcr(x_dev, y, train, inner, settings, "ResNet10", states["ResNet10"], tabular, seed=2,
                        device=device, bar=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    rows.append({"network": "DLRCR", "epochs": fusion.n_epochs, "seconds": seconds,
                 "s_per_epoch": seconds / fusion.n_epochs, "anchor_s": float("nan")})
    print(f"DLRCR: {seconds:.1f} s ({fusion.n_epochs} epochs)", flush=True)
    total = sum(r["seconds"] for r in rows)
    anchors = sum(ANCHORS.values())
    summary = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
               "torch": torch.__version__, "bf16": device.type == "cuda" and torch.cuda.is_bf16_supported(),
               "patients": n, "size": args.size, "epochs": args.epochs, "rows": rows, "total_s": total,
               "resnets_s": total - rows[-1]["seconds"], "anchors_sum_s": anchors,
               "ratio_resnets_to_anchors": (total - rows[-1]["seconds"]) / anchors, "goal_total_s": 70.0}
    print(f"total {total:.1f} s (ResNets {summary['resnets_s']:.1f} s = {summary['ratio_resnets_to_anchors']:.2f} x "
          f"the anchors' {anchors:.1f} s; goal: the whole arm within about 70 s)")
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
