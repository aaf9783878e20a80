"""The staging systems and liver-function scores: BCLC, CNLC, CLIP, Okuda, Child-Pugh, ALBI.

Each system is one function that cites its source, with its rule; definitions and the project's
decisions are those of ``spec/staging.md``. The stages use the rule engine of
:mod:`dlr.modeling.staging.determined` (a stage when the inputs present determine it); ALBI is a
continuous score and needs both of its inputs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dlr.core.errors import InputError

from .determined import _staged
from .inputs import _CLIP_AFP, _TBIL_3_MGDL, _Inputs, _inputs
from .results import SystemResult, _absent, _continuous_missing, _missing_frame, _table

BCLC_STAGES = ("0", "A", "B", "C", "D")
CNLC_STAGES = ("Ia", "Ib", "IIa", "IIb", "IIIa", "IIIb", "IV")
OKUDA_STAGES = ("I", "II", "III")
BCLC_VERSIONS = ("2022", "2010")

_ALBI_GRADE_1_MAX = -2.60
_ALBI_GRADE_2_MAX = -1.39

# ----------------------------------------------------------------------------------------------
# Child-Pugh


def child_pugh(frame: pd.DataFrame) -> SystemResult:
    """Child-Pugh class (A-C) and score (5-15), recorded or computed from its five components.

    Parameters
    ----------
    frame : DataFrame
        ``child_pugh_class`` and/or ``child_pugh_score`` when recorded; otherwise the components
        ``tbil`` (umol/L), ``alb`` (g/L), ``inr``, ``ascites`` and ``encephalopathy`` (0 none,
        1 mild / grade 1-2, 2 moderate-severe / grade 3-4).

    Returns
    -------
    SystemResult
        ``table`` columns ``Child_Pugh`` (A, B, C) and ``Child_Pugh_score`` (<NA> where only a
        class is recorded, or where missing components leave the score open but not the class).

    Notes
    -----
    Points 1/2/3 for bilirubin < 34.2 / 34.2-51.3 / > 51.3 umol/L (2 and 3 mg/dL), albumin
    > 35 / 28-35 / < 28 g/L, INR < 1.7 / 1.7-2.3 / > 2.3, ascites none / mild / moderate-severe,
    encephalopathy none / grade 1-2 / grade 3-4; middle bands inclusive. Class A 5-6, B 7-9,
    C 10-15. Bilirubin is compared in umol/L with the literal cut-offs: 51.3 umol/L / 17.1 is
    2.9999999999999996 mg/dL in floating point, so converting first would misplace a patient at
    the cut-off. A recorded class wins over the components; a recorded class and score that
    disagree are an error. With components missing, the class is still given when every value
    of the missing ones (1 to 3 points each) gives the same class.

    References
    ----------
    Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the oesophagus
    for bleeding oesophageal varices. Br J Surg 1973;60:646-649. (``spec/staging.md``.)
    """
    inp = _inputs(frame)
    missing = [(inp.ids[i], "Child_Pugh", inp.cp_label[i]) for i in range(inp.n) if inp.cp_class[i] is None]
    table = _table(inp, {"Child_Pugh": pd.Series(inp.cp_class, dtype=object),
                         "Child_Pugh_score": pd.array(np.where(np.isnan(inp.cp_score), None, inp.cp_score),
                                                      dtype="Int64")})
    return SystemResult("Child_Pugh", table, _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# BCLC


def _bclc_rule(ecog_ps, child_pugh, macrovascular_invasion, extrahepatic_spread, tumor_number, tumor_diameter, *,
               version):
    if ecog_ps >= 3 or child_pugh == "C":
        return "D"
    if macrovascular_invasion or extrahepatic_spread or ecog_ps >= 1:
        return "C"
    if version == "2022":
        if tumor_number == 1:
            return "0" if tumor_diameter <= 2.0 else "A"
        return "A" if tumor_number <= 3 and tumor_diameter <= 3.0 else "B"
    if tumor_number == 1:
        return "0" if tumor_diameter < 2.0 and child_pugh == "A" else "A"
    return "A" if tumor_number <= 3 and tumor_diameter < 3.0 else "B"


_BCLC_INPUTS = ("ecog_ps", "child_pugh", "macrovascular_invasion", "extrahepatic_spread", "tumor_number",
                "tumor_diameter")


def bclc_stage(frame: pd.DataFrame, *, version: str = "2022", require_all_inputs: bool = False) -> SystemResult:
    """Barcelona Clinic Liver Cancer stage (0, A, B, C, D).

    Parameters
    ----------
    frame : DataFrame
        ``ecog_ps``, Child-Pugh (``child_pugh_class``, ``child_pugh_score`` or its components),
        ``macrovascular_invasion``, ``extrahepatic_spread``, ``tumor_number`` (or
        ``tumor_multiple``), ``tumor_diameter`` (cm, largest nodule).
    version : {"2022", "2010"}
        "2022" (default): Reig et al. 2022. "2010": the EASL-EORTC 2012 figure, for datasets
        treated before 2022.
    require_all_inputs : bool
        Leave the stage empty when any input is missing, even one that cannot change it.

    Returns
    -------
    SystemResult
        ``table`` columns ``BCLC`` (str or None) and ``BCLC_child_pugh_b_flag`` (boolean
        <NA>-able): True where version 2022 stages a Child-Pugh B patient 0-C, the patients whose
        stage depends on not treating Child-Pugh B as end-stage; <NA> where the class is unknown
        but could be B; False otherwise, and always False in version 2010.

    Notes
    -----
    In order: **D** ECOG PS 3-4 or Child-Pugh C; **C** macrovascular invasion (imaging-seen
    tumour thrombus), extrahepatic spread, or ECOG PS 1-2; then, at PS 0, **0** a single nodule
    <= 2 cm; **A** a single nodule of any size, or 2-3 nodules with the largest <= 3 cm; **B**
    beyond A (>= 4 nodules, or 2-3 with one > 3 cm). Version 2010 uses strict < at 2 cm and 3 cm
    and requires Child-Pugh A for stage 0 (a Child-Pugh B single nodule < 2 cm is A).
    Child-Pugh B is staged by these rules in both versions (flagged in 2022, which asks for
    "preserved liver function" in 0-C without making B end-stage). Decisions: ``spec/staging.md``.

    References
    ----------
    Reig M, Forner A, Rimola J, et al. BCLC strategy for prognosis prediction and treatment
    recommendation: the 2022 update. J Hepatol 2022;76:681-693.
    European Association for the Study of the Liver, European Organisation for Research and
    Treatment of Cancer. EASL-EORTC clinical practice guidelines: management of hepatocellular
    carcinoma. J Hepatol 2012;56:908-943 (the BCLC figure; version "2010").
    """
    if version not in BCLC_VERSIONS:
        raise InputError(f"BCLC version {version!r} is not one of {', '.join(BCLC_VERSIONS)}")
    inp = _inputs(frame)

    def rule(**kw):
        return _bclc_rule(**kw, version=version)

    stages, missing = _staged(inp, "BCLC", _BCLC_INPUTS, rule, require_all_inputs=require_all_inputs)
    flags = []
    for i, stage in enumerate(stages):
        if stage is None:
            flags.append(pd.NA)
        elif version != "2022" or stage == "D":
            flags.append(False)
        elif inp.cp_class[i] is not None:
            flags.append(inp.cp_class[i] == "B")
        else:
            flags.append(pd.NA if "B" in inp.cp_candidates[i] else False)
    table = _table(inp, {"BCLC": pd.Series(stages, dtype=object),
                         "BCLC_child_pugh_b_flag": pd.array(flags, dtype="boolean")})
    return SystemResult("BCLC", table, _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# CNLC


def _cnlc_rule(ecog_ps, child_pugh, macrovascular_invasion, extrahepatic_spread, tumor_number, tumor_diameter):
    if ecog_ps >= 3 or child_pugh == "C":
        return "IV"
    if extrahepatic_spread:
        return "IIIb"
    if macrovascular_invasion:
        return "IIIa"
    if tumor_number == 1:
        return "Ia" if tumor_diameter <= 5.0 else "Ib"
    if tumor_number <= 3:
        return "Ib" if tumor_diameter <= 3.0 else "IIa"
    return "IIb"


def cnlc_stage(frame: pd.DataFrame, *, require_all_inputs: bool = False) -> SystemResult:
    """China Liver Cancer stage (Ia, Ib, IIa, IIb, IIIa, IIIb, IV).

    Parameters
    ----------
    frame : DataFrame
        The inputs of :func:`bclc_stage`.
    require_all_inputs : bool
        Leave the stage empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``CNLC`` (str or None).

    Notes
    -----
    In order: **IV** ECOG PS 3-4 or Child-Pugh C; **IIIb** extrahepatic metastasis; **IIIa**
    vascular invasion (tumour thrombus, the ``macrovascular_invasion`` input); then, with PS 0-2
    and Child-Pugh A/B: **Ia** single nodule <= 5 cm; **Ib** single > 5 cm, or 2-3 nodules with
    the largest <= 3 cm; **IIa** 2-3 nodules with the largest > 3 cm; **IIb** >= 4 nodules.
    ECOG PS 1-2 does not up-stage (unlike BCLC). The 2019 and 2022 editions agree on these rules.

    References
    ----------
    Zhou J, Sun H, Wang Z, et al. Guidelines for the diagnosis and treatment of primary liver
    cancer (2022 edition). Liver Cancer 2023;12:405-444.
    """
    inp = _inputs(frame)
    stages, missing = _staged(inp, "CNLC", _BCLC_INPUTS, _cnlc_rule, require_all_inputs=require_all_inputs)
    return SystemResult("CNLC", _table(inp, {"CNLC": pd.Series(stages, dtype=object)}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# CLIP


def _clip_rule(child_pugh, tumor_number, tumor_extent_over_50pct, afp, portal_vein_thrombosis):
    points = {"A": 0, "B": 1, "C": 2}[child_pugh]
    if tumor_extent_over_50pct:
        points += 2
    elif tumor_number >= 2:
        points += 1
    return points + int(afp >= _CLIP_AFP) + int(bool(portal_vein_thrombosis))


def clip_score(frame: pd.DataFrame, *, require_all_inputs: bool = False) -> SystemResult:
    """Cancer of the Liver Italian Program score (0-6).

    Parameters
    ----------
    frame : DataFrame
        Child-Pugh (class, score or components), ``tumor_number`` (or ``tumor_multiple``),
        ``tumor_extent_over_50pct``, ``afp`` (ng/mL), ``portal_vein_thrombosis``.
    require_all_inputs : bool
        Leave the score empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``CLIP`` (Int64, <NA> when empty).

    Notes
    -----
    Child-Pugh A/B/C: 0/1/2 points. Morphology: uninodular and extension <= 50%: 0;
    multinodular and extension <= 50%: 1; massive or extension > 50%: 2. AFP >= 400 ng/mL: 1.
    Portal vein thrombosis: 1. "Massive" is not among the contract's inputs: a massive tumour
    scores 2 through ``tumor_extent_over_50pct`` = 1 (it fills more than half of the liver).

    References
    ----------
    The Cancer of the Liver Italian Program (CLIP) Investigators. A new prognostic system for
    hepatocellular carcinoma: a retrospective study of 435 patients. Hepatology
    1998;28:751-755.
    """
    inp = _inputs(frame)
    scores, missing = _staged(inp, "CLIP", ("child_pugh", "tumor_number", "tumor_extent_over_50pct", "afp",
                                            "portal_vein_thrombosis"), _clip_rule,
                              require_all_inputs=require_all_inputs)
    return SystemResult("CLIP", _table(inp, {"CLIP": pd.array(scores, dtype="Int64")}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# Okuda


def okuda_stage(frame: pd.DataFrame, *, inclusive: bool = False, require_all_inputs: bool = False) -> SystemResult:
    """Okuda stage (I, II, III).

    Parameters
    ----------
    frame : DataFrame
        ``tumor_extent_over_50pct``, ``ascites`` (any ascites, > 0, scores), ``alb`` (g/L),
        ``tbil`` (umol/L).
    inclusive : bool
        False (default): albumin < 3 g/dL and bilirubin > 3 mg/dL score, as in Okuda 1985.
        True: <= and >=, as some later sources state them.
    require_all_inputs : bool
        Leave the stage empty when any input is missing.

    Returns
    -------
    SystemResult
        ``table`` column ``Okuda`` (str or None).

    Notes
    -----
    One point each: tumour > 50% of the liver, ascites, albumin < 3 g/dL (30 g/L), bilirubin
    > 3 mg/dL (51.3 umol/L, compared in umol/L). Stage I: 0 points; II: 1-2; III: 3-4.

    References
    ----------
    Okuda K, Ohtsuki T, Obata H, et al. Natural history of hepatocellular carcinoma and
    prognosis in relation to treatment: study of 850 patients. Cancer 1985;56:918-928.
    """
    inp = _inputs(frame)

    def rule(tumor_extent_over_50pct, ascites, alb, tbil):
        low_alb = alb <= 30.0 if inclusive else alb < 30.0
        high_tbil = tbil >= _TBIL_3_MGDL if inclusive else tbil > _TBIL_3_MGDL
        points = int(bool(tumor_extent_over_50pct)) + int(ascites > 0) + int(low_alb) + int(high_tbil)
        return OKUDA_STAGES[0] if points == 0 else (OKUDA_STAGES[1] if points <= 2 else OKUDA_STAGES[2])

    stages, missing = _staged(inp, "Okuda", ("tumor_extent_over_50pct", "ascites", "alb", "tbil"), rule,
                              require_all_inputs=require_all_inputs)
    return SystemResult("Okuda", _table(inp, {"Okuda": pd.Series(stages, dtype=object)}), _missing_frame(missing))


# ----------------------------------------------------------------------------------------------
# ALBI


def albi_grade(score) -> np.ndarray:
    """ALBI grade (1, 2, 3; NaN where the score is NaN) of unrounded ALBI scores.

    Notes
    -----
    Grade 1: score <= -2.60; grade 2: -2.60 < score <= -1.39; grade 3: score > -1.39. The
    unrounded score is graded: rounding first, or the -2.61 some calculators use, moves
    patients across the cut-offs.

    References
    ----------
    Johnson PJ, Berhane S, Kagebayashi C, et al. Assessment of liver function in patients with
    hepatocellular carcinoma: a new evidence-based approach - the ALBI grade. J Clin Oncol
    2015;33:550-558.
    """
    s = np.asarray(score, dtype=float)
    grade = np.where(s <= _ALBI_GRADE_1_MAX, 1.0, np.where(s <= _ALBI_GRADE_2_MAX, 2.0, 3.0))
    return np.where(np.isnan(s), np.nan, grade)


def albi(frame: pd.DataFrame) -> SystemResult:
    """Albumin-bilirubin (ALBI) score and grade.

    Parameters
    ----------
    frame : DataFrame
        ``tbil`` (umol/L, > 0) and ``alb`` (g/L).

    Returns
    -------
    SystemResult
        ``table`` columns ``ALBI`` (float, full precision) and ``ALBI_grade`` (Int64 1-3).

    Notes
    -----
    ALBI = 0.66 x log10(bilirubin, umol/L) - 0.085 x albumin (g/L), graded by
    :func:`albi_grade` without rounding. E.g. bilirubin 15, albumin 42: -2.79378..., grade 1.

    References
    ----------
    Johnson PJ, Berhane S, Kagebayashi C, et al. J Clin Oncol 2015;33:550-558.
    """
    inp = _inputs(frame)
    score = _albi_values(inp)
    missing = _continuous_missing(inp, "ALBI", score, _absent(inp, "tbil", "alb"))
    grade = albi_grade(score)
    table = _table(inp, {"ALBI": score, "ALBI_grade": pd.array(np.where(np.isnan(grade), None, grade),
                                                               dtype="Int64")})
    return SystemResult("ALBI", table, _missing_frame(missing))


def _albi_values(inp: _Inputs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.66 * np.log10(inp.num["tbil"]) - 0.085 * inp.num["alb"]
