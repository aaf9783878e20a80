"""A clinical-only study folder built from the real TCIA HCC-TACE-Seg clinical table (105 patients).

Data: ``tests/data/real/hcc_tace_seg_clinical/`` (CC BY 4.0; Moawad AW et al., The Cancer
Imaging Archive 2021, doi:10.7937/TCIA.5FNA-0924; see its ATTRIBUTION.md). The table has no
images here and no cohort column, so the study is clinical only (study.yaml lists no phases)
and its cohorts are fixed by the patient number: every third patient (HCC_003, HCC_006, ...)
is in the validation cohort, the others in the training cohort (70 and 35 patients).

Outcome ``death_2y``: death within two years of the baseline (``OS`` <= 104 weeks and
``Death_1_StillAliveorLostToFU_0`` = 1): 35 of 70 training and 16 of 35 validation patients.
The staging inputs follow the mapping of ``tests/test_staging.py::hcc_tace_seg_inputs`` (the
dataset's glossary); bilirubin, albumin and blood counts are not recorded, so ALBI, ERASL and
the ratios stay empty (named in ``staging_missing.csv``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

TABLE = (Path(__file__).parent / "data" / "real" / "hcc_tace_seg_clinical"
         / "HCC-TACE-Seg_clinical_data-V2__data_table.csv")


def clinical_table() -> pd.DataFrame:
    t = pd.read_csv(TABLE)
    number = t["TCIA_ID"].str[4:].astype(int)
    yes_no = {0: "No", 1: "Yes"}
    return pd.DataFrame({
        "patient_id": t["TCIA_ID"],
        "cohort": ["validation" if k % 3 == 0 else "training" for k in number],
        "death_2y": ((t["OS"] <= 104) & (t["Death_1_StillAliveorLostToFU_0"] == 1)).astype(int),
        "age": t["age"],
        "gender": t["Sex"].map({1: "Male", 2: "Female"}),
        "hepatitis": t["hepatitis"],
        "cirrhosis": t["Evidence_of_cirh"].map(yes_no),
        "child_pugh_class": t["CPS"],
        "tumor_nodularity": t["tumor_nodul"].map({"uninodular": "Single", "multinodular": "Multiple"}),
        "vascular_invasion": t["Vascular invasion"].map(yes_no),
        "afp": t["AFP"],
        # the staging inputs, under the contract's names
        "ecog_ps": t["PS_bclc_0_0_1-2_1_3-4_3"],
        "tumor_multiple": t["tumor_nodul"].map({"uninodular": 0, "multinodular": 1}),
        "tumor_diameter": t["Tr_Size"],
        "macrovascular_invasion": t["Vascular invasion"],
        "portal_vein_thrombosis": t["Portal Vein Thrombosis"],
        "extrahepatic_spread": (t["Metastasis"].astype(bool) | t["Lymphnodes"].astype(bool)).astype(int),
        "tumor_extent_over_50pct": t["T_involvment"].map({"< or = 50%": 0, ">50%": 1}),
    })


STUDY = {
    "name": "hcc-tace-seg-clinical",
    "id_column": "patient_id", "cohort_column": "cohort", "outcome_column": "death_2y",
    "dev_cohort": "training", "cohorts": ["training", "validation"], "phases": [],
    "variables": [
        {"name": "age", "type": "continuous", "role": "demographic", "unit": "years", "cut_point": 70,
         "candidate": True},
        {"name": "gender", "type": "categorical", "role": "demographic", "levels": ["Male", "Female"],
         "candidate": True},
        {"name": "hepatitis", "type": "categorical", "role": "clinical",
         "levels": ["No virus", "HBV only", "HCV only", "HCV and HBV"], "candidate": True},
        {"name": "cirrhosis", "type": "categorical", "role": "clinical", "levels": ["No", "Yes"], "candidate": True},
        {"name": "child_pugh_class", "type": "categorical", "role": "clinical", "levels": ["A", "B", "C"],
         "candidate": True},
        {"name": "tumor_nodularity", "type": "categorical", "role": "radiological", "levels": ["Single", "Multiple"],
         "candidate": True},
        {"name": "vascular_invasion", "type": "categorical", "role": "radiological", "levels": ["No", "Yes"],
         "candidate": True},
        {"name": "afp", "type": "continuous", "role": "laboratory", "unit": "ng/mL", "cut_point": 400,
         "candidate": True},
    ],
    "seed": 20240101,
}


def write_study(folder) -> Path:
    """Write the clinical-only study into ``folder`` (created) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clinical_table().to_csv(folder / "clinical.csv", index=False)
    (folder / "study.yaml").write_text(yaml.safe_dump(STUDY, sort_keys=False))
    return folder
