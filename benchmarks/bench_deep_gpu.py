"""The deep arm at the paper profile on a GPU: three ResNets, each fitted on the development
cohort and refitted without each of its folds (the out-of-fold predictions), and DLRCR.

Paper profile with the arm's recipe (modeling/deep/settings.py): 132 development patients x 3
phases x 3 slices at 256 x 256 (each slice position a sample, the phases and the tumour mask
its channels), the paper's 7 x 7 stride-2 stem and widths from 64, batch 32, 1000 AdamW steps a
fit with flips and quarter turns, test-time augmentation; all through `train_deep_arm`, the
function `dlr train --arms deep` calls. Inputs are random tensors of the paper's shape with a
disc as the tumour mask (the timing does not depend on the pixel values); the fits run one
after the other on the device.

Anchors (issue 12, one H100, a minimal plain-PyTorch loop with batched GPU augmentation, 200
epochs of 2 steps of 64 whole patients, i.e. 400 steps of 192 three-slice images): ResNet-10
7.9 s (bf16), ResNet-18 9.8 s, ResNet-34 14.2 s. A fit here is 1000 steps of 32 four-channel
images (32,000 images against the anchors' 76,800), and a network is 1 + folds fits.

Run on a GPU machine (about 3 minutes with the 5 folds):

    python benchmarks/bench_deep_gpu.py [--device cuda] [--steps 1000] [--folds 5] [--out bench_deep_gpu.json]

Expected output: `dlr train`'s progress lines, then one line per network with its seconds for
all its fits and per fit beside the anchor, and the total; the same as JSON in --out. On a CPU,
`--size 32 --steps 20 --folds 2` checks that the script runs.
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
import torch  # noqa: E402

from dlr.core.progress import on_stderr  # noqa: E402
from dlr.modeling.deep.arm import Partner, train_deep_arm  # noqa: E402
from dlr.modeling.deep.fit import resolve_device  # noqa: E402
from dlr.modeling.deep.settings import deep_settings  # noqa: E402
from dlr.modeling.deep.slices import StudySlices  # noqa: E402

ANCHORS = {"ResNet10": 7.9, "ResNet18": 9.8, "ResNet34": 14.2}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5, help="out-of-fold refits per network (0: none)")
    parser.add_argument("--patients", type=int, default=132)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default="bench_deep_gpu.json")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    settings = deep_settings("paper", image_size=args.size, steps=args.steps)
    n = args.patients
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n, 3, 3, args.size, args.size)).astype(np.float32)
    rows, cols = np.mgrid[:args.size, :args.size]
    disc = (rows - args.size / 2) ** 2 + (cols - args.size / 2) ** 2 <= (args.size / 6) ** 2
    masks = np.broadcast_to(disc, images.shape).astype(np.uint8)
    slices = StudySlices(np.array([f"P{k:03d}" for k in range(n)], dtype=object), ("AP", "PVP", "DP"), images,
                         masks, n, 0)
    y = np.arange(n) // 2 % 2   # both outcomes in every fold
    folds = max(args.folds, 0)
    fold = np.arange(n) % max(folds, 1) + 1
    dev = np.ones(n, dtype=bool)
    partner = Partner("RCR", rng.uniform(0.05, 0.95, n), rng.uniform(0.05, 0.95, n)) if folds else None
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = train_deep_arm(slices, y, fold, dev, settings, seed=1, device=str(device), partner=partner,
                            oof=folds > 0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    table = []
    for r in result.networks.itertuples():
        if r.network == "DLRCR":
            continue
        name = r.network.removeprefix("DL-")
        table.append({"network": name, "fits": int(r.n_fits), "steps": int(r.n_steps), "seconds": float(r.seconds),
                      "s_per_fit": float(r.seconds) / int(r.n_fits), "anchor_s": ANCHORS[name]})
        print(f"{name}: {r.seconds:.1f} s for {int(r.n_fits)} fits ({float(r.seconds) / int(r.n_fits):.1f} s a fit of "
              f"{int(r.n_steps)} steps; anchor {ANCHORS[name]} s)", flush=True)
    summary = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
               "torch": torch.__version__, "bf16": device.type == "cuda" and torch.cuda.is_bf16_supported(),
               "patients": n, "size": args.size, "steps": args.steps, "folds": folds, "rows": table,
               "total_s": total, "anchors_sum_s": sum(ANCHORS.values())}
    print(f"total {total:.1f} s (every fit, scoring, DLRCR and Score-CAM)")
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    with on_stderr():  # the arm's progress lines
        raise SystemExit(main())
