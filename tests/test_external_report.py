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
                                 citl_verdict, read_external, slope_verdict)
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
    # the report's own figures of the key models, none of results/figures' every-model panels
    assert {"roc_models.png", "roc_comparators.png", "calibration_models.png", "dca_models.png",
            "dca_difference.png", "forest_scanner.png"} <= set(figures)
    assert not [name for name in figures if name.startswith(("roc_training", "roc_validation", "calibration_validation",
                                                              "decision_curve", "subgroups_"))]
    assert "km.png" in figures
    html_source = (report / "index.html").read_text(encoding="utf-8")
    for label in ("fig-roc-models", "fig-roc-comparators", "fig-calibration-models", "fig-dca-models",
                  "fig-dca-difference", "fig-forest-1", "fig-km"):
        assert f'id="{label}"' in html_source, label
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


def _says(text: str, phrase: str) -> bool:
    """Whether ``text`` has ``phrase`` starting a word (so that "CR ..." is not found in "RCR ...")."""
    return re.search(r"(?<![\w-])" + re.escape(phrase), text) is not None


def _three(cell: str) -> tuple:
    """A table cell "estimate (low to high)" or "estimate (low–high)" as its three numbers."""
    found = re.fullmatch(r"(-?\d+\.\d+) \((-?\d+\.\d+)(?: to |–)(-?\d+\.\d+)\)", cell.replace("−", "-"))
    assert found, cell
    return found.groups()


def _calibration_section(text: str) -> str:
    """The calibration prose of the validation cohort in the report's text."""
    found = re.search(r"Validation cohort \(\d+ patients, \d+ events, [\d.]+%\)\. (.*?) Every probability model", text)
    assert found, "the calibration paragraph of the validation cohort"
    return found.group(1)


def _slope_words(slope, low, high) -> str:
    """The slope's verdict as the prose words it when its CI excludes 1, else "" (not named)."""
    verdict = slope_verdict(slope, low, high)
    return verdict if verdict.startswith("predictions too") else ""


def _assert_calibration_prose(text: str, recal: pd.DataFrame) -> None:
    """The condensed calibration prose of one cohort names a model as over- / under-predicting
    exactly when its calibration-in-the-large's CI lies below / above 0, with its numbers; counts
    the others; and names a model's slope exactly when its CI excludes 1."""
    verdicts = {r.model: citl_verdict(r.citl, r.citl_ci_low, r.citl_ci_high) for r in recal.itertuples()}
    for r in recal.itertuples():
        for words in (OVER, UNDER):
            named = f"{r.model} {words}: calibration-in-the-large {r.citl:.3f} (95% CI {r.citl_ci_low:.3f} to " \
                    f"{r.citl_ci_high:.3f}), observed/expected {r.observed_expected:.3f}"
            assert _says(text, named) == (verdicts[r.model] == words), (r.model, words)
            assert _says(text, f"{r.model} {words}") == (verdicts[r.model] == words), (r.model, words)
        words = _slope_words(r.slope, r.slope_ci_low, r.slope_ci_high)
        named = f"{r.model} {r.slope:.3f} (95% CI {r.slope_ci_low:.3f} to {r.slope_ci_high:.3f}), {words}"
        assert _says(text, named) == bool(words), r.model
    calm = sum(v == IN_THE_LARGE for v in verdicts.values())
    if calm and calm < len(verdicts):
        assert f"{IN_THE_LARGE} for the other {calm} model{'s' if calm > 1 else ''}" in text
    elif calm:
        assert f"{IN_THE_LARGE[:1].upper()}{IN_THE_LARGE[1:]} for any of the {calm} probability models" in text
    else:
        assert IN_THE_LARGE not in text
    named_slopes = sum(bool(_slope_words(r.slope, r.slope_ci_low, r.slope_ci_high)) for r in recal.itertuples())
    if not named_slopes:
        assert "every calibration slope's 95% ci includes 1" in text.lower()


@pytest.mark.parametrize("citl, low, high, verdict", [(-0.6, -1.1, -0.1, OVER), (0.6, 0.1, 1.1, UNDER),
                                                      (-0.6, -1.3, 0.1, IN_THE_LARGE), (0.6, -0.1, 1.3, IN_THE_LARGE)])
@pytest.mark.parametrize("slope", [(0.4, 0.2, 0.8), (1.8, 1.2, 2.4), (0.8, 0.4, 1.2)])
def test_the_calibration_wording_follows_the_sign_and_the_ci(run2, tmp_path, citl, low, high, verdict, slope):
    folder = _doctor(run2, tmp_path / "RUN2", citl, low, high)
    table = pd.read_csv(folder / "results" / "recalibration.csv")
    table.loc[table["model"] == "CR", ["slope", "slope_ci_low", "slope_ci_high"]] = list(slope)
    table.to_csv(folder / "results" / "recalibration.csv", index=False)
    ext = read_external(folder)
    sentences = calibration_sentences(ext, "validation")
    assert 1 <= len(sentences) <= 2, "one or two sentences per cohort"
    text = " ".join(sentences)
    _assert_calibration_prose(text, table[table["cohort"] == "validation"])
    assert _says(text, f"CR {verdict}") == (verdict != IN_THE_LARGE)
    if verdict != IN_THE_LARGE:
        assert _says(text, f"CR {verdict}: calibration-in-the-large {citl:.3f} (95% CI {low:.3f} to {high:.3f})")
    else:
        assert f"{citl:.3f} (95% CI {low:.3f} to {high:.3f})" not in text  # its numbers stay in Table 3
    slope_named = _says(text, f"CR {slope[0]:.3f} (95% CI {slope[1]:.3f} to {slope[2]:.3f})")
    assert slope_named == (slope[2] < 1 or slope[1] > 1)
    table3 = external.calibration_table(ext).frame
    assert table3.loc[table3["Model"] == "CR", "In the large"].iloc[0] == (verdict if verdict != IN_THE_LARGE
                                                                           else "no evidence")
    assert _three(table3.loc[table3["Model"] == "CR", "Calibration-in-the-large (95% CI)"].iloc[0]) == \
        (f"{citl:.3f}", f"{low:.3f}", f"{high:.3f}")


def test_no_miscalibration_is_one_sentence_with_the_count(run2, tmp_path):
    folder = tmp_path / "RUN2"
    shutil.copytree(run2, folder, ignore=shutil.ignore_patterns("report"))
    table = pd.read_csv(folder / "results" / "recalibration.csv")
    table[["citl", "citl_ci_low", "citl_ci_high"]] = [0.1, -0.3, 0.5]
    table[["slope", "slope_ci_low", "slope_ci_high"]] = [0.9, 0.5, 1.3]
    table.to_csv(folder / "results" / "recalibration.csv", index=False)
    sentences = calibration_sentences(read_external(folder), "validation")
    assert sentences == ["No evidence of miscalibration in the large for any of the 3 probability models (each "
                         "calibration-in-the-large's 95% CI includes 0), and every calibration slope's 95% CI "
                         "includes 1."]


def test_the_rendered_calibration_wording_of_a_doctored_run(run2, tmp_path):
    """Over-prediction end to end: the rendered HTML says it of CR and of no other model."""
    doctored = _doctor(run2, tmp_path / "RUN2", -0.8, -1.2, -0.4)
    table = pd.read_csv(doctored / "results" / "recalibration.csv")
    table.loc[table["model"] == "RCR", ["citl", "citl_ci_low", "citl_ci_high"]] = [0.2, -0.3, 0.7]
    table.to_csv(doctored / "results" / "recalibration.csv", index=False)
    build_external_report(doctored, formats=("html",), renderer="pandoc")
    text = _Text((doctored / "report" / "index.html").read_text(encoding="utf-8")).text
    assert "CR over-predicts: calibration-in-the-large -0.800 (95% CI -1.200 to -0.400)" in text
    assert not _says(text, "RCR over-predicts") and not _says(text, "RCR under-predicts")
    section = _calibration_section(text)
    _assert_calibration_prose(section, table)
    audit = pd.read_csv(doctored / "report" / "audit.csv", keep_default_na=False)
    assert (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].to_string()


def test_the_calibration_wording_of_the_run_follows_its_numbers(run2, rendered):
    _, html = rendered
    recal = pd.read_csv(run2 / "results" / "recalibration.csv")
    assert set(recal["model"]) == set(PROBABILITY)
    for r in recal.itertuples():
        verdict = citl_verdict(r.citl, r.citl_ci_low, r.citl_ci_high)
        assert verdict == (OVER if r.citl_ci_high < 0 else UNDER if r.citl_ci_low > 0 else IN_THE_LARGE)
    section = _calibration_section(html.text)
    _assert_calibration_prose(section, recal)
    # every model's numbers stay in the calibration table
    table = next(t for t in html.tables if t and t[0][:2] == ["Model", "Cohort"] and "In the large" in t[0])
    rows = {row[0]: row for row in table[1:]}
    for r in recal.itertuples():
        verdict = citl_verdict(r.citl, r.citl_ci_low, r.citl_ci_high)
        row = rows[r.model]
        assert row[3] == f"{r.observed_expected:.3f}"
        assert _three(row[4]) == (f"{r.citl:.3f}", f"{r.citl_ci_low:.3f}", f"{r.citl_ci_high:.3f}")
        assert row[-1] == (verdict if verdict != IN_THE_LARGE else "no evidence")


def test_the_audit_of_the_report_is_clean(run2, rendered):
    audit = pd.read_csv(run2 / "report" / "audit.csv", keep_default_na=False)
    assert len(audit) > 50
    assert (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].to_string()


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


def test_the_figures_draw_the_key_models_with_the_aucs_of_performance_csv(run2, tmp_path):
    """The report draws its own figures of the key models: every ROC curve drawn encloses the
    AUC of performance.csv and its legend states it; one band per ROC panel (the highlighted
    model's); no text clipped or overlapping; each caption names the models it draws."""
    from matplotlib.collections import PolyCollection

    from dlr.report.external_figures import figure_models
    from figure_checks import captured, roc_areas, text_problems

    ext = read_external(run2)
    perf = pd.read_csv(run2 / "results" / "performance.csv", dtype={"model": str, "cohort": str})
    auc = perf.set_index(["cohort", "model"])["auc"]
    with captured() as figures:
        records = external.report_figures(ext, tmp_path, dpi=60)
    drawn = {r.id: r for r in records}
    assert figure_models(ext) == ["CR", "Radiomics-SVM", "RCR"]
    assert drawn["fig-roc-models"].models == ("CR", "Radiomics-SVM", "RCR")
    assert drawn["fig-roc-models"].cohorts == ("training (out-of-fold)", "validation")
    assert drawn["fig-roc-comparators"].models == ("RCR", "NLR")
    assert drawn["fig-calibration-models"].cohorts == ("validation",)
    assert drawn["fig-km"].models == (ext.facts.km_model,) and drawn["fig-km"].cohorts == ("validation",)
    for record in records:
        assert (tmp_path / f"{record.stem}.png").is_file()
        for model in record.models:
            assert model in record.caption, (record.id, model)
    seen = set()
    for fig, kwargs in figures:
        for cohort, models, stated, area in roc_areas(fig, set(perf["cohort"])):
            for model in models:
                # a comparator has no out-of-fold rows: the panel draws its development scores
                shown = cohort if (cohort, model) in auc.index else cohort.removesuffix(" (out-of-fold)")
                assert stated == pytest.approx(auc[(shown, model)], abs=5e-4 + 1e-9), (cohort, model)
                assert area == pytest.approx(auc[(shown, model)], abs=1e-6), (cohort, model)
                seen.add((cohort, model))
        for ax in fig.axes:
            if ax.get_xlabel() == "1 - specificity":
                assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1, ax.get_title()
        assert text_problems(fig, bbox_inches=kwargs.get("bbox_inches")) == []
    expected = {(c, m) for c in ("training (out-of-fold)", "validation") for m in ("CR", "Radiomics-SVM", "RCR", "NLR")}
    assert seen == expected


def test_the_best_network_is_the_one_of_highest_out_of_fold_auc(run2, tmp_path):
    import json

    from dlr.report.external_figures import best_network, figure_models

    doctored = tmp_path / "RUN2"
    shutil.copytree(run2, doctored, ignore=shutil.ignore_patterns("report"))
    perf = pd.read_csv(doctored / "results" / "performance.csv")
    rows = []
    for network, oof_auc, apparent in (("DL-ResNet10", 0.61, 0.95), ("DL-ResNet18", 0.72, 0.80)):
        mine = perf[perf["model"] == "Radiomics-SVM"].assign(model=network)
        mine.loc[mine["cohort"] == "training (out-of-fold)", "auc"] = oof_auc
        mine.loc[mine["cohort"] == "training", "auc"] = apparent
        rows.append(mine)
    pd.concat([perf, *rows], ignore_index=True).to_csv(doctored / "results" / "performance.csv", index=False)
    bundle = json.loads((doctored / "inputs" / "bundle.json").read_text())
    bundle["models"] = ["CR", "Radiomics-SVM", "DL-ResNet10", "DL-ResNet18", "RCR", "NLR"]
    (doctored / "inputs" / "bundle.json").write_text(json.dumps(bundle))
    ext = read_external(doctored)
    assert best_network(ext) == "DL-ResNet18"  # out of fold, not the higher apparent AUC of ResNet10
    assert figure_models(ext) == ["CR", "Radiomics-SVM", "DL-ResNet18", "RCR"]
