"""The embedded synthetic HCC study (`dlr synth`): a study folder in the layout of contract
section 2, shaped after the seed paper (Zhao et al. 2024, 165 resected HCC patients).

What is generated
-----------------
``clinical.csv``
    One row per patient: ``patient_id`` (HCC001, ...), ``cohort`` (training / validation, 8:2),
    ``early_recurrence`` (0/1), ``scanner`` (1.5T / 3.0T), every Table 1 variable of the paper
    under the names of ``shared/reference/paper_table1_training/clinical.csv`` with raw values
    where the paper dichotomised (``afp`` ng/mL, ``alt``/``ast``/``ggt`` U/L, ``tbil`` umol/L,
    ``alb`` g/L, ``tumor_diameter`` cm, ``tumor_number`` count), ``age``, the second reader's
    radiological features (``<feature>_reader2``), the remaining raw staging inputs of the
    contract (``ecog_ps``, ``child_pugh_class``, ``child_pugh_score``,
    ``macrovascular_invasion``, ``portal_vein_thrombosis``, ``extrahepatic_spread``,
    ``tumor_extent_over_50pct``, ``neutrophils``, ``lymphocytes``, ``monocytes``, ``platelets``)
    and the survival columns ``months_to_recurrence`` / ``recurrence``.
``truth.csv``
    Each patient's true risk P(early recurrence | everything the generator drew) and the latent
    imaging score. No model reads it; it says what AUC is achievable.
``images/<id>/<PHASE>.nii.gz``, ``masks/<id>/<PHASE>.nii.gz``, ``masks_reader2/...``
    Three contrast phases (AP, PVP, DP), reader-1 tumour masks for every patient and reader-2
    masks with perturbed boundaries for a reproducibility subset of 30 patients.
``study.yaml``
    :class:`dlr.modeling.config.StudyConfig` naming every column, with the paper's cut points.

The latent model
----------------
The outcome is a latent class (a two-class mixture, as a case-control design): the counts of
the cohorts and outcome groups are fixed first (132/33 and 78+54 / 18+15 for n = 165, scaled
otherwise), then every variable is drawn from its distribution in the patient's cohort and
outcome group.

* Dichotomised and categorical Table 1 variables are assigned in exact counts per (cohort,
  outcome) group, ``round(p * group size)`` with ``p`` the paper's proportion, so dichotomising
  the raw values at the cut points gives the paper's Table 1 (exactly for n = 165). The raw
  value is then drawn within its category from a truncated log-normal that is the same in both
  outcome groups. Variables are independent given the group, except AFP > 400, which goes
  preferentially to patients with a tumour > 5 cm and with AST > 40 (weights
  ``AFP_DIAMETER_OR`` and ``AFP_AST_OR`` in a weighted draw without replacement): AFP then
  enters the univariate step (p = 0.03, as in the paper) but drops out of the multivariate
  model, leaving AST and tumour diameter as the independent CR factors, as the paper found.
* Imaging carries a latent score ``z ~ N(+-delta / 2, 1)`` (``IMAGING_SEPARATION`` = delta, so
  z alone has AUC Phi(delta / sqrt 2) ~ 0.84) that sets the tumour's internal heterogeneity, the
  amplitude of a correlated texture field (``heterogeneity = 0.08 exp(0.6 z)``).
* The true risk is the Bayes posterior of this model: logit = log(group-size odds of the cohort)
  + the sum of the per-variable log likelihood ratios (Table 1 categories, age, AFP given
  diameter and AST from the drawn within-group frequencies, ``delta * z``). Raw values within a
  category, scanner and the staging extras have the same distribution in both groups and drop
  out.

Images
------
A liver ellipsoid with a smooth texture (coarser and stronger with radiological cirrhosis) in
a soft-tissue background; the tumour follows HCC physiology: arterial hyper-enhancement (AP),
washout (PVP, DP), an enhancing capsule in DP (and faintly PVP) where ``encapsulation`` is
Present, non-enhancing necrosis where ``necrosis`` is Present, T1-bright hemorrhagic foci,
patchy arterial peritumoral enhancement, a lobulated margin where ``tumor_margin`` is
Non-smooth, a size set by ``tumor_diameter`` (capped to fit the field of view in the quick
profile), and a scanner effect (3.0 T: gain 1.25 and less noise than 1.5 T). Intensities are
int16 in arbitrary MR units; the grid is identical for the three phases and the masks.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
from scipy import ndimage, special, stats

from dlr.core.output import provenance, staged_folder

from .config import StudyConfig, Variable, dump_study_config

PHASES = ("AP", "PVP", "DP")
COHORTS = ("training", "validation")

#: paper counts per group, in the order training ER (78), training NER (54), validation ER (18),
#: validation NER (15) -- Table 1 of Zhao et al. 2024
GROUP_SIZES = (78, 54, 18, 15)
#: variable -> (level counted in Table 1, other level, counts per group)
TABLE1_COUNTS = {
    "gender": ("Male", "Female", (68, 43, 15, 12)),
    "hepatitis_b_or_c": ("Positive", "Negative", (61, 40, 11, 10)),
    "afp": (">400", "<=400", (21, 6, 3, 1)),
    "alt": (">50", "<=50", (26, 12, 5, 4)),
    "ast": (">40", "<=40", (36, 13, 4, 3)),
    "ggt": (">60", "<=60", (42, 20, 7, 7)),
    "tbil": (">19", "<=19", (25, 13, 4, 0)),
    "alb": (">=40", "<40", (49, 37, 14, 8)),
    "child_pugh": ("B", "A", (7, 5, 0, 0)),
    "tumor_diameter": (">5cm", "<=5cm", (30, 10, 10, 1)),
    "tumor_number": ("Multifocal", "Unifocal", (12, 5, 4, 1)),
    "tumor_margin": ("Non-smooth", "Smooth", (34, 20, 8, 3)),
    "necrosis": ("Present", "Absent", (30, 17, 8, 7)),
    "hemorrhage": ("Present", "Absent", (24, 11, 9, 2)),
    "encapsulation": ("Present", "Absent", (56, 44, 15, 11)),
    "arterial_peritumoral_enhancement": ("Present", "Absent", (25, 13, 5, 7)),
    "cirrhosis": ("Present", "Absent", (54, 35, 9, 8)),
}
#: age, mean and SD per group (Table 1)
AGE = ((58.35, 10.59), (58.38, 10.60), (57.81, 10.84), (56.81, 10.26))
#: raw laboratory values: name -> (cut point, median, log-SD, decimals, lower bound, upper bound, unit)
LABS = {
    "afp": (400.0, 20.0, 2.0, 1, 1.0, 60000.0, "ng/mL"),
    "alt": (50.0, 38.0, 0.55, 0, 7.0, 600.0, "U/L"),
    "ast": (40.0, 34.0, 0.5, 0, 10.0, 600.0, "U/L"),
    "ggt": (60.0, 58.0, 0.75, 0, 8.0, 900.0, "U/L"),
    "tbil": (19.0, 14.5, 0.4, 1, 3.0, 60.0, "umol/L"),
    "alb": (40.0, 41.0, 0.09, 1, 26.0, 55.0, "g/L"),
    "tumor_diameter": (5.0, 4.0, 0.55, 1, 1.0, 16.0, "cm"),
}
#: variables whose paper's low category is "< cut" (the others are "<= cut")
STRICTLY_BELOW = ("alb",)
#: the radiological features read twice (Cohen's kappa); categorical with the Table 1 labels
READER2_FEATURES = ("tumor_margin", "necrosis", "hemorrhage", "encapsulation", "arterial_peritumoral_enhancement",
                    "cirrhosis")
AFP_DIAMETER_OR = 3.0
AFP_AST_OR = 3.0
IMAGING_SEPARATION = 1.4
KAPPA_FLOOR = 0.84
N_REPRODUCIBILITY = 30
TIME_COLUMN, EVENT_COLUMN = "months_to_recurrence", "recurrence"


@dataclass(frozen=True)
class ImageProfile:
    """Volume geometry of a profile: ``shape`` (x, y, z) voxels and ``spacing`` (x, y, z) mm."""

    name: str
    shape: tuple
    spacing: tuple
    capsule_mm: float


PROFILES = {
    "quick": ImageProfile("quick", (48, 48, 16), (3.0, 3.0, 5.0), 2.0),
    "paper": ImageProfile("paper", (192, 192, 96), (1.0, 1.0, 1.6), 2.0),
}


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize_study` wrote.

    Attributes
    ----------
    out : Path
        The study folder.
    n, seed, profile :
        The arguments.
    n_training, n_validation, n_events, n_events_training, n_events_validation : int
        Cohort sizes and early recurrences.
    n_1_5t, n_3t : int
        Patients per scanner.
    n_reader2 : int
        Patients with reader-2 masks (0 when ``images=False``).
    images : bool
        Whether images and masks were written.
    shape, spacing : tuple
        Volume grid (x, y, z) in voxels and mm.
    kappa_min, kappa_max : float
        Range of Cohen's kappa between the readers over the radiological features.
    """

    out: Path
    n: int
    seed: int
    profile: str
    n_training: int
    n_validation: int
    n_events: int
    n_events_training: int
    n_events_validation: int
    n_1_5t: int
    n_3t: int
    n_reader2: int
    images: bool
    shape: tuple
    spacing: tuple
    kappa_min: float
    kappa_max: float

    def to_frame(self) -> pd.DataFrame:
        row = asdict(self)
        row["out"] = str(self.out)
        return pd.DataFrame([row])


# --------------------------------------------------------------------------------------------
# Clinical table


def _scaled(total: int, parts) -> np.ndarray:
    """Integer split of ``total`` proportional to ``parts`` (largest remainders); exact when equal."""
    parts = np.asarray(parts, dtype=float)
    raw = total * parts / parts.sum()
    out = np.floor(raw).astype(int)
    order = np.argsort(-(raw - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


def _group_sizes(n: int) -> np.ndarray:
    """Patients per group (training ER, training NER, validation ER, validation NER)."""
    n_train, n_val = _scaled(n, (132, 33))
    er_train = int(round(n_train * 78 / 132))
    er_val = int(round(n_val * 18 / 33))
    return np.array([er_train, n_train - er_train, er_val, n_val - er_val])


def _exact_assign(rng, group: np.ndarray, sizes, counts, *, weights=None) -> np.ndarray:
    """Boolean per patient: in each group, ``round(p * size)`` patients (p = paper proportion).

    Without weights a uniform random subset; with weights a weighted draw without replacement
    (Gumbel top-k: higher weight, likelier chosen).
    """
    out = np.zeros(group.size, dtype=bool)
    for g, (size, count) in enumerate(zip(GROUP_SIZES, counts)):
        members = np.flatnonzero(group == g)
        k = int(round(count / size * sizes[g]))
        keys = rng.gumbel(size=members.size)
        if weights is not None:
            keys = keys + np.log(weights[members])
        out[members[np.argsort(-keys, kind="stable")[:k]]] = True
    return out


def _truncated_lognormal(rng, n: int, median: float, sigma: float, low: float, high: float) -> np.ndarray:
    a = (np.log(low) - np.log(median)) / sigma
    b = (np.log(high) - np.log(median)) / sigma
    return np.exp(np.log(median) + sigma * stats.truncnorm.rvs(a, b, size=n, random_state=rng))


def _raw_values(rng, high: np.ndarray, name: str) -> np.ndarray:
    """Raw values of a dichotomised variable: above the cut point where ``high``, at or below it otherwise.

    Bounds sit half a rounding unit beyond the cut point so that rounding keeps the category.
    Where the paper's low category excludes the cut point (albumin < 40 vs >= 40), no value
    equals it, so "> cut point" and the paper's ">=" split the patients alike.
    """
    cut, median, sigma, decimals, low, top, _ = LABS[name]
    half = 0.5 * 10.0 ** -decimals
    below = cut - half * 1.02 if name in STRICTLY_BELOW else cut + half * 0.98
    values = np.empty(high.size)
    values[high] = _truncated_lognormal(rng, int(high.sum()), median, sigma, cut + half * 1.02, top)
    values[~high] = _truncated_lognormal(rng, int((~high).sum()), median, sigma, low, below)
    return np.round(values, decimals)


def _kappa(a, b) -> float:
    """Cohen's kappa; NaN (quietly) when both readings use one and the same level."""
    from dlr.core.stats.agreement import cohen_kappa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa(a, b).estimate)


def _second_reader(rng, values: np.ndarray, levels: tuple) -> np.ndarray:
    """A second reading: about 4% of patients read differently, never pushing kappa below KAPPA_FLOOR."""
    other = {levels[0]: levels[1], levels[1]: levels[0]}
    reading = values.copy()
    target = rng.binomial(values.size, 0.04)
    for i in rng.permutation(values.size)[:max(target, 0)]:
        trial = reading.copy()
        trial[i] = other[trial[i]]
        if len(set(trial)) > 1 and _kappa(values, trial) >= KAPPA_FLOOR:
            reading = trial
    return reading


def _llr_binary(flag: np.ndarray, group: np.ndarray, counts) -> np.ndarray:
    """Per patient log P(flag | ER) - log P(flag | NER) with the patient's cohort's proportions."""
    llr = np.zeros(flag.size)
    for er, ner in ((0, 1), (2, 3)):
        in_cohort = (group == er) | (group == ner)
        p1 = (counts[er] + 0.5) / (GROUP_SIZES[er] + 1.0)
        p0 = (counts[ner] + 0.5) / (GROUP_SIZES[ner] + 1.0)
        llr[in_cohort] = np.where(flag[in_cohort], np.log(p1 / p0), np.log((1 - p1) / (1 - p0)))
    return llr


def _afp_weights(big: np.ndarray, ast_high: np.ndarray) -> np.ndarray:
    return np.where(big, AFP_DIAMETER_OR, 1.0) * np.where(ast_high, AFP_AST_OR, 1.0)


def _clinical(n: int, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    sizes = _group_sizes(n)
    # patients in id order; groups assigned by a random permutation
    group = np.repeat(np.arange(4), sizes)[rng.permutation(n)]
    cohort = np.where(group < 2, COHORTS[0], COHORTS[1])
    y = (group % 2 == 0).astype(int)
    width = max(3, len(str(n)))
    ids = [f"HCC{i + 1:0{width}d}" for i in range(n)]
    n15 = int(round(n * 74 / 165))
    scanner = np.where(rng.permutation(n) < n15, "1.5T", "3.0T")

    flags, llr = {}, np.zeros(n)
    for name, (level, _, counts) in TABLE1_COUNTS.items():
        if name == "afp":
            continue
        flags[name] = _exact_assign(rng, group, sizes, counts)
        llr += _llr_binary(flags[name], group, counts)
    # AFP > 400 goes preferentially with a tumour > 5 cm and AST > 40; its likelihood is conditional on both
    big = flags["tumor_diameter"]
    flags["afp"] = _exact_assign(rng, group, sizes, TABLE1_COUNTS["afp"][2], weights=_afp_weights(big, flags["ast"]))
    llr += _afp_llr(flags["afp"], big, flags["ast"], group)

    col = {"patient_id": ids, "cohort": cohort, "early_recurrence": y, "scanner": scanner}
    age = np.empty(n)
    for g, (mean, sd) in enumerate(AGE):
        members = group == g
        age[members] = np.clip(np.round(rng.normal(mean, sd, members.sum())), 31, 83)
    for er, ner in ((0, 1), (2, 3)):
        m = (group == er) | (group == ner)
        llr[m] += stats.norm.logpdf(age[m], *AGE[er]) - stats.norm.logpdf(age[m], *AGE[ner])
    col["age"] = age.astype(int)
    for name, (level, other, _) in TABLE1_COUNTS.items():
        if name in LABS:
            values = _raw_values(rng, flags[name], name)
            col[name] = values.astype(int) if LABS[name][3] == 0 else values
        elif name == "tumor_number":
            col[name] = np.where(flags[name], rng.choice([2, 2, 2, 3], n), 1)
        else:
            col[name] = np.where(flags[name], level, other)

    # imaging latent: carries the strongest signal
    z = rng.normal(0.0, 1.0, n) + np.where(y == 1, IMAGING_SEPARATION / 2, -IMAGING_SEPARATION / 2)
    llr += IMAGING_SEPARATION * z
    prior = np.where(group < 2, np.log(sizes[0] / sizes[1]),
                     np.log(max(sizes[2], 1) / max(sizes[3], 1)))
    risk = special.expit(prior + llr)

    # second reader
    for name in READER2_FEATURES:
        level, other, _ = TABLE1_COUNTS[name]
        col[f"{name}_reader2"] = _second_reader(rng, col[name], (level, other))

    # staging inputs consistent with the Table 1 variables (resected patients)
    cp_b = col["child_pugh"] == "B"
    col["child_pugh_class"] = col["child_pugh"].copy()
    col["child_pugh_score"] = np.where(cp_b, rng.choice([7, 7, 7, 8], n), rng.choice([5, 5, 5, 6], n))
    # Child-Pugh B patients with albumin < 40 have the lower albumins (< 35 g/L: 2 points)
    low_alb = cp_b & (col["alb"] < 40)
    col["alb"][low_alb] = np.round(rng.uniform(29.0, 34.9, low_alb.sum()), 1)
    col["ecog_ps"] = np.where(rng.random(n) < 0.92, 0, 1)
    diameter = col["tumor_diameter"]
    mvi = (rng.random(n) < np.where(diameter > 5, 0.08, 0.02)).astype(int)
    col["macrovascular_invasion"] = mvi
    col["portal_vein_thrombosis"] = mvi * (rng.random(n) < 0.8)
    col["extrahepatic_spread"] = np.zeros(n, dtype=int)
    col["tumor_extent_over_50pct"] = (diameter > 12).astype(int)
    col["neutrophils"] = np.round(_truncated_lognormal(rng, n, 3.2, 0.35, 0.8, 15.0), 2)
    col["lymphocytes"] = np.round(_truncated_lognormal(rng, n, 1.5, 0.35, 0.3, 5.0), 2)
    col["monocytes"] = np.round(_truncated_lognormal(rng, n, 0.42, 0.3, 0.1, 1.5), 2)
    cirrhotic = col["cirrhosis"] == "Present"
    col["platelets"] = np.round(np.where(cirrhotic, _truncated_lognormal(rng, n, 125, 0.35, 30, 400),
                                         _truncated_lognormal(rng, n, 190, 0.3, 60, 450))).astype(int)

    # time to recurrence (median ~7 months among early recurrences) or to the last follow-up
    time = np.empty(n)
    event = np.ones(n, dtype=int)
    er = y == 1
    time[er] = np.round(_truncated_lognormal(rng, int(er.sum()), 7.3, 0.65, 1.0, 24.0), 1)
    follow = np.round(rng.uniform(24.5, 150.0, int((~er).sum())), 1)
    late = rng.random(int((~er).sum())) < 0.4
    time[~er] = np.where(late, np.round(24.1 + rng.random(late.size) * (follow - 24.1), 1), follow)
    event[~er] = late.astype(int)
    col[TIME_COLUMN] = time
    col[EVENT_COLUMN] = event

    clinical = pd.DataFrame(col)
    truth = pd.DataFrame({"patient_id": ids, "true_risk": risk, "imaging_latent": z})
    return clinical, truth


def _afp_llr(afp: np.ndarray, big: np.ndarray, ast_high: np.ndarray, group: np.ndarray) -> np.ndarray:
    """log P(AFP | diameter, AST, ER) - log P(AFP | diameter, AST, NER), from the within-group frequencies drawn."""
    llr = np.zeros(afp.size)
    for er, ner in ((0, 1), (2, 3)):
        for b in (False, True):
            for a in (False, True):
                cell = (big == b) & (ast_high == a)
                rates = []
                for g in (er, ner):
                    m = cell & (group == g)
                    rates.append((afp[m].sum() + 0.5) / (m.sum() + 1.0))
                p1, p0 = rates
                m = cell & ((group == er) | (group == ner))
                llr[m] = np.where(afp[m], np.log(p1 / p0), np.log((1 - p1) / (1 - p0)))
    return llr


# --------------------------------------------------------------------------------------------
# study.yaml


def study_config(*, seed: int = 20240101, profile: str = "quick", n: int = 165) -> StudyConfig:
    """The :class:`StudyConfig` of the synthetic study of ``n`` patients.

    A small study whose training cohort has fewer than 5 patients of an outcome (n < 14) gets
    ``n_folds`` in study.yaml, as many folds as that outcome has patients, so that it still
    validates and trains; others leave n_folds at its default, 5 (and study.yaml without it).
    """
    v = []
    v.append(Variable(name="gender", type="categorical", role="demographic", levels=["Male", "Female"]))
    # not in the paper's Table 1 (nor its CR candidates): recorded, but not a candidate
    v.append(Variable(name="age", type="continuous", role="demographic", unit="years", candidate=False))
    v.append(Variable(name="hepatitis_b_or_c", type="categorical", role="clinical", levels=["Negative", "Positive"]))
    for name in ("afp", "alt", "ast", "ggt", "tbil", "alb"):
        v.append(Variable(name=name, type="continuous", role="laboratory", unit=LABS[name][6],
                          cut_point=LABS[name][0]))
    v.append(Variable(name="child_pugh", type="categorical", role="clinical", levels=["A", "B"]))
    v.append(Variable(name="tumor_diameter", type="continuous", role="radiological", unit="cm", cut_point=5.0))
    v.append(Variable(name="tumor_number", type="continuous", role="radiological", unit="count", cut_point=1.0))
    for name in READER2_FEATURES:
        level, other, _ = TABLE1_COUNTS[name]
        # the absent (or smooth) reading first: the reference level of Table 3, as in the paper
        levels = [other, level]
        v.append(Variable(name=name, type="categorical", role="radiological", levels=levels,
                          reader2_column=f"{name}_reader2"))
    # raw inputs of the staging systems and indexes only: not Table 1 characteristics
    v += [
        Variable(name="ecog_ps", type="continuous", role="clinical", unit="ECOG 0-4", candidate=False),
        Variable(name="child_pugh_class", type="categorical", role="clinical", levels=["A", "B", "C"],
                 candidate=False),
        Variable(name="child_pugh_score", type="continuous", role="clinical", unit="points 5-15", candidate=False),
        Variable(name="macrovascular_invasion", type="binary", role="radiological", candidate=False),
        Variable(name="portal_vein_thrombosis", type="binary", role="radiological", candidate=False),
        Variable(name="extrahepatic_spread", type="binary", role="radiological", candidate=False),
        Variable(name="tumor_extent_over_50pct", type="binary", role="radiological", candidate=False),
    ]
    for name in ("neutrophils", "lymphocytes", "monocytes", "platelets"):
        v.append(Variable(name=name, type="continuous", role="laboratory", unit="10^9/L", candidate=False))
    default_folds = StudyConfig.model_fields["n_folds"].default
    smallest = int(min(_group_sizes(int(n))[:2]))
    folds = {"n_folds": smallest} if smallest < default_folds else {}
    return StudyConfig(name="synthetic-hcc", id_column="patient_id", cohort_column="cohort",
                       outcome_column="early_recurrence", dev_cohort="training", cohorts=list(COHORTS),
                       phases=list(PHASES), scanner_column="scanner", time_column=TIME_COLUMN,
                       event_column=EVENT_COLUMN, variables=v, staging_columns={}, seed=seed, profile=profile,
                       **folds)


# --------------------------------------------------------------------------------------------
# Images


def _smooth_noise(rng, shape, sigma_vox) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="wrap", truncate=3.0)
    return field / np.float32(max(float(field.std()), 1e-12))


def _lobes(rng, amplitude: float, k: int = 6):
    v = rng.normal(size=(k, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, rng.uniform(2.0, 5.0, k), rng.uniform(0, 2 * np.pi, k), amplitude * rng.uniform(0.5, 1.0, k) / np.sqrt(k)


def _radius_factor(u: np.ndarray, lobes) -> np.ndarray:
    v, freq, phase, amp = lobes
    proj = np.tensordot(u, v.T, axes=1)  # (..., k)
    return 1.0 + np.sum(amp * np.cos(freq * proj + phase), axis=-1)


def _patient_images(rng, row, z: float, prof: ImageProfile, reader2: bool):
    """(phase -> int16 array (z, y, x), reader-1 mask, reader-2 mask or None)."""
    nx, ny, nz = prof.shape
    sx, sy, sz = prof.spacing
    zz, yy, xx = np.meshgrid(np.arange(nz) * sz, np.arange(ny) * sy, np.arange(nx) * sx, indexing="ij")
    extent = np.array([nx * sx, ny * sy, nz * sz])
    centre = extent / 2
    # liver: a large ellipsoid, the background soft tissue outside
    liver_r = extent * np.array([0.46, 0.44, 0.6])
    liver = (((xx - centre[0]) / liver_r[0]) ** 2 + ((yy - centre[1]) / liver_r[1]) ** 2
             + ((zz - centre[2]) / liver_r[2]) ** 2) <= 1.0
    # tumour: ellipsoid of the measured diameter (capped to stay inside the volume), lobulated margin
    radius = 10.0 * float(row["tumor_diameter"]) / 2
    cap = np.array([0.3, 0.3, 0.4]) * extent  # the tumour stays inside the liver and the volume
    radii = np.minimum(radius * np.array([1.0, 0.92, 0.95]), cap)
    room = np.maximum(np.minimum(liver_r, extent / 2) - 1.3 * radii - 2 * np.array(prof.spacing), 0)
    t_centre = centre + rng.uniform(-1, 1, 3) * np.minimum(room, 0.12 * extent)
    d = np.stack([(xx - t_centre[0]) / radii[0], (yy - t_centre[1]) / radii[1], (zz - t_centre[2]) / radii[2]], -1)
    dist = np.linalg.norm(d, axis=-1)
    irregular = row["tumor_margin"] == "Non-smooth"
    lobes = _lobes(rng, 0.45 if irregular else 0.06)
    lobes2 = _lobes(rng, 0.12) if reader2 else None
    scale2 = rng.uniform(0.95, 1.05) if reader2 else 1.0
    # the lobulated radius is evaluated only near the tumour (it is the costly part on big grids)
    reach = (1.0 + lobes[3].sum()) * (1.0 + (lobes2[3].sum() if reader2 else 0.0)) * scale2
    near = dist <= 1.5 * reach
    u = d[near] / np.maximum(dist[near], 1e-9)[:, None]
    factor = _radius_factor(u, lobes)
    rel = np.full(dist.shape, np.inf)
    rel[near] = dist[near] / factor  # <= 1 inside the tumour
    tumour = rel <= 1.0
    if not tumour.any():
        tumour[tuple(np.round(t_centre[::-1] / np.array([sz, sy, sx])).astype(int))] = True
    mask2 = None
    if reader2:
        rel2 = np.full(dist.shape, np.inf)
        rel2[near] = dist[near] / (factor * _radius_factor(u, lobes2) * scale2)
        mask2 = (rel2 <= 1.0) | (tumour & (rel <= 0.5))
    thickness = prof.capsule_mm / max(float(radii.min()), 1e-6)
    capsule = tumour & (rel > 1.0 - thickness)
    inner = tumour & ~capsule

    vox = np.array([sz, sy, sx])
    liver_tex = _smooth_noise(rng, liver.shape, 4.0 / vox)
    cirrhotic = row["cirrhosis"] == "Present"
    nodules = _smooth_noise(rng, liver.shape, 2.5 / vox)
    body_tex = _smooth_noise(rng, liver.shape, 6.0 / vox)
    # internal heterogeneity: the latent imaging signal
    heterogeneity = 0.08 * np.exp(0.6 * z)
    tumour_tex = _smooth_noise(rng, liver.shape, 3.6 / vox)
    necrosis = np.zeros_like(tumour)
    if row["necrosis"] == "Present":
        offset = rng.uniform(-0.3, 0.3, 3) * radii
        nr = radii * rng.uniform(0.3, 0.5)
        c = t_centre + offset
        core = ((xx - c[0]) / nr[0]) ** 2 + ((yy - c[1]) / nr[1]) ** 2 + ((zz - c[2]) / nr[2]) ** 2 <= 1.0
        necrosis = inner & core & (rel < 0.85)
    hemorrhage = np.zeros_like(tumour)
    if row["hemorrhage"] == "Present":
        blobs = _smooth_noise(rng, liver.shape, 2.0 / vox)
        hemorrhage = inner & ~necrosis & (blobs > 1.3)
    ape = np.zeros_like(tumour)
    if row["arterial_peritumoral_enhancement"] == "Present":
        patches = _smooth_noise(rng, liver.shape, 3.0 / vox)
        ape = liver & ~tumour & (rel <= 1.0 + 0.45) & (patches > 0.2)

    gain, noise_sd = (1.25, 0.035) if row["scanner"] == "3.0T" else (1.0, 0.055)
    # phase-specific mean intensities (liver, tumour, capsule, peritumoral) relative to liver at AP = 100
    levels = {"AP": (100.0, 165.0, 110.0, 145.0), "PVP": (150.0, 115.0, 150.0, 155.0),
              "DP": (140.0, 100.0, 175.0, 140.0)}
    has_capsule = row["encapsulation"] == "Present"
    out = {}
    for phase in PHASES:
        liv, tum, cap_level, peri = levels[phase]
        image = 55.0 * (1 + 0.05 * body_tex)
        liver_img = liv * (1 + (0.07 if cirrhotic else 0.03) * liver_tex + (0.06 if cirrhotic else 0.0) * nodules)
        image = np.where(liver, liver_img, image)
        image = np.where(ape, peri * (1 + 0.03 * liver_tex), image)
        image = np.where(tumour, tum * (1 + heterogeneity * tumour_tex), image)
        if has_capsule:
            image = np.where(capsule, cap_level * (1 + 0.03 * tumour_tex), image)
        image = np.where(hemorrhage, image * 1.35, image)
        image = np.where(necrosis, 35.0 * (1 + 0.04 * tumour_tex), image)
        image = gain * image + rng.normal(0.0, noise_sd * 100.0 * gain, image.shape)
        out[phase] = np.clip(np.round(5.0 * image), 0, 32767).astype(np.int16)
    return out, tumour.astype(np.uint8), None if mask2 is None else mask2.astype(np.uint8)


def _write(array: np.ndarray, prof: ImageProfile, path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in prof.spacing))
    image.SetOrigin((0.0, 0.0, 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)


# --------------------------------------------------------------------------------------------
# Entry point


def synthesize_study(out, *, n: int = 165, seed: int = 20240101, profile: str = "quick", images: bool = True,
                     overwrite: bool = False, progress: Optional[Callable[[int, int], None]] = None) -> SynthSummary:
    """Write the embedded synthetic HCC study to folder ``out``.

    Parameters
    ----------
    out : path of the study folder; must not exist (or be empty) unless ``overwrite``.
    n : number of patients (>= 10); 165 reproduces the paper's counts exactly.
    seed : seed of the single ``np.random.default_rng`` behind every draw; the same seed gives
        the same bytes.
    profile : "quick" (48 x 48 x 16 voxels of 3 x 3 x 5 mm) or "paper" (192 x 192 x 96 voxels of
        1 x 1 x 1.6 mm).
    images : write images and masks (False: clinical.csv, truth.csv and study.yaml only).
    overwrite : replace an existing non-empty ``out``.
    progress : called as ``progress(done, total)`` after each patient's images.

    Returns
    -------
    SynthSummary

    Notes
    -----
    The study is built in a temporary sibling folder and renamed onto ``out`` at the end
    (:func:`dlr.core.output.staged_folder`), so an interrupted run leaves no half-written study.
    ``out/provenance.json`` records every file with its SHA-256, the settings (n, profile,
    images), the seed and the versions of the code; like the study itself, it has the same
    bytes for the same seed and code. The latent model is described in the module docstring.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10:
        raise ValueError(f"n must be an integer >= 10 (two cohorts, two outcome groups), got {n!r}")
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty; choose another folder or pass overwrite=True")
    prof = PROFILES[profile]
    rng = np.random.default_rng(seed)
    clinical, truth = _clinical(int(n), rng)
    config = study_config(seed=seed, profile=profile, n=int(n))
    kappas = [_kappa(clinical[f], clinical[f"{f}_reader2"]) for f in READER2_FEATURES]

    info = provenance(settings={"n": int(n), "profile": profile, "images": bool(images)}, seed=seed)
    # out passed the check above: absent, empty, or to be overwritten; a folder that appears
    # while the study is built is not clobbered
    existed = out.exists()
    try:
        with staged_folder(out, provenance_info=info, replace=existed) as tmp:
            clinical.to_csv(tmp / "clinical.csv", index=False)
            truth.to_csv(tmp / "truth.csv", index=False, float_format="%.10g")
            (tmp / "study.yaml").write_text(dump_study_config(config))
            reader2_ids = set()
            if images:
                reader2_ids = set(rng.choice(clinical["patient_id"].to_numpy(), min(N_REPRODUCIBILITY, int(n)),
                                             replace=False).tolist())
                patient_seeds = rng.integers(0, 2 ** 63 - 1, int(n))
                for i, row in enumerate(clinical.to_dict("records")):
                    pid = row["patient_id"]
                    prng = np.random.default_rng(int(patient_seeds[i]))
                    phases, mask, mask2 = _patient_images(prng, row, float(truth["imaging_latent"].iat[i]), prof,
                                                          pid in reader2_ids)
                    for phase in PHASES:
                        _write(phases[phase], prof, tmp / "images" / pid / f"{phase}.nii.gz")
                        _write(mask, prof, tmp / "masks" / pid / f"{phase}.nii.gz")
                        if mask2 is not None:
                            _write(mask2, prof, tmp / "masks_reader2" / pid / f"{phase}.nii.gz")
                    if progress is not None:
                        progress(i + 1, int(n))
    except FileExistsError:
        if existed or not out.exists():
            raise  # not staged_folder's refusal
        raise ValueError(f"{out} appeared while the study was built; choose another folder or pass "
                         "overwrite=True") from None
    y = clinical["early_recurrence"].to_numpy()
    train = (clinical["cohort"] == "training").to_numpy()
    return SynthSummary(out=out, n=int(n), seed=seed, profile=profile, n_training=int(train.sum()),
                        n_validation=int((~train).sum()), n_events=int(y.sum()),
                        n_events_training=int(y[train].sum()), n_events_validation=int(y[~train].sum()),
                        n_1_5t=int((clinical["scanner"] == "1.5T").sum()),
                        n_3t=int((clinical["scanner"] == "3.0T").sum()),
                        n_reader2=len(reader2_ids), images=images, shape=prof.shape, spacing=prof.spacing,
                        kappa_min=float(np.nanmin(kappas)) if np.isfinite(kappas).any() else float("nan"),
                        kappa_max=float(np.nanmax(kappas)) if np.isfinite(kappas).any() else float("nan"))
