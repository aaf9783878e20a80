"""The external-validation report of a `dlr predict` run (report/external.py), rendered by the
pandoc fallback from a stand-in RUN2 (tests/external_standin.py): a small development run
analysed by `dlr analyze` (training = the development cohort, validation = the new cohort),
its thresholds marked as carried from the bundle, Table 1 of the new cohort, a hand-written
bundle.json and recalibration.csv from `recalibration`."""
from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlr.cli import main
from dlr.report import external
from dlr.report.external import (IN_THE_LARGE, NOT_APPLICABLE, OVER, UNDER, build_external_report, calibration_sentences,
                                 citl_verdict, read_external)
from dlr.report.tripod import TRIPOD_AI, FILLED
from external_standin import assemble_run2

PROBABILITY = ("CR", "Radiomics-SVM", "RCR")
INDEX = ("NLR",)


def _study(folder: Path, n: int = 120, seed: int = 3) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """A small study folder (study.yaml, clinical.csv) and its predictions (and out-of-fold ones)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    ids = [f"P{i:03d}" for i in range(n)]
    cohort = np.where(np.arange(n) < 70, "training", "validation")
    y = rng.binomial(1, 0.45, n)
    scanner = rng.choice(["1.5T", "3.0T"], n)
    months = np.round(rng.exponential(np.where(y == 1, 8.0, 40.0)) + 0.5, 1)
    recurrence = np.where(months < 60, 1, 0)
    clinical = pd.DataFrame({"patient_id": ids, "cohort": cohort, "early_recurrence": y,
                             "gender": rng.choice(["Male", "Female"], n), "age": np.round(rng.normal(57, 9, n), 0),
                             "scanner": scanner})
    clinical.to_csv(folder / "clinical.csv", index=False)
    (folder / "study.yaml").write_text(yaml.safe_dump({
        "name": "external-test", "title": "A small external study", "outcome_column": "early_recurrence",
        "dev_cohort": "training", "cohorts": ["training", "validation"], "phases": ["AP", "PVP"],
        "scanner_column": "scanner",
        "variables": [{"name": "gender", "type": "categorical", "levels": ["Male", "Female"]},
                      {"name": "age", "type": "continuous", "unit": "years"}]}))
    frames, oof = [], []
    for k, model in enumerate(PROBABILITY + INDEX):
        signal = y * (0.7 + 0.3 * k) + rng.normal(0, 1, n)
        score = 1 / (1 + np.exp(-signal)) if model in PROBABILITY else np.round(np.exp(signal), 2)
        frames.append(pd.DataFrame({"patient_id": ids, "cohort": cohort, "model": model, "y_true": y, "y_score": score,
                                    "scanner": scanner, "months": months, "recurrence": recurrence}))
        if model in PROBABILITY:
            dev = cohort == "training"
            noisy = np.clip(score[dev] + rng.normal(0, 0.1, dev.sum()), 0.01, 0.99)
            oof.append(pd.DataFrame({"patient_id": np.array(ids)[dev], "cohort": "training", "model": model,
                                     "y_true": y[dev], "y_score": noisy, "scanner": scanner[dev],
                                     "months": months[dev], "recurrence": recurrence[dev]}))
    return folder, pd.concat(frames, ignore_index=True), pd.concat(oof, ignore_index=True)


@pytest.fixture(scope="module")
def run2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("external")
    study, predictions, oof = _study(root / "study")
    run = root / "run"
    run.mkdir()
    predictions.to_csv(run / "predictions.csv", index=False)
    oof.to_csv(run / "predictions_oof.csv", index=False)
    code = main(["analyze", str(run / "predictions.csv"), "--oof", str(run / "predictions_oof.csv"),
                 "--out", str(run / "results"), "--strata", "scanner", "--bootstrap", "50", "--seed", "4",
                 "--time", "months", "--event", "recurrence"])
    assert code == 0
    return assemble_run2(run, study, root / "RUN2", dev_label="training", new_cohorts=("validation",))


class _Text(HTMLParser):
    """The visible text of an HTML document and its tables as lists of rows of cell texts."""

    def __init__(self, html: str):
        super().__init__()
        self.parts, self.tables, self._row, self._cell = [], [], None, None
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._skip:
            return
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split()).replace("\u2019", "'")  # pandoc's smart apostrophes


@pytest.fixture(scope="module")
def rendered(run2) -> tuple:
    result = build_external_report(run2, renderer="pandoc")
    html = _Text((run2 / "report" / "index.html").read_text(encoding="utf-8"))
    return result, html


def _ci(estimate, low, high) -> str:
    return f"{estimate:.3f} ({low:.3f}–{high:.3f})"


def test_the_documents_checklists_and_figures_are_written(run2, rendered):
    result, html = rendered
    report = run2 / "report"
    assert result.outputs == (report / "index.html", report / "index.docx")
    assert "pandoc" in result.renderer
    for name in ("index.html", "index.docx", "tripod_ai.csv", "tripod_ai_abstract.csv"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    figures = sorted(p.name for p in (report / "figures").glob("*.png"))
    for stem in ("roc_training_out-of-fold", "roc_validation", "calibration_validation", "decision_curve_validation",
                 "subgroups_scanner"):
        assert f"{stem}.png" in figures
    assert any(name.startswith("km_validation_") for name in figures)
    assert not list(run2.glob(".report-*")), "the temporary sources are removed"
    docx = pytest.importorskip("docx")
    document = docx.Document(str(report / "index.docx"))
    assert len(document.tables) >= 4
    assert "External validation" in document.core_properties.title
    # the sections and the title
    text = html.text
    assert "External validation of the CR, Radiomics-SVM and RCR models predicting early recurrence in external-test" \
        in text
    for heading in ("Summary", "The frozen models", "Discrimination", "Calibration", "Clinical utility",
                    "Time to recurrence", "TRIPOD+AI checklist"):
        assert heading in text
    assert "?@" not in text and "?meta:" not in text


def test_every_auc_printed_for_the_new_cohort_is_performance_csv_rounded(run2, rendered):
    _, html = rendered
    perf = pd.read_csv(run2 / "results" / "performance.csv")
    new = perf[perf["cohort"] == "validation"].set_index("model")
    # the discrimination table: the AUC cell of each new-cohort row
    table = next(t for t in html.tables if t and t[0][:4] == ["Model", "Cohort", "n (events)", "AUC (95% CI)"])
    model, seen = None, set()
    for row in table[1:]:
        model = row[0] or model
        if row[1] == "Validation":
            r = new.loc[model]
            assert row[3] == _ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"]), model
            assert row[4] == f"{r['auc_boot_low']:.3f}–{r['auc_boot_high']:.3f}"
            assert row[5] == f"{r['threshold']:.3f}"
            assert row[6].startswith(f"{r['sensitivity']:.3f} (")
            seen.add(model)
    assert seen == set(new.index)
    # the summary and the results text: every "MODEL 0.xxx (0.xxx–0.xxx)" about the validation cohort
    summary = html.text.split("Validation cohort.", 1)[1].split("Conclusion.", 1)[0]
    found = re.findall(r"([A-Za-z][\w-]*) (\d\.\d{3}) \((\d\.\d{3})–(\d\.\d{3})\)", summary)
    assert {m for m, *_ in found} == {"CR", "Radiomics-SVM", "RCR"}
    for m, auc, low, high in found:
        r = new.loc[m]
        assert (auc, low, high) == (f"{r['auc']:.3f}", f"{r['auc_ci_low']:.3f}", f"{r['auc_ci_high']:.3f}")
    results = html.text.split("In the validation cohort the AUCs (95% CI) were:", 1)[1].split("Table 2 gives", 1)[0]
    found = re.findall(r"([A-Za-z][\w-]*) (\d\.\d{3}) \((\d\.\d{3})–(\d\.\d{3})\)", results)
    assert len(found) == 3
    for m, auc, low, high in found:
        r = new.loc[m]
        assert (auc, low, high) == (f"{r['auc']:.3f}", f"{r['auc_ci_low']:.3f}", f"{r['auc_ci_high']:.3f}")


def test_the_p_value_against_development_is_cohort_tests_csv(run2, rendered):
    _, html = rendered
    tests = pd.read_csv(run2 / "results" / "cohort_tests.csv")
    table = next(t for t in html.tables if t and t[0][:2] == ["Model", "Cohort"] and "P vs development" in t[0])
    columns = {"training": table[0].index("P vs development")}
    if "P vs development (out-of-fold)" in table[0]:  # against the honest development estimate too
        columns["training (out-of-fold)"] = table[0].index("P vs development (out-of-fold)")
    model = None
    for row in table[1:]:
        model = row[0] or model
        for against, column in columns.items():
            if row[1] == "Validation":
                found = tests[(tests["model"] == model) & (tests["cohort_a"] == against)
                              & (tests["cohort_b"] == "validation")]["p_value"]
                p = found.iloc[0] if len(found) else None
                assert row[column] == ("NA" if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"), model
            else:
                assert row[column] == "—"


def test_the_thresholds_are_said_to_be_carried_from_development(run2, rendered):
    _, html = rendered
    assert "Every model's threshold was carried from development unchanged" in html.text
    assert "never re-picked" in html.text


def test_a_threshold_not_from_the_bundle_is_said_so(run2, tmp_path):
    doctored = tmp_path / "RUN2"
    shutil.copytree(run2, doctored, ignore=shutil.ignore_patterns("report"))
    perf = pd.read_csv(doctored / "results" / "performance.csv")
    perf.loc[perf["model"] == "RCR", "threshold_source"] = "out-of-fold"
    perf.to_csv(doctored / "results" / "performance.csv", index=False)
    text = external.threshold_text(read_external(doctored))
    assert "Every model's threshold was carried" not in text
    assert "Not carried from the bundle" in text and "RCR: out-of-fold" in text


def _doctor(run2: Path, folder: Path, citl: float, low: float, high: float) -> Path:
    shutil.copytree(run2, folder, ignore=shutil.ignore_patterns("report"))
    table = pd.read_csv(folder / "results" / "recalibration.csv")
    table.loc[table["model"] == "CR", ["citl", "citl_ci_low", "citl_ci_high"]] = [citl, low, high]
    table.to_csv(folder / "results" / "recalibration.csv", index=False)
    return folder


def _sentence(ext, model: str) -> str:
    return next(s for s in calibration_sentences(ext, "validation") if s.startswith(model))


@pytest.mark.parametrize("citl, low, high, verdict", [(-0.6, -1.1, -0.1, OVER), (0.6, 0.1, 1.1, UNDER),
                                                      (-0.6, -1.3, 0.1, IN_THE_LARGE), (0.6, -0.1, 1.3, IN_THE_LARGE)])
def test_the_calibration_wording_follows_the_sign_and_the_ci(run2, tmp_path, citl, low, high, verdict):
    ext = read_external(_doctor(run2, tmp_path / "RUN2", citl, low, high))
    sentence = _sentence(ext, "CR")
    assert verdict in sentence
    assert f"{citl:.3f} (95% CI {low:.3f} to {high:.3f})" in sentence
    others = {OVER, UNDER, IN_THE_LARGE} - {verdict}
    assert not any(word in sentence for word in others)
    if verdict == OVER:
        assert "would lower every predicted risk" in sentence
    elif verdict == UNDER:
        assert "would raise every predicted risk" in sentence
    table = external.calibration_table(ext).frame
    assert table.loc[table["Model"] == "CR", "In the large"].iloc[0] == verdict


def test_the_rendered_calibration_wording_of_a_doctored_run(run2, tmp_path):
    """Over-prediction end to end: the rendered HTML says it of CR and of no other model."""
    doctored = _doctor(run2, tmp_path / "RUN2", -0.8, -1.2, -0.4)
    build_external_report(doctored, formats=("html",), renderer="pandoc")
    text = _Text((doctored / "report" / "index.html").read_text(encoding="utf-8")).text
    assert "CR over-predicts: calibration-in-the-large -0.800 (95% CI -1.200 to -0.400)" in text
    recal = pd.read_csv(run2 / "results" / "recalibration.csv").set_index("model")
    for model in ("Radiomics-SVM", "RCR"):
        r = recal.loc[model]
        expected = citl_verdict(r["citl"], r["citl_ci_low"], r["citl_ci_high"])
        assert f"{model} {'shows ' if expected == IN_THE_LARGE else ''}{expected}" in text


def test_the_calibration_wording_of_the_run_follows_its_numbers(run2, rendered):
    _, html = rendered
    recal = pd.read_csv(run2 / "results" / "recalibration.csv")
    assert set(recal["model"]) == set(PROBABILITY)
    for r in recal.itertuples():
        verdict = citl_verdict(r.citl, r.citl_ci_low, r.citl_ci_high)
        assert verdict == (OVER if r.citl_ci_high < 0 else UNDER if r.citl_ci_low > 0 else IN_THE_LARGE)
        assert f"calibration-in-the-large {r.citl:.3f} (95% CI {r.citl_ci_low:.3f} to {r.citl_ci_high:.3f})" \
            in html.text
        assert f"observed/expected {r.observed_expected:.3f}" in html.text


def test_the_tripod_checklist_of_an_evaluation_only_study(run2, rendered):
    checklist = pd.read_csv(run2 / "report" / "tripod_ai.csv", dtype=str, keep_default_na=False)
    applies = {entry.item: entry.applies for entry in TRIPOD_AI}
    assert list(checklist["item"]) == [entry.item for entry in TRIPOD_AI]
    by_item = checklist.set_index("item")
    development = [item for item, a in applies.items() if a == "D"]
    evaluation = [item for item, a in applies.items() if a == "E"]
    assert development and evaluation
    for item in development:
        assert by_item.loc[item, "status"] == NOT_APPLICABLE, item
        assert by_item.loc[item, "applies"] == "D"
    for item in evaluation:
        assert by_item.loc[item, "status"] == FILLED, item
        assert by_item.loc[item, "value"], item
    assert "not applied" in by_item.loc["12f", "value"]          # model updating: none, recalibration shown
    assert "bundle" in by_item.loc["12g", "value"]                # how the predictions were calculated
    assert "outcome rates development" in by_item.loc["20c", "value"]
    # the other items keep tripod_checklist's statuses, and the authors' items stay theirs
    assert not (checklist.loc[~checklist["item"].isin(development), "status"] == NOT_APPLICABLE).any()
    for item in ("17", "18a", "18b", "19", "25"):
        assert by_item.loc[item, "status"] == "for the authors"
    # every section it points to is a section of this report
    _, html = rendered
    sections = set(re.findall(r'id="(sec-[^"]+)"', (run2 / "report" / "index.html").read_text(encoding="utf-8")))
    assert set(checklist["report_section"]) - {""} <= sections
    assert NOT_APPLICABLE in html.text


def test_table_1_puts_the_new_cohort_beside_the_development_cohort(run2, rendered):
    _, html = rendered
    bundle = read_external(run2).bundle
    table = next(t for t in html.tables if t and t[0][:2] == ["Characteristic", "Level"])
    header = table[0]
    dev = next(k for k, h in enumerate(header) if h.startswith("Development cohort"))
    rows = {row[0]: row for row in table[1:] if row[0]}
    n, e = bundle["n_development"], bundle["n_events_development"]
    assert rows["Patients"][dev] == str(n)
    assert rows["Events (early recurrence)"][dev] == f"{e} ({100 * e / n:.1f}%)"
    assert rows["Gender"][dev] == "—"
    assert any(h.startswith("Validation cohort") for h in header)
    assert not any(h.startswith("Training cohort") for h in header)


def test_a_run_without_bundle_json_is_an_input_error(run2, tmp_path):
    from dlr.core.errors import InputError

    broken = tmp_path / "RUN2"
    shutil.copytree(run2, broken, ignore=shutil.ignore_patterns("report"))
    (broken / "inputs" / "bundle.json").unlink()
    with pytest.raises(InputError, match="bundle.json"):
        build_external_report(broken, renderer="pandoc")
    assert not (broken / "report").exists()


def test_the_methods_name_the_bundle_harmonisation_and_recodes(run2, rendered, tmp_path):
    import json

    _, html = rendered
    bundle = read_external(run2).bundle
    text = html.text
    assert (f"format dlr-model-bundle version {bundle['manifest']['format_version']}, written by dlr "
            f"{bundle['manifest']['dlr_version']}") in text
    assert f"each of its {len(bundle['manifest']['members'])} members was checked against the SHA-256" in text
    assert "PyRadiomics parameter file (2 phases: AP and PVP)" in text
    assert "The bundle has no harmonisation step." in text
    assert "No raw value of the new study needed recoding" in text
    doctored = tmp_path / "RUN2"
    shutil.copytree(run2, doctored, ignore=shutil.ignore_patterns("report"))
    bundle["harmonization"] = {"method": "combat", "batch": "scanner"}
    bundle["recodes_applied"] = [{"variable": "grade", "from": "1", "to": "2", "n_patients": 3}]
    (doctored / "inputs" / "bundle.json").write_text(json.dumps(bundle))
    methods = external.methods_models(read_external(doctored))
    assert "harmonised across the levels of `scanner` by ComBat" in methods
    assert "estimated on the development patients" in methods and "applied unchanged" in methods
    assert "grade '1' as '2' (3 patients)" in methods
