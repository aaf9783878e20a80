"""The report as a manuscript (issue 22): the DOCX's spanning headers and landscape sections
(dlr.report.manuscript), the selected predictors' stability table, and honest wording of the
abstract and results from a run's files."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dlr.report.manuscript import LANDSCAPE_COLUMNS, finish_docx, header_groups, split_header
from dlr.report.tables import DisplayTable, pipe_table, selection_table

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def test_headers_split_into_groups_of_adjacent_columns():
    assert split_header("Training cohort (n = 132): ER (n = 78)") == ("Training cohort (n = 132)", "ER (n = 78)")
    assert split_header("AUC (95% CI)") == (None, "AUC (95% CI)")
    headers = ["Model", "A: x", "A: y", "B: x", "A: z", "P value"]
    assert header_groups(headers) == [(None, 0, 0), ("A", 1, 2), ("B", 3, 3), ("A", 4, 4), (None, 5, 5)]


def _docx(tmp_path: Path, tables: list[DisplayTable]) -> Path:
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        pytest.skip("pandoc is not installed")
    text = "# Results\n\nSome text.\n\n" + "\n\n".join(pipe_table(t) for t in tables) + "\n\nThe end.\n"
    source, out = tmp_path / "doc.md", tmp_path / "doc.docx"
    source.write_text(text)
    subprocess.run([pandoc, str(source), "-o", str(out)], check=True)
    return out


def _sections(document) -> list[tuple[str, list[int]]]:
    """(orientation, the number of columns of each table) of each section, in order."""
    out, pending = [], []
    columns = {t._tbl: len(t.columns) for t in document.tables}
    for child in document.element.body.iterchildren():
        if child in columns:
            pending.append(columns[child])
            continue
        sect = child if child.tag == f"{W}sectPr" else child.find(f"{W}pPr/{W}sectPr")
        if sect is not None:
            size = sect.find(f"{W}pgSz")
            out.append(((size.get(f"{W}orient") or "portrait") if size is not None else "portrait", pending))
            pending = []
    return out


def test_wide_tables_go_landscape_and_grouped_headers_span(tmp_path):
    import docx

    wide = DisplayTable("tbl-wide", "A wide table.", pd.DataFrame(
        [[f"{r}{c}" for c in range(LANDSCAPE_COLUMNS + 2)] for r in range(3)],
        columns=["Model", *[f"Group {c // 3}: col {c}" for c in range(LANDSCAPE_COLUMNS + 1)]]), "Notes of it.")
    narrow = DisplayTable("tbl-narrow", "A narrow table.", pd.DataFrame([["a", "1", "2"]],
                                                                         columns=["Variable", "U: OR", "U: P"]))
    wide2 = DisplayTable("tbl-wide2", "Another wide one.", wide.frame.copy(), "More notes.")
    path = _docx(tmp_path, [wide, wide2, narrow])
    done = finish_docx(path, title="A title", authors=["Ann Author", "Ben Author"])
    assert done == {"spanned": 3, "landscape": 2}
    document = docx.Document(str(path))
    sections = _sections(document)
    # the two adjacent wide tables share one landscape section; the narrow one stays portrait
    assert sections == [("portrait", []), ("landscape", [LANDSCAPE_COLUMNS + 2, LANDSCAPE_COLUMNS + 2]),
                        ("portrait", [3])]
    landscape = document.sections[1]
    assert landscape.page_width > landscape.page_height
    top, second = ([c.text for c in row.cells] for row in document.tables[0].rows[:2])
    assert top[:4] == ["Model", "Group 0", "Group 0", "Group 0"] and second[:4] == ["Model", "col 0", "col 1", "col 2"]
    assert document.tables[0].rows[2].cells[0].text == "00"  # the body is untouched
    assert [c.text for c in document.tables[2].rows[0].cells] == ["Variable", "U", "U"]
    for row in document.tables[0].rows[:2]:  # both header rows repeat on each page
        assert row._tr.trPr.find(f"{W}tblHeader") is not None
    assert document.core_properties.author == "Ann Author; Ben Author"
    assert document.core_properties.title == "A title"
    text = [p.text for p in document.paragraphs]
    assert "Notes of it." in text and "The end." in text  # caption and notes kept with their tables


def _selection_run(root: Path) -> Path:
    models = root / "models"
    models.mkdir(parents=True)
    pd.DataFrame({"feature": ["f1", "f2", "f3"], "coefficient": [0.8, -0.5, 0.1]}).to_csv(
        models / "radiomics_selected.csv", index=False)
    pd.DataFrame({"variable": ["ast", "afp"], "univariate_p": [0.001, 0.03], "entered": [True, True],
                  "multivariate_p": [0.002, 0.4], "selected": [True, False]}).to_csv(
        models / "cr_selection.csv", index=False)
    pd.DataFrame({"step": ["extracted", "ICC > 0.90", "t test / Mann-Whitney p < 0.05", "LASSO"],
                  "n_features": [300, 250, 120, 3], "note": ""}).to_csv(models / "selection_counts.csv", index=False)
    rows = []
    for fold, (features, stood_in) in enumerate([(["f1", "f2", "g"], False), (["f1", "f3"], False),
                                                 (["f1", "h", "g"], False), (["f1", "f2", "f3"], True)], start=1):
        rows += [{"fold": fold, "chain": "radiomics", "item": f, "from_development": stood_in} for f in features]
        rows.append({"fold": fold, "chain": "CR", "item": "ast", "from_development": False})
    pd.DataFrame(rows).to_csv(models / "oof_selection.csv", index=False)
    results = root / "results"
    results.mkdir()
    pd.DataFrame({"model": ["CR", "CR"], "cohort": ["training", "validation"], "n": [100, 40],
                  "n_events": [40, 15], "auc": [0.7, 0.6]}).to_csv(results / "performance.csv", index=False)
    (results / "results.json").write_text('{"settings": {"dev_cohort": "training"}}')
    return root


def test_the_selection_table_counts_each_predictor_across_the_refits(tmp_path):
    table = selection_table(_selection_run(tmp_path / "run"))
    frame = table.frame.set_index("Predictor")
    # fold 4's selection was the development cohort's (stood in): not counted
    assert frame.loc["f1", "Selected out of fold"] == "3/4" and frame.loc["f2", "Selected out of fold"] == "1/4"
    assert frame.loc["f3", "Selected out of fold"] == "1/4" and frame.loc["ast", "Selected out of fold"] == "4/4"
    assert frame.loc["f2", "Coefficient"] == "-0.500" and "afp" not in frame.index
    assert "3 of the final 3 were selected by at least one refit and 0 by all 4" in table.notes
    assert "2 features the final model does not hold" in table.notes  # g and h
    assert "Fold 4" in table.notes and "partial leak" in table.notes
    assert "7.5 radiomics features extracted per event, 3.0 after the univariate screen" in table.notes
    assert "f1" in pipe_table(table)


def test_a_nomogram_of_many_axes_is_a_points_table_not_a_figure(tmp_path):
    import numpy as np

    from dlr.modeling.nomogram import build_nomogram, numeric_axis
    from dlr.report.facts import read_run
    from dlr.report.figures import _Figures, _nomograms
    from dlr.report.tables import MAX_NOMOGRAM_AXES, points_tables

    rng = np.random.default_rng(1)
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    tables, axes = [], []
    for model, n in (("CR", 2), ("RCR", MAX_NOMOGRAM_AXES + 3)):
        x = rng.normal(size=(50, n))
        beta = rng.normal(size=n)
        made = build_nomogram([numeric_axis(f"f{j}", beta[j], x[:, j]) for j in range(n)], -0.2,
                              -0.2 + x @ beta, model=model)
        tables.append(made.table)
        axes.append(made.axes)
    pd.concat(tables).to_csv(run / "models" / "nomogram.csv", index=False)
    pd.concat(axes).to_csv(run / "models" / "nomogram_axes.csv", index=False)
    made = points_tables(run)
    assert [t.id for t in made] == ["tbl-s-points-rcr"]
    frame = made[0].frame
    assert frame["Predictor"].replace("", np.nan).dropna().tolist() == [f"f{j}" for j in range(MAX_NOMOGRAM_AXES + 3)]
    assert "Total points -> predicted probability" in made[0].notes
    figures = _Figures(tmp_path / "figures", 50, ["training"])
    figures.out.mkdir()
    _nomograms(figures, read_run(run))
    assert [r.id for r in figures.records] == ["fig-nomogram"]  # CR drawn, RCR's 13 axes not
