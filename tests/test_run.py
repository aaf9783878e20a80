"""`dlr run` and `dlr demo`: every stage from a study folder to the report, cached and resumable.

A rerun with nothing changed redoes nothing; a run killed (SIGKILL, as `kill -9`) during
extraction and again during training, then rerun, gives byte-identical predictions and results
to a run never interrupted; bad input to the new verbs exits 2 naming the file; a clinical-only
study from the real HCC-TACE-Seg table runs to a report.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_dlr
from real_clinical_study import write_study

pytestmark = pytest.mark.xdist_group("run")

LIGHT = REPO / "tests" / "data" / "radiomics_light.yaml"
#: the imaging runs here leave the deep arm out (its own tests: test_deep.py, test_run_deep below)
ARMS = ("--arms", "clinical,radiomics")


def _imaging_study(root: Path, n: int = 60) -> Path:
    """A small synthetic study extracted on its native grid with the light PyRadiomics parameters."""
    from dlr.modeling.synthetic import synthesize_study

    synthesize_study(root, n=n)
    config = yaml.safe_load((root / "study.yaml").read_text())
    config["preprocessing"] = {"spacing": [3.0, 3.0, 5.0]}
    config["radiomics_params"] = str(LIGHT)
    (root / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _result_bytes(run: Path) -> dict:
    """predictions.csv, predictions_oof.csv and every CSV of results/, as bytes."""
    files = [run / "predictions.csv", run / "predictions_oof.csv", *sorted((run / "results").glob("*.csv"))]
    return {str(p.relative_to(run)): p.read_bytes() for p in files}


def _start(study: Path, run: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "dlr.cli", "run", str(study), "--out", str(run), "--jobs", "1",
                             "--bootstrap", "100", *ARMS], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, *, timeout: float = 600) -> None:
    """SIGKILL the run's whole process group as soon as ``ready()`` holds."""
    start = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            raise AssertionError("the run finished before it could be interrupted")
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting for the moment to interrupt the run")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _log(run: Path) -> str:
    path = run / "run.log"
    return path.read_text() if path.is_file() else ""


@pytest.fixture(scope="module")
def imaging(tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    study = _imaging_study(base / "study")
    reference = base / "reference"
    done = run_dlr("run", study, "--out", reference, "--jobs", "2", "--bootstrap", "100", *ARMS)
    assert done.returncode == 0, done.stderr[-3000:]
    return study, reference, done


def test_run_writes_every_stage_and_its_record(imaging):
    study, run, done = imaging
    for name in ("validate", "split", "features", "clinical", "staging", "models", "analysis", "report"):
        record = json.loads((run / "stages" / f"{name}.json").read_text())
        assert record["stage"] == name and record["outputs"], name
        for rel, digest in record["outputs"].items():
            assert (run / rel).is_file(), rel
    info = json.loads((run / "run.json").read_text())
    assert info["format"] == "dlr-run" and info["format_version"] == 1
    log = (run / "run.log").read_text()
    assert "[3/8] features: done" in log and "[8/8] report: done" in log
    # the stage table is printed with each stage's wall time
    assert "features" in done.stdout and "total" in done.stdout
    perf = pd.read_csv(run / "results" / "performance.csv")
    assert "training (out-of-fold)" in set(perf["cohort"])  # dlr run passes --oof itself
    assert (run / "report" / "index.html").is_file() and (run / "report" / "tripod_ai.csv").is_file()


def test_a_second_run_does_no_work(imaging):
    study, run, _ = imaging
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()
              and p.name not in ("run.log", "run.json", ".lock") and "stages" not in p.parts}
    done = run_dlr("run", study, "--out", run, "--jobs", "2", "--bootstrap", "100", *ARMS)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("unchanged since the last run, skipped") == 8
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # nothing rewritten


def test_a_changed_setting_reruns_only_the_stages_after_it(imaging, tmp_path):
    import shutil

    study, reference, _ = imaging
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    done = run_dlr("run", study, "--out", run, "--jobs", "2", "--bootstrap", "50", *ARMS)
    assert done.returncode == 0, done.stderr[-2000:]
    skipped = {line.split("] ")[-1].split(":")[0] for line in done.stderr.splitlines()
               if line.endswith("unchanged since the last run, skipped")}
    assert skipped == {"validate", "split", "features", "clinical", "staging", "models"}
    assert json.loads((run / "results" / "results.json").read_text())["settings"]["n_bootstrap"] == 50


@pytest.mark.slow
def test_killed_during_extraction_and_training_then_rerun_gives_identical_results(imaging, tmp_path):
    study, reference, _ = imaging
    run = tmp_path / "killed"
    cache = run / "features" / "cache"
    proc = _start(study, run)
    _kill_when(proc, lambda: cache.is_dir() and len(list(cache.glob("*.json"))) >= 10)
    assert not (run / "features" / "radiomics.csv").exists()
    n_cached = len(list(cache.glob("*.json")))
    proc = _start(study, run)
    _kill_when(proc, lambda: "[6/8] models" in _log(run) and "tuning" in _log(run).split("[6/8] models")[-1])
    assert not (run / "predictions.csv").exists() and not (run / "stages" / "models.json").exists()
    log = _log(run)
    assert f"{n_cached} from the cache" in log or "from the cache" in log  # finished cases were not redone
    done = run_dlr("run", study, "--out", run, "--jobs", "1", "--bootstrap", "100", *ARMS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[3/8] features: unchanged since the last run, skipped" in done.stderr
    assert _result_bytes(run) == _result_bytes(reference)
    _assert_nothing_left(run)


def _assert_nothing_left(run: Path) -> None:
    """No staging file or folder of a killed writer in the run folder, nor in the temporary folder."""
    import tempfile

    from dlr.core.tempfiles import _LEFTOVER, _PRIVATE, pid_alive

    assert [p for p in run.rglob(".*") if _LEFTOVER.match(p.name)] == []
    dead = [p for p in Path(tempfile.gettempdir()).glob("dlr-*") if (m := _PRIVATE.match(p.name))
            and not pid_alive(int(m.group(1)))]
    assert dead == []


def test_clinical_only_real_study_runs_to_a_report(tmp_path):
    study = write_study(tmp_path / "hcc_tace_seg")
    run = tmp_path / "run"
    done = run_dlr("run", study, "--out", run, "--bootstrap", "100", "--jobs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (run / "stages" / "features.json").exists()
    models = set(pd.read_csv(run / "predictions.csv")["model"])
    assert "CR" in models and {"BCLC", "CNLC"} <= models
    html = (run / "report" / "index.html").read_text()
    for needle in ("Table 1", "BCLC", "CR", "vascular_invasion", "Rendered by"):
        assert needle in html, needle
    assert (run / "clinical" / "table1.csv").is_file()
    audit = pd.read_csv(run / "report" / "audit.csv")  # the report audit passes on a clinical-only study
    assert (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].to_string()
    assert (audit["check"] == "estimate and CI from one row").sum() > 10


def test_bad_input_to_the_new_verbs_exits_2_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere"
    for args in (("report", missing), ("package", missing, "--out", tmp_path / "p.zip")):
        done = run_dlr(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert str(missing) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "p.zip").exists()
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    done = run_dlr("verify", corrupt)
    assert done.returncode == 2 and str(corrupt) in done.stderr and "Traceback" not in done.stderr
    old = tmp_path / "old_run"
    (old / "results").mkdir(parents=True)
    (old / "predictions.csv").write_text("patient_id,cohort,model,y_true,y_score\n")
    for args in (("report", old), ("package", old, "--out", tmp_path / "q.zip")):
        done = run_dlr(*args)
        assert done.returncode == 2 and "run.json" in done.stderr, done.stderr
    (old / "run.json").write_text(json.dumps({"format": "dlr-run", "format_version": 0, "dlr_version": "0.0.1"}))
    done = run_dlr("report", old)
    assert done.returncode == 2 and "format version 0" in done.stderr
    assert not (old / "report").exists() and not (tmp_path / "q.zip").exists()
    study = write_study(tmp_path / "study")
    done = run_dlr("run", study, "--out", old)
    assert done.returncode == 2 and "run.json" in done.stderr


def test_run_refuses_a_study_without_study_yaml_and_a_folder_of_another_study(tmp_path):
    done = run_dlr("run", tmp_path, "--out", tmp_path / "r")
    assert done.returncode == 2 and "study.yaml" in done.stderr
    assert not (tmp_path / "r").exists()
    study = write_study(tmp_path / "study")
    other = tmp_path / "other_run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"format": "dlr-run", "format_version": 1,
                                                "study": str(tmp_path / "elsewhere")}))
    done = run_dlr("run", study, "--out", other)
    assert done.returncode == 2 and "elsewhere" in done.stderr
    # nothing written but the (empty, released) lock every dlr writer takes on the folder
    assert sorted(p.name for p in other.iterdir()) == [".lock", "run.json"] and (other / ".lock").read_text() == ""


def test_the_report_opens_in_chromium_with_every_image_and_table(imaging, tmp_path):
    from browser import check_page, chromium_path

    if chromium_path() is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("websocket")
    _, run, _ = imaging
    page = check_page(run / "report" / "index.html", tmp_path / "report.png")
    assert page.n_images >= 8 and page.broken_images == ()
    captions = " ".join(page.tables)
    for n in (1, 2, 3, 4):
        assert f"Table {n}" in captions.replace("\xa0", " "), n
    assert page.screenshot.stat().st_size > 10_000


def test_the_docx_holds_tables_1_to_4_as_word_tables(imaging):
    from browser import docx_paragraphs, docx_tables

    _, run, _ = imaging
    tables = docx_tables(run / "report" / "index.docx")
    assert len(tables) >= 10
    text = " ".join(docx_paragraphs(run / "report" / "index.docx")).replace("\xa0", " ")
    for n in (1, 2, 3, 4):
        assert f"Table {n}:" in text, n
    flat = [" ".join(" ".join(row) for row in t) for t in tables]
    assert any("Radiomics-SVM" in t and "AUC" in t for t in flat)  # Table 2, as a table, not a picture
    assert any("OR" in t or "Odds" in t for t in flat)  # Table 3


@pytest.mark.slow
def test_the_stages_one_at_a_time_give_what_dlr_run_gives(tmp_path):
    """`dlr extract` + `dlr train` + `dlr analyze --oof` + `dlr report` on the run's split equal
    `dlr run` byte for byte: one resolution of the settings (the quick profile's 2 mm voxels
    for `dlr extract` as for `dlr run`; `dlr extract` once resampled to 1 mm whatever the study said)."""
    from dlr.modeling.synthetic import synthesize_study

    study = tmp_path / "study"
    synthesize_study(study, n=60)
    config = yaml.safe_load((study / "study.yaml").read_text())
    config["radiomics_params"] = str(LIGHT)  # no spacing: the quick profile's 2 mm
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    whole, staged = tmp_path / "whole", tmp_path / "staged"
    done = run_dlr("run", study, "--out", whole, "--jobs", "1", "--bootstrap", "50", *ARMS)
    assert done.returncode == 0, done.stderr
    steps = [("extract", study, "--out", staged, "--jobs", "1"),
             ("train", study, "--out", staged, "--jobs", "1", *ARMS),
             ("analyze", staged / "predictions.csv", "--out", staged / "results", "--oof",
              staged / "predictions_oof.csv", "--bootstrap", "50", "--seed", str(config["seed"]),
              "--dev-cohort", config["dev_cohort"], "--strata", config["scanner_column"],
              "--time", config["time_column"], "--event", config["event_column"])]
    for step in steps:
        done = run_dlr(*step)
        assert done.returncode == 0, (step[0], done.stderr)
    assert "2 x 2 x 2 mm" in run_dlr("extract", study, "--out", staged, "--jobs", "1").stderr
    assert (staged / "features" / "radiomics.csv").read_bytes() == (whole / "features" / "radiomics.csv").read_bytes()
    ours, theirs = _result_bytes(staged), _result_bytes(whole)
    assert ours.keys() == theirs.keys() and len(ours) > 10
    assert [name for name in ours if ours[name] != theirs[name]] == []


def test_the_docx_is_a_manuscript(imaging):
    """Wide tables in landscape sections, Tables 1-4 under spanning headers, a structured
    abstract within 250 words and no made-up author (issue 22's DOCX)."""
    import docx

    from dlr.report.manuscript import LANDSCAPE_COLUMNS
    from dlr.report.text import ABSTRACT_WORDS

    _, run, _ = imaging
    document = docx.Document(str(run / "report" / "index.docx"))
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

    def orientation(sect) -> str:
        size = sect.find(f"{w}pgSz")
        return (size.get(f"{w}orient") or "portrait") if size is not None else "portrait"

    # a section's properties sit at its end: a paragraph's w:sectPr, the body's last for the rest
    columns_of = {t._tbl: len(t.columns) for t in document.tables}
    pending, wide = [], 0
    for child in document.element.body.iterchildren():
        if child in columns_of:
            pending.append(child)
            continue
        sect = child if child.tag == f"{w}sectPr" else child.find(f"{w}pPr/{w}sectPr")
        if sect is None:
            continue
        for table in pending:
            landscape = orientation(sect) == "landscape"
            assert landscape == (columns_of[table] > LANDSCAPE_COLUMNS), columns_of[table]
            wide += landscape
        pending = []
    assert not pending
    assert wide >= 2  # Table 1 and Table 2 at least
    texts = [" ".join(c.text for c in t.rows[0].cells) for t in document.tables]
    paragraphs = [p.text.replace("\xa0", " ") for p in document.paragraphs]
    for n in (1, 2, 3, 4):  # the caption comes before its table; the table's first row spans groups
        caption = next(i for i, p in enumerate(paragraphs) if p.startswith(f"Table {n}:"))
        following = [t for t in document.tables if t._tbl in document.paragraphs[caption]._p.itersiblings()]
        table = following[0]
        top, second = [c.text for c in table.rows[0].cells], [c.text for c in table.rows[1].cells]
        assert any(a == b for a, b in zip(top, top[1:]) if a), (n, top)  # a merged (spanning) cell
        assert top != second
    start = paragraphs.index("Abstract") if "Abstract" in paragraphs else next(
        i for i, p in enumerate(paragraphs) if p.endswith("Abstract"))
    words = []
    for p in paragraphs[start + 1:]:
        if p.startswith(("Purpose", "Methods", "Results", "Conclusion")):
            words += p.split()
        elif words:
            break
    assert 40 < len(words) <= ABSTRACT_WORDS, len(words)
    assert document.core_properties.author == ""
    assert texts


def test_the_report_audit_passes_and_fails_on_a_changed_number_or_a_flipped_word(imaging, tmp_path):
    """Every number of the report is found in the run's files and every worded comparison agrees
    with them (report/audit.csv, written by `dlr report`); changing a results number after the
    report was built, or flipping a sentence's direction, makes the audit fail."""
    import shutil

    from dlr.report.audit import _rounds_to, audit_report, failures, report_text, run_values

    _, run, _ = imaging
    audit = pd.read_csv(run / "report" / "audit.csv")
    assert (audit["result"] == "ok").all(), audit[audit["result"] != "ok"].to_string()
    counts = audit["check"].value_counts()
    assert counts["estimate and CI from one row"] > 50 and counts["direction of a difference"] >= 1
    assert failures(audit_report(run)).empty  # the same audit run again on the files
    changed = tmp_path / "changed"
    shutil.copytree(run, changed, ignore=shutil.ignore_patterns("features", "deep"))
    performance = pd.read_csv(changed / "results" / "performance.csv")
    rows, text = run_values(changed), report_text(html := (run / "report" / "index.html").read_text())
    # an AUC the report quotes with its CI that no other row of the run holds as well (the same
    # figures may be quoted from two files, a subgroup that is the whole cohort, say)
    row = next(i for i, r in performance.iterrows()
               if f"{r['auc']:.3f} (95% CI {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f})" in " ".join(text.split())
               and sum(all(_rounds_to(values, f"{r[c]:.3f}").any() for c in ("auc", "auc_ci_low", "auc_ci_high"))
                       for values in rows) == 1)
    # each quoted number carries its source: this triple the row and columns it came from
    r = performance.loc[row]
    quoted = audit["quoted"].str.replace(r"\s+", " ", regex=True)
    mine = audit[quoted.str.contains(f"{r['auc']:.3f} (95% CI {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f})",
                                     regex=False)]
    assert len(mine) and (mine["source"] == f"results/performance.csv row {row + 1}: auc, auc_ci_low, "
                                             "auc_ci_high").all(), mine.to_string()
    numbers = audit[(audit["check"] == "number in the run's files") & ~audit["quoted"].str.endswith("triples")]
    assert len(numbers) > 20 and numbers["source"].notna().all()
    performance.loc[row, "auc"] = performance.loc[row, "auc"] - 0.031
    performance.to_csv(changed / "results" / "performance.csv", index=False)
    found = failures(audit_report(changed))
    assert len(found) and (found["check"] == "estimate and CI from one row").any()
    flipped = tmp_path / "flipped.html"
    import re

    # the first worded comparison of two AUCs ("0.81, higher than CR's 0.66 (difference ..."), reversed
    pattern = re.compile(r"(\d,\s+)(higher|lower)(\s+than\s+\S+?['’]s\s+\d)")
    assert pattern.search(html)
    flipped.write_text(pattern.sub(lambda m: m.group(1) + {"higher": "lower", "lower": "higher"}[m.group(2)]
                                   + m.group(3), html, count=1))
    found = failures(audit_report(run, flipped.read_text()))
    assert (found["check"] == "direction of a difference").any(), found.to_string()


def test_the_report_holds_claim_clear_and_metrics_and_verify_checks_them(imaging, tmp_path):
    """Issue 24: the three imaging checklists filled from the run, METRICS scored with the items
    it could not score named, every row a run value or an author note; the reviewer package
    carries them and `dlr verify` refills them from the package and names a changed cell."""
    import zipfile

    from dlr.package.verify import verify_package

    _, run, _ = imaging
    sizes = {"claim.csv": 44, "clear.csv": 58, "metrics.csv": 35}
    for name, rows in sizes.items():
        frame = pd.read_csv(run / "report" / name, dtype=str, keep_default_na=False)
        assert len(frame) == rows, name
        assert ((frame["value"] != "") | (frame["authors_add"] != "")).all(), name
        assert {"filled from the run", "for the authors"} <= set(frame["status"]), name
    score = pd.read_csv(run / "report" / "metrics_score.csv").iloc[0]
    assert 0 < score["lowest"] <= score["score"] and score["lowest"] <= score["highest"] <= 100
    assert score["items_authors"] > 0 and len(str(score["authors_items"]).split()) == score["items_authors"]
    from dlr.report.audit import report_text

    html = " ".join(report_text((run / "report" / "index.html").read_text()).split())
    for heading in ("CLAIM 2024 checklist", "CLEAR checklist", "METRICS score from the items the run answers: "
                    f"{score['score']:.1f}%"):
        assert heading in html
    audit = pd.read_csv(run / "report" / "audit.csv", dtype=str, keep_default_na=False)
    assert (audit["result"] == "ok").all()
    assert audit["source"].str.startswith("report/metrics_score.csv").any()  # the score, traced to its file

    package = tmp_path / "package.zip"
    done = run_dlr("package", run, "--out", package)
    assert done.returncode == 0, done.stderr[-2000:]
    check = verify_package(package)
    assert check.identical and "report/claim.csv" in check.checked and "report/metrics.csv" in check.checked
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(altered, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "report/claim.csv":
                data = data.replace(b"filled from the run", b"filled by hand", 1)
            target.writestr(info, data)
    diffs = verify_package(altered).differences
    cell = diffs[(diffs["file"] == "report/claim.csv") & (diffs["column"] == "status")]
    assert len(cell) == 1 and cell.iloc[0]["packaged"] == "filled by hand"
