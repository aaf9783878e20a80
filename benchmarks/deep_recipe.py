"""A variant of the deep arm's recipe measured on a run's cached slices, as docs/deep_learning.md
measured each choice: the pooled nested out-of-fold AUC over the development patients and the
validation AUC of the fit on all of them, per network, through `train_deep_arm` itself.

    python benchmarks/deep_recipe.py STUDY RUN [--network ResNet18 ...] [--set key=value ...] [--jobs 2]

RUN is a run folder of STUDY whose models stage ran with the deep arm (its `split.csv` and
`deep/slices/` cache; the slices' own settings, such as `fov_mm`, need a run made with them).
`--set` overrides a training setting of the quick profile (`steps=400`, `pool=global`,
`min_grid=0`, `lr=0.001`, ...). Prints one line per network; nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from core.stats.roc import rank_auc  # noqa: E402
from modeling.deep.arm import train_deep_arm  # noqa: E402
from modeling.deep.settings import deep_settings  # noqa: E402
from modeling.deep.slices import SLICES_DIR, StudySlices  # noqa: E402


def _value(text: str):
    return yaml.safe_load(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study")
    parser.add_argument("run")
    parser.add_argument("--network", action="append", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    study, run = Path(args.study), Path(args.run)
    config = yaml.safe_load((study / "study.yaml").read_text())
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = deep_settings("quick", **{k: _value(v) for k, v in overrides.items()},
                             **({"networks": args.network} if args.network else {}))
    split = pd.read_csv(run / "split.csv", dtype={"patient_id": str})
    clinical = pd.read_csv(study / "clinical.csv", dtype={config["id_column"]: str}).set_index(config["id_column"])
    y = clinical.loc[split["patient_id"], config["outcome_column"]].to_numpy(dtype=int)
    dev = (split["cohort"] == config["dev_cohort"]).to_numpy()
    cached = [np.load(run / SLICES_DIR / f"{pid}.npz") for pid in split["patient_id"]]
    slices = StudySlices(split["patient_id"].to_numpy(dtype=object), tuple(config["phases"]),
                         np.stack([c["image"] for c in cached]), np.stack([c["mask"] for c in cached]), 0, len(cached))
    result = train_deep_arm(slices, y, split["fold"].to_numpy(dtype=int), dev, settings,
                            seed=config["seed"] if args.seed is None else args.seed, device="cpu", jobs=args.jobs)
    for row in result.networks.itertuples():
        validation = rank_auc(y[~dev], result.scores[row.network][~dev]) if (~dev).any() else float("nan")
        print(f"{row.network} {overrides or 'the recipe'}: out of fold {row.oof_auc:.3f}, validation {validation:.3f}, "
              f"apparent {row.apparent_auc:.3f}, {row.seconds / row.n_fits:.1f} s a fit", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
