"""`dlr report RUN`: the run's saved results -> ``RUN/report/`` (HTML, DOCX, TRIPOD+AI).

The Quarto sources (``report/index.qmd`` and the ``report/_*.qmd`` it includes) are fixed text:
sections, cross-referenced tables and figures, and ``{{< include >}}`` shortcodes of generated
Markdown. :func:`prepare_sources` writes that generated part into ``<source>/_generated/`` from
the run's files only (it never fits anything): the display tables (:mod:`dlr.report.tables`), the
figures (:mod:`dlr.report.figures`), the prose with the run's numbers (:mod:`dlr.report.text`), the
TRIPOD+AI checklists (:mod:`dlr.report.tripod`) and ``values.yml``, the document's metadata (title,
the run's name, which arms ran). :func:`build_report` copies the sources into a temporary
folder, prepares them, renders them with Quarto or its pandoc fallback (:mod:`dlr.report.render`)
and moves ``index.html``, ``index.docx``, ``tripod_ai.csv``, ``tripod_ai_abstract.csv``,
``claim.csv``, ``clear.csv``, ``metrics.csv``, ``metrics_score.csv``, ``audit.csv`` and ``figures/``
into ``RUN/report/`` at once.

``quarto render`` at the repository root renders the same sources for the latest run: the
project's ``pre-render`` script (``python -m dlr.report.prepare``) prepares ``report/_generated/``
from the run named by ``DLR_RUN`` or, without it, the newest ``runs/*/run.json``.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import yaml

from dlr.core.csvsafe import write_csv
from dlr.core.errors import InputError

from . import text
from .facts import RunFacts, read_run

logger = logging.getLogger(__name__)

SOURCES = Path(__file__).resolve().parent
SOURCE_FILES = ("index.qmd", "_methods.qmd", "_results.qmd", "_supplement.qmd", "report.css")
GENERATED = "_generated"
#: the sections every run has an include for (an absent result gives a sentence saying so)
TEXT_SECTIONS = ("abstract", "methods-data", "methods-participants", "methods-outcome", "methods-predictors",
                 "methods-sample-size", "methods-missing", "methods-models", "methods-performance",
                 "methods-fairness", "results-participants", "results-models", "results-performance",
                 "results-calibration", "results-utility", "results-survival", "results-subgroups", "limitations",
                 "reproducibility")
#: table slots of the sources, each an include of generated/tables/<id>.md
TABLE_SLOTS = ("tbl-1-characteristics", "tbl-2-classifiers", "tbl-3-logistic", "tbl-4-models", "tbl-s-oof",
               "tbl-s-internal-validation", "tbl-s-delong", "tbl-s-staging", "tbl-s-scanner", "tbl-s-harmonization",
               "tbl-s-calibration", "tbl-s-reclassification",
               "tbl-s-sample-size", "tbl-s-agreement", "tbl-s-selection")
#: figure slots of the sources, each an include of generated/figures/<id>.md
FIGURE_SLOTS = ("fig-selection-flow", "fig-lasso", "fig-roc-classifiers", "fig-nomogram", "fig-nomogram-rcr",
                "fig-roc-models", "fig-roc-comparators", "fig-calibration-classifiers", "fig-calibration-models",
                "fig-dca-classifiers", "fig-dca-models", "fig-km", "fig-forest", "fig-dl-training", "fig-scorecam")
DCA_RANGE = text.DCA_RANGE


def _figure_block(record, folder: str) -> str:
    caption = str(record.caption).replace("\n", " ").strip()
    return f"![{caption}]({folder}/{record.stem}.png){{#{record.id}}}\n"


def prepare_sources(run, source, *, renderer: str, dpi: int = 300) -> dict:
    """Write ``source/_generated/`` (tables, figures, text, checklists, values.yml) from ``run``.

    Returns a dict with the ``facts`` (RunFacts), the ``tables`` and ``figures`` made (labels),
    and the two checklist frames ``tripod`` and ``tripod_abstract``.
    """
    from .figures import draw_report_figures
    from .tables import pipe_table, report_tables
    from .imaging_checklists import checklist_markdown as imaging_markdown
    from .imaging_checklists import fill_checklists, metrics_markdown
    from .tripod import checklist_markdown, tripod_checklist

    run, source = Path(run), Path(source)
    facts = read_run(run)
    if facts.performance is None or facts.results is None:
        raise InputError(f"{run / 'results'}: no analysis results (performance.csv, results.json); run "
                         f"`dlr run` (or `dlr analyze RUN/predictions.csv --out RUN/results`) first")
    gen = source / GENERATED
    if gen.exists():
        shutil.rmtree(gen)
    for sub in ("tables", "figures", "text"):
        (gen / sub).mkdir(parents=True)

    logger.info("report: tables")
    tables = {t.id: t for t in report_tables(facts, best_model=facts.best_model, best_radiomics=facts.best_radiomics)}
    for slot in TABLE_SLOTS:
        body = pipe_table(tables[slot]) if slot in tables else ""
        (gen / "tables" / f"{slot}.md").write_text(body + ("\n" if body else ""))
    logger.info("report: figures")
    # the range `dlr analyze --thresholds` recorded, else the report's clinical range
    dca_range = tuple(facts.settings.get("decision_curve_range") or DCA_RANGE)
    records = draw_report_figures(facts, gen / "figures", dca_range=dca_range, dpi=dpi)
    figures = {r.id: r for r in records}
    for slot in FIGURE_SLOTS:
        body = _figure_block(figures[slot], f"{GENERATED}/figures") if slot in figures else ""
        (gen / "figures" / f"{slot}.md").write_text(body)
    unplaced = sorted(set(figures) - set(FIGURE_SLOTS))
    (gen / "figures" / "other.md").write_text("\n".join(_figure_block(figures[f], f"{GENERATED}/figures")
                                                        for f in unplaced))
    unplaced_tables = sorted(set(tables) - set(TABLE_SLOTS))
    (gen / "tables" / "other.md").write_text("\n\n".join(pipe_table(tables[t]) for t in unplaced_tables))

    logger.info("report: text and checklists")
    present_t, present_f = set(tables), set(figures)
    sections = {
        "abstract": text.abstract(facts, tables=present_t, figures=present_f),
        "methods-data": text.methods_data(facts),
        "methods-participants": text.methods_participants(facts),
        "methods-outcome": text.methods_outcome(facts),
        "methods-predictors": text.methods_predictors(facts),
        "methods-sample-size": text.methods_sample_size(facts),
        "methods-missing": text.methods_missing(facts),
        "methods-models": text.methods_models(facts, figures=present_f, tables=present_t),
        "methods-performance": text.methods_performance(facts),
        "methods-fairness": text.methods_fairness(facts),
        "results-participants": text.results_participants(facts, tables=present_t),
        "results-models": text.results_models(facts, tables=present_t, figures=present_f),
        "results-performance": text.results_performance(facts, tables=present_t, figures=present_f),
        "results-calibration": text.results_calibration(facts, tables=present_t, figures=present_f),
        "results-utility": text.results_utility(facts, figures=present_f, dca_range=dca_range),
        "results-survival": text.results_survival(facts, figures=present_f),
        "results-subgroups": text.results_subgroups(facts, tables=present_t, figures=present_f),
        "limitations": text.limitations_md(facts),
        "reproducibility": text.reproducibility(facts, renderer=renderer),
    }
    for name in TEXT_SECTIONS:
        (gen / "text" / f"{name}.md").write_text(sections[name])
    tripod_facts = text.tripod_facts(facts, renderer=renderer)
    checklist = tripod_checklist(tripod_facts)
    checklist_abstract = tripod_checklist(tripod_facts, abstract=True)
    (gen / "text" / "tripod.md").write_text(
        checklist_markdown(checklist) + "\n\n: TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378): each item, "
        "the section addressing it and what the run fills {#tbl-s-tripod}\n")
    (gen / "text" / "tripod-abstract.md").write_text(
        checklist_markdown(checklist_abstract) + "\n\n: TRIPOD+AI for Abstracts checklist {#tbl-s-tripod-abstract}\n")
    imaging = fill_checklists(facts, tripod_facts)
    for key, caption in (("claim", "CLAIM 2024 checklist (Tejani et al., Radiol Artif Intell 2024;6:e240300): each "
                                   "item, the section addressing it, what the run fills and what the authors must add "
                                   "{#tbl-s-claim}"),
                         ("clear", "CLEAR checklist (Kocak et al., Insights Imaging 2023;14:75): each item, the "
                                   "section addressing it, what the run fills and what the authors must add "
                                   "{#tbl-s-clear}")):
        (gen / "text" / f"{key}.md").write_text(imaging_markdown(imaging[key]) + f"\n\n: {caption}\n")
    (gen / "text" / "metrics.md").write_text(
        metrics_markdown(imaging["metrics"], imaging["score"]) + "\n\n: METRICS (Kocak et al., Insights Imaging "
        "2024;15:8): each condition and item with its published weight, the run's answer or the authors' "
        "{#tbl-s-metrics}\n")
    values = {
        "title": text.report_title(facts),
        "subtitle": f"Run {run.resolve().name} of {getattr(facts.config, 'name', 'the study')} (dlr "
                    f"{facts.info.get('dlr_version', '?')})",
        **({"author": [str(a) for a in facts.config.authors]} if getattr(facts.config, "authors", None) else {}),
        "dlr-run": run.resolve().name,
        "dlr-renderer": renderer,
        "dlr": {"has-radiomics": facts.has_radiomics, "has-deep": facts.has_deep,
                "no-deep": not facts.has_deep, "best-model": facts.best_model or "",
                "has-staging": any(m in facts.model_names for m in ("BCLC", "CNLC", "ERASL")),
                # the supplement's section of scanner-stratified AUCs with and without ComBat
                "has-harmonization-strata": "tbl-s-harmonization" in present_t,
                "synthetic": str(getattr(facts.config, "name", "")).startswith("synthetic")},
    }
    (gen / "values.yml").write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    return {"facts": facts, "tables": present_t, "figures": records, "tripod": checklist,
            "tripod_abstract": checklist_abstract, "imaging": imaging}


def copy_sources(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copyfile(SOURCES / name, target / name)
    (target / "_quarto.yml").write_text("project:\n  type: default\n")


def build_report(run, *, formats=("html", "docx"), renderer: str = "auto"):
    """Render ``RUN/report/`` from the run's saved results; returns the ``RenderResult``."""
    from dlr.core.output import staged_folder

    from .audit import AUDIT_FILE, audit_report, failures
    from .imaging_checklists import CHECKLISTS
    from .manuscript import finish_docx
    from .render import render_report, renderer_name

    run = Path(run)
    formats = tuple(formats or ("html", "docx"))
    unknown = [f for f in formats if f not in ("html", "docx")]
    if unknown:
        raise InputError(f"--formats: unknown format(s) {', '.join(unknown)}; the formats are html, docx")
    name = renderer_name(renderer)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".report-", dir=run) as tmp:
        src = Path(tmp) / "src"
        copy_sources(src)
        made = prepare_sources(run, src, renderer=name)
        logger.info(f"report: rendering {', '.join(formats)} with {name}")
        with staged_folder(run / "report") as out:
            result = render_report(src, out, formats=formats, renderer=renderer)
            if "docx" in formats:  # spanning headers, landscape tables, the properties
                finish_docx(out / "index.docx", title=text.report_title(made["facts"]),
                            authors=list(getattr(made["facts"].config, "authors", []) or []))
            imaging = made["imaging"]
            checklist_files = {CHECKLISTS[key][1]: imaging[key] for key in CHECKLISTS}
            checklist_files["metrics_score.csv"] = imaging["metrics_score"]
            for name, frame in checklist_files.items():
                write_csv(frame, out / name)
            if "html" in formats:  # every number found in the run's files, every comparison checked
                facts = made["facts"]  # the staged report lies inside the run: read by its one reader
                audit = audit_report(facts, facts.text((out / "index.html").relative_to(facts.run)),
                                     extra=checklist_files)
                write_csv(audit, out / AUDIT_FILE)
                for row in failures(audit).itertuples(index=False):
                    warnings.append(f"report audit: {row.check}: {row.quoted!r}: {row.why}")
            write_csv(made["tripod"], out / "tripod_ai.csv")
            write_csv(made["tripod_abstract"], out / "tripod_ai_abstract.csv")
            shutil.copytree(src / GENERATED / "figures", out / "figures",
                            ignore=shutil.ignore_patterns("*.md"))
    final = tuple(run / "report" / Path(p).name for p in result.outputs)
    return type(result)(result.renderer, final, (*result.warnings, *warnings))


def latest_run(root=".") -> Optional[Path]:
    """The newest run folder under ``root/runs`` (by its run.json's modification time)."""
    markers = sorted(Path(root, "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    return markers[-1].parent if markers else None


__all__ = ["build_report", "prepare_sources", "latest_run", "RunFacts"]
