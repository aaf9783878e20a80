"""Staging systems and indexes (modeling/staging/): the worked examples of spec/staging.md,
the cut-offs of each definition, missing and bad inputs, ERASL, and the recorded BCLC and CLIP
stages of 105 real patients (TCIA HCC-TACE-Seg)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from dlr.core.errors import InputError
from dlr.modeling import staging as st

from conftest import DATA

HCC_TACE = DATA / "real" / "hcc_tace_seg_clinical" / "HCC-TACE-Seg_clinical_data-V2__data_table.csv"

# spec/staging.md, "Worked examples": the default labs
DEFAULT = dict(tbil=15.0, alb=42.0, child_pugh_class="A", child_pugh_score=5, ecog_ps=0, macrovascular_invasion=0,
               extrahepatic_spread=0, afp=8.0, tumor_extent_over_50pct=0, portal_vein_thrombosis=0, neutrophils=3.0,
               lymphocytes=1.5, platelets=150.0, monocytes=0.5, gender="Male")


def patients(*rows, **common) -> pd.DataFrame:
    """Patients P0, P1, ... (or the given patient_id): default labs, then ``common``, then the row."""
    return pd.DataFrame([{"patient_id": f"P{k}", **DEFAULT, **common, **row} for k, row in enumerate(rows)])


def one(frame_or_row, column, **options):
    frame = frame_or_row if isinstance(frame_or_row, pd.DataFrame) else patients(frame_or_row)
    return st.compute_staging(frame, **options).table[column].iloc[0]


# ---------------------------------------------------------------------------------------------
# Worked examples (spec/staging.md), exact

WORKED = {  # case: (inputs beyond the default, BCLC 2022, CNLC, CLIP)
    "P1": (dict(tumor_number=1, tumor_diameter=2.0), "0", "Ia", 0),
    "P3": (dict(tumor_number=1, tumor_diameter=5.0, afp=399.0), "A", "Ia", 0),
    "P4": (dict(tumor_number=1, tumor_diameter=5.1, afp=400.0), "A", "Ib", 1),
    "P7": (dict(tumor_number=4, tumor_diameter=1.5), "B", "IIb", 1),
    "P9": (dict(tumor_number=5, tumor_diameter=2.0, extrahepatic_spread=1, ecog_ps=1, afp=50.0), "C", "IIIb", 1),
    "P11": (dict(tumor_number=1, tumor_diameter=4.0, ecog_ps=3), "D", "IV", 0),
}


@pytest.fixture(scope="module")
def worked():
    frame = pd.DataFrame([{**DEFAULT, **inputs, "patient_id": case} for case, (inputs, *_) in WORKED.items()])
    return st.compute_staging(frame)


@pytest.mark.parametrize("case", list(WORKED))
def test_worked_example(worked, case):
    _, bclc, cnlc, clip = WORKED[case]
    row = worked.table.set_index("patient_id").loc[case]
    assert (row["BCLC"], row["CNLC"], row["CLIP"]) == (bclc, cnlc, clip)
    assert not row["BCLC_child_pugh_b_flag"]


def test_worked_default_labs(worked):
    """ALBI = 0.66 x log10(15) - 0.085 x 42 = -2.79378 (grade 1); NLR 2.0, PLR 100.0, LMR 3.0."""
    t = worked.table
    assert_allclose(t["ALBI"], -2.79378, atol=5e-6)
    assert (t["ALBI"] == 0.66 * math.log10(15) - 0.085 * 42).all()  # full precision, never rounded
    assert (t["ALBI_grade"] == 1).all()
    assert (t["NLR"] == 2.0).all() and (t["PLR"] == 100.0).all() and (t["LMR"] == 3.0).all()
    assert (t["Child_Pugh"] == "A").all() and (t["Child_Pugh_score"] == 5).all()
    assert list(t.columns) == list(st.TABLE_COLUMNS)
    # nothing empty but ERASL (no coefficients, no outcome) and Okuda (ascites not recorded)
    assert set(worked.missing["system"]) == {"ERASL", "Okuda"}
    assert list(worked.missing.columns) == ["patient_id", "system", "missing_inputs"]
    assert (worked.missing.loc[worked.missing.system == "Okuda", "missing_inputs"] == "ascites").all()


def test_comparator_scores(worked):
    """Contract section 3: BCLC 0-D -> 0-4, CNLC Ia-IV -> 1-7, LMR negated."""
    scores = st.comparator_scores(worked.table).set_index("patient_id")
    assert scores.loc[["P1", "P3", "P7", "P9", "P11"], "BCLC"].tolist() == [0, 1, 2, 3, 4]
    assert scores.loc[["P1", "P4", "P7", "P9", "P11"], "CNLC"].tolist() == [1, 2, 4, 6, 7]
    assert (scores["LMR"] == -3.0).all() and (scores["NLR"] == 2.0).all() and (scores["PLR"] == 100.0).all()
    assert scores["ERASL"].isna().all()
    every = pd.DataFrame({"patient_id": list("abcdefg"), "BCLC": ["0", "A", "B", "C", "D", None, 0],
                          "CNLC": list(st.CNLC_STAGES), "ERASL": 0.5, "NLR": 1.0, "PLR": 1.0, "LMR": 2.0})
    out = st.comparator_scores(every)
    assert out["CNLC"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert out["BCLC"].tolist()[:5] == [0, 1, 2, 3, 4] and np.isnan(out["BCLC"][5]) and out["BCLC"][6] == 0
    with pytest.raises(InputError, match=r"patient 'b', column 'BCLC': 'E'"):
        st.comparator_scores(every.assign(BCLC=["0", "E", "B", "C", "D", None, 0]))


# ---------------------------------------------------------------------------------------------
# Cut-offs: exactly at each boundary, per version


@pytest.mark.parametrize("number, diameter, v2022, v2010", [
    (1, 2.0, "0", "A"),      # 2022: <= 2 cm; 2010: < 2 cm
    (1, 1.99, "0", "0"),
    (1, 2.01, "A", "A"),
    (1, 12.0, "A", "A"),     # a single nodule of any size is A
    (3, 3.0, "A", "B"),      # 2022: largest <= 3 cm; 2010: < 3 cm
    (2, 2.99, "A", "A"),
    (3, 3.01, "B", "B"),
    (4, 1.0, "B", "B"),
    (2, 5.0, "B", "B"),
])
def test_bclc_tumour_burden_2022_vs_2010(number, diameter, v2022, v2010):
    row = dict(tumor_number=number, tumor_diameter=diameter)
    assert one(row, "BCLC", bclc_version="2022") == v2022
    assert one(row, "BCLC", bclc_version="2010") == v2010


def test_bclc_child_pugh():
    frame = patients(dict(child_pugh_class="B", child_pugh_score=8), dict(child_pugh_class="C", child_pugh_score=10),
                     dict(child_pugh_class="B", child_pugh_score=8, ecog_ps=2), tumor_number=1, tumor_diameter=1.5)
    new = st.bclc_stage(frame, version="2022").table
    old = st.bclc_stage(frame, version="2010").table
    assert new["BCLC"].tolist() == ["0", "D", "C"]          # B staged by the rules, C is end-stage
    assert new["BCLC_child_pugh_b_flag"].tolist() == [True, False, True]
    assert old["BCLC"].tolist() == ["A", "D", "C"]          # 2010: stage 0 requires Child-Pugh A
    assert old["BCLC_child_pugh_b_flag"].tolist() == [False, False, False]


def test_bclc_order_of_rules():
    # D before C, C before tumour burden; macrovascular invasion and PS 1-2 give C
    assert one(dict(tumor_number=1, tumor_diameter=1.0, ecog_ps=4, macrovascular_invasion=1), "BCLC") == "D"
    assert one(dict(tumor_number=1, tumor_diameter=1.0, macrovascular_invasion=1), "BCLC") == "C"
    assert one(dict(tumor_number=1, tumor_diameter=1.0, ecog_ps=2), "BCLC") == "C"
    # portal vein thrombosis is a CLIP input, not BCLC's macrovascular invasion (staging.md)
    assert one(dict(tumor_number=1, tumor_diameter=1.0, portal_vein_thrombosis=1), "BCLC") == "0"


@pytest.mark.parametrize("row, cnlc", [
    (dict(tumor_number=1, tumor_diameter=5.0), "Ia"),
    (dict(tumor_number=1, tumor_diameter=5.01), "Ib"),
    (dict(tumor_number=3, tumor_diameter=3.0), "Ib"),
    (dict(tumor_number=2, tumor_diameter=3.01), "IIa"),
    (dict(tumor_number=4, tumor_diameter=1.0), "IIb"),
    (dict(tumor_number=1, tumor_diameter=2.0, ecog_ps=2), "Ia"),  # PS 1-2 does not up-stage
    (dict(tumor_number=1, tumor_diameter=2.0, macrovascular_invasion=1), "IIIa"),
    (dict(tumor_number=1, tumor_diameter=2.0, macrovascular_invasion=1, extrahepatic_spread=1), "IIIb"),
    (dict(tumor_number=1, tumor_diameter=2.0, child_pugh_class="C", child_pugh_score=11), "IV"),
    (dict(tumor_number=1, tumor_diameter=2.0, ecog_ps=3), "IV"),
])
def test_cnlc(row, cnlc):
    assert one(row, "CNLC") == cnlc


def test_clip_points():
    frame = patients(dict(tumor_number=1, afp=399.99),
                     dict(tumor_number=1, afp=400.0),
                     dict(tumor_number=2),
                     dict(tumor_number=1, tumor_extent_over_50pct=1),
                     dict(tumor_number=3, tumor_extent_over_50pct=1, afp=1e5, portal_vein_thrombosis=1,
                          child_pugh_class="C", child_pugh_score=12),
                     dict(tumor_number=1, child_pugh_class="B", child_pugh_score=7),
                     tumor_diameter=3.0)
    assert st.clip_score(frame).table["CLIP"].tolist() == [0, 1, 1, 2, 6, 1]


def test_albi_grade_at_the_cut_offs():
    """Grade 1 <= -2.60 < grade 2 <= -1.39 < grade 3, on the unrounded score."""
    grid = [-2.60, np.nextafter(-2.60, 0), -1.39, np.nextafter(-1.39, 0), -2.604, -2.596, np.nan]
    assert_allclose(st.albi_grade(grid), [1, 2, 2, 3, 1, 2, np.nan])
    # the same through real inputs whose score is exactly the cut-off in floating point
    frame = patients(dict(tbil=10.0, alb=38.35294117647059), dict(tbil=100.0, alb=31.882352941176467),
                     dict(tbil=10.0, alb=(0.66 + 2.596) / 0.085))  # -2.596: rounds to -2.60, still grade 2
    t = st.albi(frame).table
    assert t["ALBI"].tolist()[:2] == [-2.6, -1.39]
    assert t["ALBI_grade"].tolist() == [1, 2, 2]


@pytest.mark.parametrize("tbil, points", [(34.19, 1), (34.2, 2), (51.3, 2), (51.31, 3)])
def test_child_pugh_bilirubin_in_umol(tbil, points):
    """51.3 umol/L is 3 mg/dL: middle band (2 points), though 51.3 / 17.1 = 2.9999999999999996."""
    assert 51.3 / 17.1 != 3.0  # the trap this guards against
    frame = patients(dict(tbil=tbil), child_pugh_class=None, child_pugh_score=None, alb=40.0, inr=1.0, ascites=0,
                     encephalopathy=0)
    t = st.child_pugh(frame).table
    assert t["Child_Pugh_score"].tolist() == [4 + points]
    assert t["Child_Pugh"].tolist() == ["A" if points < 3 else "B"]


def test_child_pugh_components():
    rows = [  # (alb, inr, ascites, encephalopathy) with bilirubin 20 (1 point) -> score
        (35.0, 1.0, "none", "none", 6),           # albumin 35 g/L: middle band
        (35.1, 1.0, 0, 0, 5),
        (28.0, 1.7, "mild", 0, 8),
        (27.9, 2.3, 2, "grade 1-2", 11),
        (40.0, 2.31, "moderate-severe", "grade 3-4", 11),
    ]
    frame = patients(*[dict(alb=a, inr=i, ascites=asc, encephalopathy=enc) for a, i, asc, enc, _ in rows],
                     tbil=20.0, child_pugh_class=None, child_pugh_score=None)
    t = st.child_pugh(frame).table
    assert t["Child_Pugh_score"].tolist() == [r[-1] for r in rows]
    assert t["Child_Pugh"].tolist() == ["A", "A", "B", "C", "C"]


def test_okuda_strict_and_inclusive():
    frame = patients(dict(tbil=51.3, alb=30.0), dict(tbil=51.4, alb=29.9),
                     dict(tbil=60.0, alb=25.0, tumor_extent_over_50pct=1, ascites=1), ascites=0)
    assert st.okuda_stage(frame).table["Okuda"].tolist() == ["I", "II", "III"]
    assert st.okuda_stage(frame, inclusive=True).table["Okuda"].tolist() == ["II", "II", "III"]


# ---------------------------------------------------------------------------------------------
# Missing inputs: empty and listed, or determined when nothing missing could change it


def test_missing_inputs_leave_a_system_empty_and_named():
    frame = patients(
        dict(patient_id="single-no-size", tumor_number=1, tumor_diameter=None),
        dict(patient_id="ps3-no-tumour", ecog_ps=3),
        dict(patient_id="no-child-pugh", tumor_number=1, tumor_diameter=1.0, ecog_ps=1, child_pugh_class=None,
             child_pugh_score=None),
        dict(patient_id="no-labs", tumor_number=1, tumor_diameter=1.0, tbil=None, lymphocytes=None, afp=None),
    )
    result = st.compute_staging(frame)
    t = result.table.set_index("patient_id")
    miss = result.missing.set_index(["patient_id", "system"])["missing_inputs"]
    # single nodule of unknown size at PS 0: 0 or A, Ia or Ib -> empty
    assert t.loc["single-no-size", "BCLC"] is None and t.loc["single-no-size", "CNLC"] is None
    assert miss["single-no-size", "BCLC"] == "tumor_diameter" and miss["single-no-size", "CNLC"] == "tumor_diameter"
    assert t.loc["single-no-size", "CLIP"] == 0  # CLIP does not use the size
    # PS 3 is BCLC D and CNLC IV whatever the tumour; CLIP needs the nodule count
    assert t.loc["ps3-no-tumour", "BCLC"] == "D" and t.loc["ps3-no-tumour", "CNLC"] == "IV"
    assert ("ps3-no-tumour", "BCLC") not in miss.index
    assert pd.isna(t.loc["ps3-no-tumour", "CLIP"]) and miss["ps3-no-tumour", "CLIP"] == "tumor_number"
    # without any Child-Pugh information, PS 1 is C or D
    assert t.loc["no-child-pugh", "BCLC"] is None and pd.isna(t.loc["no-child-pugh", "BCLC_child_pugh_b_flag"])
    assert miss["no-child-pugh", "BCLC"] == "child_pugh_class (components missing: inr, ascites, encephalopathy)"
    assert miss["no-child-pugh", "Child_Pugh"].startswith("child_pugh_class")
    # labs: every index that needs them is empty and says which input was missing
    assert np.isnan(t.loc["no-labs", "ALBI"]) and pd.isna(t.loc["no-labs", "ALBI_grade"])
    assert miss["no-labs", "ALBI"] == "tbil"
    assert miss["no-labs", "NLR"] == "lymphocytes" and miss["no-labs", "LMR"] == "lymphocytes"
    assert miss["no-labs", "CLIP"] == "afp" and pd.isna(t.loc["no-labs", "CLIP"])
    assert t.loc["no-labs", "BCLC"] == "0" and t.loc["no-labs", "Child_Pugh"] == "A"  # recorded class
    # every empty cell of the contract's systems has its row in `missing`, and no other row exists
    for system in ("BCLC", "CNLC", "ALBI", "CLIP", "NLR", "PLR", "LMR", "Okuda", "Child_Pugh"):
        empty = set(t.index[t[system].isna()])
        assert empty == set(result.missing.loc[result.missing.system == system, "patient_id"]), system


def test_require_all_inputs():
    frame = patients(dict(ecog_ps=3))
    assert st.bclc_stage(frame).table["BCLC"].tolist() == ["D"]
    strict = st.bclc_stage(frame, require_all_inputs=True)
    assert strict.table["BCLC"].tolist() == [None]
    assert strict.missing["missing_inputs"].tolist() == ["tumor_number, tumor_diameter"]


def test_absent_columns_and_zero_denominators():
    frame = patients(dict(lymphocytes=0.0), dict(monocytes=0.0)).drop(columns=["tbil", "platelets"])
    result = st.compute_staging(frame)
    miss = result.missing.set_index(["patient_id", "system"])["missing_inputs"]
    assert result.table["NLR"].isna().tolist() == [True, False]
    assert miss["P0", "NLR"] == "lymphocytes (0: ratio undefined)"
    assert miss["P1", "LMR"] == "monocytes (0: ratio undefined)"
    assert miss["P1", "PLR"] == "platelets" and miss["P1", "ALBI"] == "tbil"
    assert result.table["ALBI"].isna().all()


def test_partial_child_pugh_and_multinodular_of_unknown_count():
    frame = patients(
        dict(tbil=60.0, alb=25.0, inr=2.5),  # 9 points known, 2-6 missing: always class C
        dict(tbil=40.0, alb=30.0, inr=1.8),  # 6 known, 8-12 in all: B or C, so BCLC A or D
        dict(tbil=20.0, alb=40.0, inr=1.0),  # 3 known, 5-9 in all: A or B, BCLC A either way
        child_pugh_class=None, child_pugh_score=None, tumor_number=1, tumor_diameter=3.0)
    t = st.compute_staging(frame).table
    assert t["Child_Pugh"].tolist() == ["C", None, None] and t["Child_Pugh_score"].isna().all()
    assert t["BCLC"].tolist() == ["D", None, "A"]
    assert t["BCLC_child_pugh_b_flag"].tolist()[0] is False
    assert pd.isna(t["BCLC_child_pugh_b_flag"][1]) and pd.isna(t["BCLC_child_pugh_b_flag"][2])  # could be B
    # "multinodular", count unknown: B when the largest is > 3 cm, open (A or B) when <= 3 cm
    frame = patients(dict(tumor_diameter=4.0), dict(tumor_diameter=2.0), tumor_multiple=1)
    result = st.compute_staging(frame)
    assert result.table["BCLC"].tolist() == ["B", None]
    assert result.table["CLIP"].tolist() == [1, 1]
    assert result.missing.query("system == 'BCLC'")["missing_inputs"].tolist() == [
        "tumor_number (multiple, count unknown)"]
    single = st.compute_staging(patients(dict(tumor_multiple=0, tumor_diameter=2.0))).table
    assert single["BCLC"].tolist() == ["0"]


def test_determined_stages_are_never_wrong():
    """Oracle: blank inputs of complete random patients; any stage still given equals the full one."""
    rng = np.random.default_rng(7)
    n = 400
    full = pd.DataFrame({
        "patient_id": [f"R{i}" for i in range(n)], "ecog_ps": rng.choice(5, n, p=[.5, .2, .1, .1, .1]),
        "child_pugh_class": rng.choice(list("ABC"), n, p=[.6, .3, .1]),
        "macrovascular_invasion": rng.binomial(1, .15, n), "extrahepatic_spread": rng.binomial(1, .1, n),
        "portal_vein_thrombosis": rng.binomial(1, .15, n), "tumor_extent_over_50pct": rng.binomial(1, .2, n),
        "tumor_number": rng.choice([1, 2, 3, 4, 6], n),
        "tumor_diameter": np.where(rng.random(n) < .3, rng.choice([2.0, 3.0, 5.0], n), rng.uniform(.5, 9, n)),
        "afp": np.where(rng.random(n) < .2, 400.0, rng.lognormal(3, 2, n)),
    })
    bclc_inputs = ["ecog_ps", "child_pugh_class", "macrovascular_invasion", "extrahepatic_spread", "tumor_number",
                   "tumor_diameter"]
    clip_inputs = ["child_pugh_class", "tumor_number", "tumor_extent_over_50pct", "afp", "portal_vein_thrombosis"]
    truth = {v: st.compute_staging(full, bclc_version=v).table for v in st.BCLC_VERSIONS}
    blanked = full.copy()
    for col in full.columns[1:]:
        blanked[col] = blanked[col].astype(object).where(rng.random(n) > .3, None)
    for v in st.BCLC_VERSIONS:
        got = st.compute_staging(blanked, bclc_version=v).table
        for system, inputs in (("BCLC", bclc_inputs), ("CNLC", bclc_inputs), ("CLIP", clip_inputs)):
            given = got[system].notna()
            assert (given & blanked[inputs].isna().any(axis=1)).sum() >= 3  # given despite blanks
            assert (got.loc[given, system] == truth[v].loc[given, system]).all(), (v, system)


# ---------------------------------------------------------------------------------------------
# Bad input: InputError naming the patient, the column and the fix


@pytest.mark.parametrize("row, pattern", [
    (dict(child_pugh_class="E", child_pugh_score=None), r"patient 'P0', column 'child_pugh_class': 'E'.*A, B or C"),
    (dict(neutrophils=-1.0), r"patient 'P0', column 'neutrophils': -1\.0 is not a neutrophil count"),
    (dict(afp="high"), r"patient 'P0', column 'afp': 'high' is not an AFP"),
    (dict(ecog_ps=5), r"column 'ecog_ps': 5 is not an ECOG"),
    (dict(ecog_ps=1.5), r"column 'ecog_ps': 1\.5"),
    (dict(tumor_number=0), r"column 'tumor_number': 0 is not a nodule count"),
    (dict(macrovascular_invasion="yes"), r"column 'macrovascular_invasion': 'yes' is not 0/1"),
    (dict(gender="X"), r"column 'gender': 'X'.*Male or Female"),
    (dict(ascites=3), r"column 'ascites': 3 is not a valid ascites code"),
    (dict(child_pugh_score=9), r"class A contradicts child_pugh_score 9"),
    (dict(tumor_number=1, tumor_multiple=1), r"column 'tumor_multiple': 1 contradicts tumor_number 1"),
    (dict(tbil=0.9), r"column 'tbil'.*mg/dL.*17\.1"),
    (dict(alb=4.2), r"column 'alb'.*g/dL"),
    (dict(tumor_diameter=45.0, tumor_number=1), r"column 'tumor_diameter'.*mm"),
])
def test_bad_input_names_patient_column_and_fix(row, pattern):
    with pytest.raises(InputError, match=pattern):
        st.compute_staging(patients(row))


def test_bad_input_lists_every_problem():
    frame = patients(dict(child_pugh_class="E", child_pugh_score=None), dict(platelets=-5), dict(afp="n.d."))
    with pytest.raises(InputError) as err:
        st.compute_staging(frame)
    message = str(err.value)
    assert "3 problem(s)" in message
    for where in ("patient 'P0', column 'child_pugh_class'", "patient 'P1', column 'platelets'",
                  "patient 'P2', column 'afp'"):
        assert where in message


def test_bad_options_and_ids():
    with pytest.raises(InputError, match="BCLC version '2018'"):
        st.compute_staging(patients({}), bclc_version="2018")
    with pytest.raises(InputError, match="'P0' appear on more than one row"):
        st.compute_staging(pd.concat([patients({}), patients({})]))
    with pytest.raises(InputError, match="missing key.*cutoffs"):
        st.erasl_score(patients({}), coefficients=dict(male=1, albi_grade=1, log_afp=1, tumor_size=1,
                                                       multiple_tumours=1, source="x"))
    with pytest.raises(InputError, match="unknown key.*albi"):
        st.erasl_score(patients({}), coefficients=dict(TEST_COEFFICIENTS, albi=1))


# ---------------------------------------------------------------------------------------------
# ERASL: caller's coefficients, or a refit on the development cohort labelled as such

# Arbitrary numbers to test the arithmetic: NOT the published ERASL-pre coefficients.
TEST_COEFFICIENTS = dict(male=0.5, albi_grade=0.25, log_afp=0.125, tumor_size=0.0625, multiple_tumours=1.0,
                         intercept=-1.0, cutoffs=[0.25, 1.0], source="test values, not published coefficients")


def test_erasl_score_with_given_coefficients():
    frame = patients(dict(tumor_number=1, tumor_diameter=4.0, afp=100.0),                    # male, grade 1
                     dict(tumor_number=3, tumor_diameter=8.0, afp=10000.0, gender="Female", alb=30.0),  # grade 2
                     dict(tumor_number=1, tumor_diameter=4.0, afp=0.0),
                     dict(tumor_number=1, tumor_diameter=None, afp=5.0))
    result = st.erasl_score(frame, coefficients=TEST_COEFFICIENTS)
    expected0 = -1.0 + 0.5 + 0.25 * 1 + 0.125 * 2 + 0.0625 * 4.0
    expected1 = -1.0 + 0.25 * 2 + 0.125 * 4 + 0.0625 * 8.0 + 1.0
    assert result.table["ERASL"].tolist()[:2] == [expected0, expected1]
    assert result.table["ERASL_group"].tolist() == ["low", "high", None, None]  # 0.25 at the first cut-off: low
    assert result.table["ERASL_label"].eq("ERASL").all()
    assert result.missing["missing_inputs"].tolist() == ["afp (0: log undefined)", "tumor_diameter"]
    dummies = st.erasl_score(frame, coefficients=dict(TEST_COEFFICIENTS, albi_grade=[0.3, 0.9]))
    assert_allclose(dummies.table["ERASL"][:2], [expected0 - 0.25, expected1 - 0.5 + 0.3])


def _refit_cohort(n=240, seed=3):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "patient_id": [f"E{i:03d}" for i in range(n)], "cohort": np.where(np.arange(n) < 160, "training", "validation"),
        "gender": rng.choice(["Male", "Female"], n, p=[.8, .2]), "tbil": rng.lognormal(2.7, .5, n),
        "alb": rng.normal(39, 5, n), "afp": rng.lognormal(3, 2.5, n), "tumor_diameter": rng.uniform(1, 12, n),
        "tumor_number": rng.choice([1, 2, 4], n, p=[.6, .3, .1])})
    lp = -2 + 0.6 * (frame.gender == "Male") + 0.15 * np.log10(frame.afp) + 0.12 * frame.tumor_diameter
    frame["early_recurrence"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return frame


def test_erasl_refit_matches_statsmodels_and_uses_development_only():
    import statsmodels.api as sm

    frame = _refit_cohort()
    dev = (frame.cohort == "training").to_numpy()
    refit = st.erasl_refit(frame, frame.early_recurrence, dev)
    c = refit.coefficients
    assert c.label == "ERASL (refit)" and "development cohort (160 patients" in c.source
    assert refit.result.table["ERASL_label"].eq("ERASL (refit)").all()
    albi = st.albi(frame).table["ALBI_grade"].astype(float)
    x = sm.add_constant(np.column_stack([frame.gender == "Male", albi, np.log10(frame.afp), frame.tumor_diameter,
                                         frame.tumor_number >= 2]).astype(float))
    ref = sm.Logit(frame.early_recurrence[dev].to_numpy(), x[dev]).fit(disp=0).params
    assert_allclose([c.intercept, c.male, c.albi_grade, c.log_afp, c.tumor_size, c.multiple_tumours], ref, rtol=1e-6)
    scores = refit.result.table["ERASL"].to_numpy()
    assert_allclose(scores, x @ ref, rtol=1e-6)
    assert_allclose(c.cutoffs, np.quantile(scores[dev], [1 / 3, 2 / 3]), rtol=1e-12)
    groups = refit.result.table["ERASL_group"][dev].value_counts()
    assert groups.to_dict() == {"low": 54, "intermediate": 53, "high": 53}
    # the validation cohort's outcomes never enter the fit
    flipped = frame.early_recurrence.where(dev, 1 - frame.early_recurrence)
    assert st.erasl_refit(frame, flipped, dev).coefficients == c


def test_compute_staging_erasl_modes():
    frame = _refit_cohort()
    refit = st.compute_staging(frame, outcome="early_recurrence")
    assert refit.erasl_label == "ERASL (refit)" and refit.table["ERASL_label"].eq("ERASL (refit)").all()
    assert refit.table["ERASL"].notna().all() and "ERASL" not in set(refit.missing["system"])
    given = st.compute_staging(frame, erasl_coefficients=TEST_COEFFICIENTS)
    assert given.erasl_label == "ERASL" and given.erasl_coefficients.source.startswith("test values")
    none = st.compute_staging(frame)
    assert none.erasl_label is None and none.table["ERASL"].isna().all()
    assert none.missing.query("system == 'ERASL'")["missing_inputs"].str.startswith("coefficients").all()
    with pytest.raises(InputError, match="column 'recurrence' not found"):
        st.compute_staging(frame, outcome="recurrence")
    with pytest.raises(InputError, match="outcome 2 is not 0/1"):
        st.compute_staging(frame.assign(early_recurrence=2), outcome="early_recurrence")


# ---------------------------------------------------------------------------------------------
# Real data: TCIA HCC-TACE-Seg, 105 patients with recorded BCLC and CLIP


def hcc_tace_seg_inputs(table: pd.DataFrame) -> pd.DataFrame:
    """Map the HCC-TACE-Seg clinical table (V2) onto the staging inputs, per its glossary.

    ========================================== ============================================
    dataset column (glossary)                  staging input
    ========================================== ============================================
    TCIA_ID                                    patient_id
    PS_bclc_0_0_1-2_1_3-4_3 (0; 1 = PS 1-2;    ecog_ps 0, 1, 3: the band's lowest value; no
    3 = PS 3-4)                                rule separates 1 from 2 or 3 from 4
    CPS (A, B, C)                              child_pugh_class
    tumor_nodul (uninodular, multinodular)     tumor_multiple 0 / 1; tumor_number left empty
                                               (no count is recorded): uninodular -> 1,
                                               multinodular -> >= 2 of unknown count
    Tr_Size (cm; empty for 52 patients)        tumor_diameter, taken as the largest nodule
    Vascular invasion (Y = 1)                  macrovascular_invasion (TACE patients: imaging)
    Portal Vein Thrombosis (Y = 1)             portal_vein_thrombosis
    Metastasis or Lymphnodes (Y = 1)           extrahepatic_spread (BCLC C includes N1 and M1)
    T_involvment (<= 50%, > 50%)               tumor_extent_over_50pct
    AFP (ng/mL)                                afp (agrees with AFP_group at 400 for all 105)
    Sex (1 = Male, 2 = Female)                 gender
    ========================================== ============================================

    Not recorded: bilirubin, albumin, INR, ascites, encephalopathy, blood counts; so ALBI, Okuda
    (recorded, not recomputed), the ratios, CNLC's tumour counts and ERASL stay empty.
    """
    return pd.DataFrame({
        "patient_id": table["TCIA_ID"],
        "ecog_ps": table["PS_bclc_0_0_1-2_1_3-4_3"],
        "child_pugh_class": table["CPS"],
        "tumor_multiple": table["tumor_nodul"].map({"uninodular": 0, "multinodular": 1}),
        "tumor_diameter": table["Tr_Size"],
        "macrovascular_invasion": table["Vascular invasion"],
        "portal_vein_thrombosis": table["Portal Vein Thrombosis"],
        "extrahepatic_spread": (table["Metastasis"].astype(bool) | table["Lymphnodes"].astype(bool)).astype(int),
        "tumor_extent_over_50pct": table["T_involvment"].map({"< or = 50%": 0, ">50%": 1}),
        "afp": table["AFP"],
        "gender": table["Sex"].map({1: "Male", 2: "Female"}),
    })


@pytest.fixture(scope="module")
def hcc_tace():
    table = pd.read_csv(HCC_TACE)
    assert len(table) == 105
    inputs = hcc_tace_seg_inputs(table)
    assert inputs.notna().sum().to_dict() == {c: (53 if c == "tumor_diameter" else 105) for c in inputs.columns}
    recorded = pd.DataFrame({"BCLC": table["BCLC"].str.removeprefix("Stage-"),
                             "CLIP": table["CLIP_Score"].str.removeprefix("Stage_").astype(int),
                             "tumor_multiple": inputs["tumor_multiple"], "tumor_diameter": inputs["tumor_diameter"]})
    recorded.index = inputs["patient_id"]
    return inputs, recorded


def _agreement(computed: pd.Series, recorded: pd.Series):
    compared = computed.notna().to_numpy()
    agree = compared & (computed.to_numpy(dtype=object) == recorded.to_numpy(dtype=object))
    return int(compared.sum()), int(agree.sum()), compared, agree


MEASURED_BCLC = {"2010": (97, 89), "2022": (96, 88)}  # (n compared, n agreeing) on the 105 patients


@pytest.mark.parametrize("version", ["2010", "2022"])
def test_bclc_against_recorded_hcc_tace_seg(hcc_tace, version):
    """Recomputed BCLC vs the dataset's recorded BCLC (glossary: "BCLC ... (1999)").

    Measured: version 2010, 89 of 97 compared agree (91.8%); version 2022, 88 of 96 (91.7%).
    Every difference has one of these causes:

    - Missing input (empty, not compared): 8 patients (2010) / 9 (2022) at PS 0 with no
      vascular invasion or spread whose tumour is "multinodular" with the largest nodule < 3 cm
      (2010) or <= 3 cm (2022, adds HCC_071 at exactly 3.0 cm): 2-3 nodules is A, >= 4 is B, and
      the dataset records no count. Recorded: A for 3 (HCC_001, HCC_036, HCC_103), B for 5-6.
    - Definition version, single nodule > 5 cm (7 patients: HCC_015, HCC_039, HCC_059, HCC_062,
      HCC_066, HCC_079, HCC_100): recorded B, computed A. BCLC 2010 and 2022 put a single nodule
      of any size at PS 0 in A; the dataset's stages follow the older Milan-type size limit for
      early stage (every recorded-A single nodule measures <= 4.6 cm, every recorded-B one
      > 5 cm).
    - Definition version, stage 0 (1 patient, HCC_095, single 1.6 cm, Child-Pugh A, PS 0): the
      dataset has no stage 0 at all (the 1999 classification it cites predates "very early"),
      so it records A; 2010 and 2022 give 0.
    - Dataset coding: none found. PS is recorded in BCLC bands (0, 1-2, 3-4), which no rule
      needs split; lymph-node involvement must count as extrahepatic spread (recorded C for the
      4 PS-0 patients with nodes only: HCC_005, HCC_018, HCC_063, HCC_089).
    """
    inputs, recorded = hcc_tace
    result = st.compute_staging(inputs, bclc_version=version)
    computed = pd.Series(result.table["BCLC"].to_numpy(), index=recorded.index)
    n, k, compared, agree = _agreement(computed, recorded["BCLC"])
    measured_n, measured_k = MEASURED_BCLC[version]
    assert n == measured_n
    assert k / n >= measured_k / measured_n - 0.005

    # the empty ones: multinodular, small, count unknown, and listed as such in `missing`
    limit = 3.0 if version == "2010" else 3.0 + 1e-9
    empty = recorded[~compared]
    assert (empty["tumor_multiple"] == 1).all() and (empty["tumor_diameter"] < limit).all()
    listed = result.missing.query("system == 'BCLC'")
    assert set(listed["patient_id"]) == set(empty.index)
    assert (listed["missing_inputs"] == "tumor_number (multiple, count unknown)").all()

    # each disagreement is a documented definition-version difference
    wrong = recorded[compared & ~agree].assign(computed=computed[compared & ~agree])
    large_single = (wrong["tumor_multiple"] == 0) & (wrong["tumor_diameter"] > 5) & (wrong["BCLC"] == "B") & (
        wrong["computed"] == "A")
    stage_zero = (wrong["computed"] == "0") & (wrong["BCLC"] == "A")
    assert (large_single | stage_zero).all(), wrong
    assert (int(large_single.sum()), int(stage_zero.sum())) == (7, 1)
    assert (recorded["BCLC"] != "0").all()


def test_bclc_hcc_tace_seg_needs_nodal_spread(hcc_tace):
    """Counting Metastasis alone as extrahepatic spread loses the 4 node-only PS-0 patients."""
    inputs, recorded = hcc_tace
    table = pd.read_csv(HCC_TACE)
    metastasis_only = inputs.assign(extrahepatic_spread=table["Metastasis"].to_numpy())
    n, k, *_ = _agreement(pd.Series(st.bclc_stage(metastasis_only, version="2010").table["BCLC"].to_numpy(),
                                    index=recorded.index), recorded["BCLC"])
    assert k < MEASURED_BCLC["2010"][1] - 3


def test_clip_against_recorded_hcc_tace_seg(hcc_tace):
    """Recomputed CLIP vs the recorded CLIP_Score: 105 of 105 compared agree (100%).

    No disagreement category arises: CLIP needs only Child-Pugh class, uni/multinodular,
    extension > 50%, AFP >= 400 and portal vein thrombosis, all recorded for every patient
    (nodule count and size are not needed). Measured with the mapping of hcc_tace_seg_inputs.
    """
    inputs, recorded = hcc_tace
    result = st.compute_staging(inputs)
    computed = pd.Series(result.table["CLIP"].to_numpy(dtype=object), index=recorded.index)
    n, k, *_ = _agreement(computed, recorded["CLIP"])
    assert n == 105
    assert k / n >= 105 / 105 - 0.005


# --------------------------------------------------------------------------------------------
# study.yaml staging_columns: the user's columns under the contract's names


def test_staging_columns_map_rename_swap_and_name_the_absent_column():
    frame = pd.DataFrame({"id": ["1", "2"], "ps": [0, 2], "ecog_ps": [9, 9], "tbil": [10.0, 20.0],
                          "alb": [40.0, 35.0]})
    mapped = st.map_staging_columns(frame, staging_columns={"ecog_ps": "ps"}, id_column="id")
    assert list(mapped.columns) == ["patient_id", "ecog_ps", "tbil", "alb"]  # the stale ecog_ps gave way
    assert mapped["ecog_ps"].tolist() == [0, 2] and mapped["patient_id"].tolist() == ["1", "2"]
    same = st.map_staging_columns(frame, staging_columns={"tbil": "tbil"}, id_column="id")
    assert same["tbil"].tolist() == [10.0, 20.0]  # an identity entry keeps its column
    swapped = st.map_staging_columns(frame, staging_columns={"tbil": "alb", "alb": "tbil"}, id_column="id")
    assert swapped["tbil"].tolist() == [40.0, 35.0] and swapped["alb"].tolist() == [10.0, 20.0]
    with pytest.raises(InputError, match=r"study.yaml: staging_columns names column\(s\) bili, which clinical.csv"):
        st.map_staging_columns(frame, staging_columns={"tbil": "bili"}, id_column="id")
    # unchecked (dlr train, after dlr validate has named the absent column): that input is missing for all
    assert "tbil" not in st.map_staging_columns(frame, staging_columns={"tbil": "bili"}, id_column="id",
                                                require_mapped=False)
    with pytest.raises(InputError, match="no 'patient_id' column"):
        st.map_staging_columns(frame, staging_columns={})
