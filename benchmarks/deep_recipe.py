"""A variant of the deep arm's recipe measured on a study, as docs/deep_learning.md measured each
choice: the pooled nested out-of-fold AUC over the development patients and the validation AUC
of the fit on all of them, per network, through `train_deep_arm` itself.

    python benchmarks/deep_recipe.py STUDY RUN [--network ResNet18 ...] [--set key=value ...] [--jobs 2]
        [--cache DIR]

RUN is a run folder of STUDY (its `split.csv`: the folds and cohorts the run used). `--set`
overrides any setting of the quick profile, the slices' own included (`steps=400`,
`n_slices=5`, `pool=global`, `fov_mm=0`, ...). The slices are prepared (or read back) in
`--cache` (default: `RUN/deep/`'s cache, which the run itself then reuses or replaces per key).
Prints one line per network; no model or prediction is written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from dlr.core.stats.roc import rank_auc  # noqa: E402
from dlr.modeling.deep.arm import train_deep_arm  # noqa: E402
from dlr.modeling.deep.settings import deep_settings  # noqa: E402
from dlr.modeling.deep.slices import study_slices  # noqa: E402
from dlr.modeling.study import load_study  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study")
    parser.add_argument("run")
    parser.add_argument("--network", action="append", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", default=None, help="folder of the slices' cache (default: RUN)")
    args = parser.parse_args(argv)
    study, run = load_study(args.study), Path(args.run)
    config = study.config
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    settings = deep_settings("quick", **overrides, **({"networks": args.network} if args.network else {}))
    split = pd.read_csv(run / "split.csv", dtype={"patient_id": str})
    ids = split["patient_id"].tolist()
    y = study.clinical.set_index(config.id_column).loc[ids, config.outcome_column].to_numpy(dtype=int)
    dev = (split["cohort"] == config.dev_cohort).to_numpy()
    seed = config.seed if args.seed is None else args.seed
    start = time.perf_counter()
    slices = study_slices(study, Path(args.cache) if args.cache else run, settings, ids, jobs=args.jobs, seed=seed)
    result = train_deep_arm(slices, y, split["fold"].to_numpy(dtype=int), dev, settings, seed=seed, device="cpu",
                            jobs=args.jobs)
    for row in result.networks.itertuples():
        validation = rank_auc(y[~dev], result.scores[row.network][~dev]) if (~dev).any() else float("nan")
        print(f"{row.network} {overrides or 'the recipe'}: out of fold {row.oof_auc:.3f}, validation {validation:.3f}, "
              f"apparent {row.apparent_auc:.3f}, {row.seconds / row.n_fits:.1f} s a fit", flush=True)
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
