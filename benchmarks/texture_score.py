"""How much of the synthetic study's imaging signal a single hand-made texture score holds, with
and without re-segmenting the tumour by intensity outliers (docs/deep_learning.md, "Where the
networks' cap was"): a ceiling for what the deep arm's networks can read from their slices.

    python benchmarks/texture_score.py STUDY

STUDY is a `dlr synth` folder (its `truth.csv` holds the imaging latent). Per patient, on the
three axial slices around the tumour's largest cross-section (the slices the networks see) and
on the whole tumour: each phase divided by the tumour's median, minus 1; the score is the mean
over the phases of the standard deviation inside the tumour, (a) over every tumour voxel and
(b) over the voxels within k robust standard deviations (1.4826 x MAD) of the median on every
phase (k = 2, 2.5, 3; `dlr.modeling.deep.slices.resegment`'s rule). No fitting: the AUC of the
score itself on the development and validation cohorts, and its correlation with the latent.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlr.core.stats.roc import rank_auc  # noqa: E402
from dlr.modeling.deep.slices import MAD_TO_SD  # noqa: E402
from dlr.modeling.study import load_study  # noqa: E402


def _scores(images: dict, mask: np.ndarray) -> dict:
    relative = {p: a / np.median(a[mask]) - 1.0 for p, a in images.items()}
    out = {"all voxels": float(np.mean([r[mask].std() for r in relative.values()]))}
    for k in (2.0, 2.5, 3.0):
        kept = mask.copy()
        for r in relative.values():
            mad = float(np.median(np.abs(r[mask] - np.median(r[mask]))))
            if mad > 0:
                kept &= np.abs(r - np.median(r[mask])) <= k * MAD_TO_SD * mad
        out[f"re-segmented, k = {k:g}"] = float(np.mean([r[kept].std() for r in relative.values()]))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    study = load_study(argv[0])
    config = study.config
    truth = pd.read_csv(Path(argv[0]) / "truth.csv", dtype={"patient_id": str}).set_index("patient_id")
    rows = []
    for pid in study.clinical[config.id_column]:
        images = {p: sitk.GetArrayFromImage(sitk.ReadImage(str(study.images[pid][p]))).astype(float)
                  for p in config.phases}
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(study.masks[pid][config.phases[0]]))) > 0
        middle = int(np.argmax(mask.sum(axis=(1, 2))))
        window = slice(max(middle - 1, 0), middle + 2)
        for extent, sl in (("3 slices", window), ("whole tumour", slice(None))):
            for name, value in _scores({p: a[sl] for p, a in images.items()}, mask[sl]).items():
                rows.append({"patient_id": pid, "extent": extent, "score": name, "value": value})
    frame = pd.DataFrame(rows)
    clinical = study.clinical.set_index(config.id_column)
    print(f"{'extent':14s} {'score':26s} development AUC  validation AUC  r(latent)")
    for (extent, name), part in frame.groupby(["extent", "score"], sort=False):
        part = part.set_index("patient_id")
        x = np.log(part["value"])
        y = clinical.loc[part.index, config.outcome_column].to_numpy(dtype=int)
        dev = (clinical.loc[part.index, config.cohort_column] == config.dev_cohort).to_numpy()
        r = np.corrcoef(x, truth.loc[part.index, "imaging_latent"])[0, 1]
        print(f"{extent:14s} {name:26s} {rank_auc(y[dev], x[dev]):15.3f} {rank_auc(y[~dev], x[~dev]):15.3f} "
              f"{r:10.2f}")
    latent = truth.loc[clinical.index, "imaging_latent"].to_numpy()
    dev = (clinical[config.cohort_column] == config.dev_cohort).to_numpy()
    y = clinical[config.outcome_column].to_numpy(dtype=int)
    print(f"{'the latent itself':41s} {rank_auc(y[dev], latent[dev]):15.3f} {rank_auc(y[~dev], latent[~dev]):15.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
