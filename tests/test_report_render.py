"""report/render.py: the Quarto project rendered by the pandoc fallback (and, faked, by Quarto).

Each test writes a small Quarto project into tmp_path; one shared project exercises includes,
metadata, conditional content and cross-references and is rendered once to HTML and DOCX.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dlr.core.errors import InputError
from dlr.report.render import RENDERER_KEY, RenderResult, render_report, renderer_name

docx = pytest.importorskip("docx")  # python-docx reads the DOCX back


def _png(path: Path, colour: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1], color=colour)
    fig.savefig(path, dpi=20)
    plt.close(fig)


def _write(folder: Path, files: dict) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def _project(folder: Path, body: str, *, config: str = "title: Toy\n", files: dict | None = None) -> Path:
    """A minimal project: _quarto.yml, index.qmd with ``body`` and ``files`` (name -> text)."""
    return _write(folder, {"_quarto.yml": config, "index.qmd": body, **(files or {})})


class _Html(HTMLParser):
    """The parts of an HTML page the tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.external, self.ids, self._link, self.chunks = [], [], [], set(), None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("link", "script", "iframe", "source") and (attrs.get("href") or attrs.get("src")):
            self.external.append((tag, attrs.get("href") or attrs.get("src")))
        if tag == "a":
            self._link = [attrs.get("href"), ""]

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1].replace("\xa0", " ")))
            self._link = None

    def handle_data(self, data):
        self.chunks.append(data)
        if self._link is not None:
            self._link[1] += data

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", unescape("".join(self.chunks)).replace("\xa0", " "))


def _docx_paragraphs(path: Path) -> list[str]:
    return [p.text.replace("\xa0", " ") for p in docx.Document(str(path)).paragraphs]


# --- the shared project -------------------------------------------------------------------------------------------

STUDY = {
    "_quarto.yml": """\
project:
  type: default
title: "Toy study"
subtitle: "A subtitle"
metadata-files:
  - _results-meta.yml
number-sections: true
crossref:
  fig-prefix: Fig.
  tbl-prefix: table
format:
  html:
    toc: true
    audience: web
  docx:
    audience: print
""",
    "_results-meta.yml": """\
study:
  name: ASAH
  n: 120
show-extra: true
flag-text: yes
""",
    "_variables.yml": "version: 2.1\n",
    "index.qmd": """\
---
title: "Toy report"
author:
  - name: Ann Author
  - Bob Builder
date: 2024-05-01
abstract: "A short *abstract*."
---

# Introduction {#sec-intro}

Cohort {{< meta study.name >}} (n = {{< meta study.n >}}), code version {{< var version >}},
audience {{< meta audience >}}.
Contact joe@example.com or @someone.

See @fig-roc, [-@fig-cal], @Tbl-auc, @tbl-cal and @sec-methods.

{{< include sections/_methods.qmd >}}

::: {.content-visible when-format="html"}
ONLY-HTML [INNER-NOT-IN-HTML]{.content-hidden when-format="html"}
:::

::: {.content-visible unless-format="html"}
ONLY-DOCX
:::

::: {.content-visible when-meta="show-extra"}
EXTRA-SHOWN

::: {.content-hidden when-meta="show-extra"}
NESTED-HIDDEN
:::
:::

::: {.content-visible when-meta="flag-text"}
TEXT-FLAG-SHOWN
:::

::: {.content-visible unless-meta="study.missing"}
UNLESS-MISSING-SHOWN
:::

Escaped: {{{< meta study.name >}}}.

::: {.dlr-renderer}
Rendered by {{< meta dlr-renderer >}}
:::
""",
    # nested includes: paths from the folder of index.qmd, as Quarto resolves them
    "sections/_methods.qmd": """\
# Methods {#sec-methods}

![ROC curves of the models](figs/roc.png){#fig-roc}

{{< include sections/_tables.qmd >}}
""",
    "sections/_tables.qmd": """\
## Tables {#sec-tables}

| Model | AUC  |
|-------|------|
| A     | 0.81 |
| B     | 0.77 |

: Discrimination in validation {#tbl-auc}

::: {#tbl-cal}
| Model | Slope |
|-------|-------|
| A     | 0.95  |

Calibration slopes
:::

::: {#fig-cal}
![](/figs/cal.png)

Calibration curves
:::

Back to @sec-tables.
""",
}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[RenderResult, Path]:
    source = _write(tmp_path_factory.mktemp("study"), STUDY)
    _png(source / "figs" / "roc.png", "tab:blue")
    _png(source / "figs" / "cal.png", "tab:red")
    out = source.parent / (source.name + "-out")
    return render_report(source, out, renderer="pandoc"), out


@pytest.fixture(scope="module")
def html(study) -> _Html:
    return _Html((study[1] / "index.html").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def docx_text(study) -> str:
    return "\n".join(_docx_paragraphs(study[1] / "index.docx"))


def test_result_names_renderer_and_outputs(study):
    result, out = study
    assert result.outputs == (out / "index.html", out / "index.docx")
    assert all(path.is_file() for path in result.outputs)
    assert re.fullmatch(r"pandoc 3[\d.]* \(Quarto fallback\)", result.renderer)
    assert result.renderer == renderer_name("pandoc")
    assert result.warnings == ()
    assert [p.name for p in out.iterdir()] and not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_metadata_merge_shortcodes_and_includes(html, docx_text):
    # front matter over _quarto.yml, metadata-files, format-specific keys, _variables.yml
    for text, audience in ((html.text, "web"), (docx_text, "print")):
        assert "Toy report" in text and "Toy study" not in text
        assert "A subtitle" in text and "Ann Author" in text and "Bob Builder" in text
        assert "2024-05-01" in text                       # a date stays text
        assert f"Cohort ASAH (n = 120), code version 2.1, audience {audience}." in text
        assert "Escaped: {{< meta study.name >}}." in text
        assert "Contact joe@example.com or @someone." in text   # neither is a cross-reference
        assert "?meta" not in text and "{{<" not in text.replace("{{< meta study.name >}}", "")
        # nested includes arrived in order
        assert text.index("Introduction") < text.index("Methods") < text.index("Tables") < text.index("ONLY-")


def test_conditional_content(html, docx_text):
    assert "ONLY-HTML" in html.text and "ONLY-DOCX" not in html.text and "INNER-NOT-IN-HTML" not in html.text
    assert "ONLY-DOCX" in docx_text and "ONLY-HTML" not in docx_text
    for text in (html.text, docx_text):
        assert "EXTRA-SHOWN" in text and "NESTED-HIDDEN" not in text
        assert "TEXT-FLAG-SHOWN" not in text       # `yes` is text, not the boolean true (Quarto's YAML)
        assert "UNLESS-MISSING-SHOWN" in text


def test_html_figures_tables_and_references(html):
    text = html.text
    assert "Figure 1: ROC curves of the models" in text
    assert "Figure 2: Calibration curves" in text
    assert "Table 1: Discrimination in validation" in text
    assert "Table 2: Calibration slopes" in text
    assert text.index("Table 1:") < text.index("Table 2:") and text.index("Figure 1:") < text.index("Figure 2:")
    assert ("#fig-roc", "Fig. 1") in html.links                     # crossref: fig-prefix
    assert ("#fig-cal", "2") in html.links                          # [-@fig-cal]: the number alone
    assert ("#tbl-auc", "Table 1") in html.links                    # @Tbl-: prefix capitalised
    assert ("#tbl-cal", "table 2") in html.links                    # tbl-prefix as written
    assert ("#sec-methods", "Section 2") in html.links
    assert ("#sec-tables", "Section 2.1") in html.links
    assert {"fig-roc", "fig-cal", "tbl-auc", "tbl-cal", "sec-methods", "sec-tables"} <= html.ids
    # number-sections and the table of contents
    assert "1 Introduction" in text and "2 Methods" in text and "2.1 Tables" in text
    assert "Table of contents" in text


def test_html_is_self_contained(html):
    assert len(html.images) == 2
    assert all(src.startswith("data:image/png;base64,") for src in html.images)
    assert html.external == []


def test_docx_tables_captions_images_and_links(study, docx_text):
    path = study[1] / "index.docx"
    document = docx.Document(str(path))
    cells = [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]
    assert cells == [[["Model", "AUC"], ["A", "0.81"], ["B", "0.77"]], [["Model", "Slope"], ["A", "0.95"]]]
    paragraphs = _docx_paragraphs(path)
    assert "Table 1: Discrimination in validation" in paragraphs
    assert "Table 2: Calibration slopes" in paragraphs
    assert "Figure 1: ROC curves of the models" in paragraphs and "Figure 2: Calibration curves" in paragraphs
    assert "1. Introduction" in paragraphs and "2.1 Tables" in paragraphs
    assert "See Fig. 1, 2, Table 1, table 2 and Section 2." in paragraphs
    assert len(document.inline_shapes) == 2
    with zipfile.ZipFile(path) as archive:
        assert len([n for n in archive.namelist() if n.startswith("word/media/")]) == 2
        xml = archive.read("word/document.xml").decode()
    for label in ("fig-roc", "fig-cal", "tbl-auc", "tbl-cal", "sec-methods"):
        assert f'w:anchor="{label}"' in xml and f'w:name="{label}"' in xml


def test_renderer_line(study, html, docx_text):
    line = f"Rendered by {study[0].renderer}"
    assert line in html.text and line in docx_text


# --- smaller projects ---------------------------------------------------------------------------------------------

def test_renderer_line_added_when_sources_do_not_show_it(tmp_path):
    source = _project(tmp_path / "src", "Just text.\n")
    result = render_report(source, tmp_path / "out", formats=("docx",), renderer="pandoc")
    assert result.outputs == (tmp_path / "out" / "index.docx",)
    assert _docx_paragraphs(result.outputs[0])[-1] == f"Rendered by {result.renderer}"
    assert any(RENDERER_KEY in w and "added" in w for w in result.warnings)


def test_unknown_reference_and_metadata_key_warn(tmp_path):
    body = ("See @fig-missing and @Tbl-gone; mail a@b.org.\n\n{{< meta nope.deep >}}\n\n"
            "::: {.content-hidden when-format=\"html\"}\n{{< meta hidden-key >}} @fig-hidden\n:::\n")
    source = _project(tmp_path / "src", body)
    result = render_report(source, tmp_path / "out", formats=("html",), renderer="pandoc")
    text = _Html(result.outputs[0].read_text(encoding="utf-8")).text
    assert "?@fig-missing" in text and "?@tbl-gone" in text and "?meta:nope.deep" in text
    assert any("@fig-missing" in w for w in result.warnings)
    assert any("@tbl-gone" in w for w in result.warnings)
    assert any("nope.deep" in w for w in result.warnings)
    assert not any("hidden" in w for w in result.warnings)     # hidden content does not warn
    assert not any("a@b.org" in w or "b.org" in w for w in result.warnings)


def test_section_reference_without_number_sections(tmp_path):
    source = _project(tmp_path / "src", "# Start\n\n# Aims {#sec-aims}\n\nSee @sec-aims.\n")
    result = render_report(source, tmp_path / "out", formats=("html",), renderer="pandoc")
    page = _Html(result.outputs[0].read_text(encoding="utf-8"))
    assert ("#sec-aims", "Section 2") in page.links                 # what Quarto writes
    assert "2 Aims" not in page.text                                # the headings stay unnumbered
    assert any("number-sections" in w for w in result.warnings)


def test_code_cell_is_an_error(tmp_path):
    source = _project(tmp_path / "src", "Intro.\n\n{{< include _part.qmd >}}\n",
                      files={"_part.qmd": "Text.\n\n```{python}\nprint(1)\n```\n"})
    with pytest.raises(InputError, match=r"_part\.qmd:3: executable code cell ```\{python\}"):
        render_report(source, tmp_path / "out", renderer="pandoc")


def test_non_executable_code_block_is_fine(tmp_path):
    source = _project(tmp_path / "src", "```{.python}\nprint(1)\n```\n\n````markdown\n```{r}\n```\n````\n")
    result = render_report(source, tmp_path / "out", formats=("html",), renderer="pandoc")
    assert "print(1)" in _Html(result.outputs[0].read_text(encoding="utf-8")).text


def test_missing_include_is_an_error_naming_include_and_file(tmp_path):
    source = _project(tmp_path / "src", "Intro.\n\n{{< include sections/_a.qmd >}}\n",
                      files={"sections/_a.qmd": "A.\n\n{{< include _nowhere.qmd >}}\n"})
    with pytest.raises(InputError, match=r"_a\.qmd:3: include '_nowhere\.qmd' not found"):
        render_report(source, tmp_path / "out", renderer="pandoc")


def test_include_relative_to_the_including_file_is_not_quarto(tmp_path):
    # Quarto resolves _b.qmd from index.qmd's folder even inside sections/_a.qmd: say so
    source = _project(tmp_path / "src", "{{< include sections/_a.qmd >}}\n",
                      files={"sections/_a.qmd": "{{< include _b.qmd >}}\n", "sections/_b.qmd": "Part B text.\n"})
    with pytest.raises(InputError, match=r"include sections/_b\.qmd"):
        render_report(source, tmp_path / "out", renderer="pandoc")
    (source / "sections" / "_a.qmd").write_text("{{< include /sections/_b.qmd >}}\n", encoding="utf-8")
    result = render_report(source, tmp_path / "out", formats=("html",), renderer="pandoc")
    assert "<p>Part B text.</p>" in result.outputs[0].read_text(encoding="utf-8")


def test_circular_include_is_an_error(tmp_path):
    source = _project(tmp_path / "src", "{{< include _a.qmd >}}\n", files={"_a.qmd": "{{< include _a.qmd >}}\n"})
    with pytest.raises(InputError, match="circular"):
        render_report(source, tmp_path / "out", renderer="pandoc")


def test_missing_image_is_an_error_naming_the_file(tmp_path):
    source = _project(tmp_path / "src", "{{< include _fig.qmd >}}\n",
                      files={"_fig.qmd": "![Cap](figs/none.png){#fig-a}\n"})
    with pytest.raises(InputError, match=r"_fig\.qmd: image 'figs/none\.png' not found"):
        render_report(source, tmp_path / "out", renderer="pandoc")


def test_failure_leaves_earlier_documents_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("OLD", encoding="utf-8")
    source = _project(tmp_path / "src", "Fine.\n\n::: {.content-visible when-format=\"docx\"}\n"
                                        "{{< include _gone.qmd >}}\n:::\n")
    with pytest.raises(InputError, match="_gone.qmd"):
        render_report(source, out, renderer="pandoc")
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text(encoding="utf-8") == "OLD"


def test_bad_project_and_options(tmp_path):
    with pytest.raises(InputError, match="_quarto.yml"):
        render_report(_write(tmp_path / "a", {"index.qmd": "x\n"}), tmp_path / "out", renderer="pandoc")
    with pytest.raises(InputError, match="index.qmd"):
        render_report(_write(tmp_path / "b", {"_quarto.yml": "title: x\n"}), tmp_path / "out", renderer="pandoc")
    with pytest.raises(InputError, match=r"_quarto\.yml: not valid YAML"):
        render_report(_project(tmp_path / "c", "x\n", config="title: [\n"), tmp_path / "out", renderer="pandoc")
    good = _project(tmp_path / "d", "x\n")
    with pytest.raises(InputError, match="formats"):
        render_report(good, tmp_path / "out", formats=("pdf",), renderer="pandoc")
    with pytest.raises(InputError, match="renderer"):
        render_report(good, tmp_path / "out", renderer="typst")


def test_quarto_renderer_needs_quarto(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert renderer_name("auto") == renderer_name("pandoc")
    with pytest.raises(InputError, match="no `quarto` on PATH"):
        renderer_name("quarto")


FAKE_QUARTO = """#!/bin/sh
if [ "$1" = "--version" ]; then echo 9.9.9; exit 0; fi
to=""; prev=""
for a in "$@"; do if [ "$prev" = "--to" ]; then to="$a"; fi; prev="$a"; done
mkdir -p _out
printf '%s\\n' "$PWD" "$@" > "_out/index.$to"
echo "WARNING (fake quarto): about $to" >&2
"""


@pytest.mark.skipif(os.name == "nt", reason="the fake quarto is a shell script")
def test_quarto_path_with_a_fake_quarto(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "quarto"
    fake.write_text(FAKE_QUARTO, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    source = _project(tmp_path / "src", "Rendered by {{< meta dlr-renderer >}}\n",
                      config="project:\n  output-dir: _out\ntitle: Toy\n")
    assert renderer_name() == "quarto 9.9.9"
    result = render_report(source, tmp_path / "out")
    assert result.renderer == "quarto 9.9.9"
    html_args = (tmp_path / "out" / "index.html").read_text().splitlines()
    docx_args = (tmp_path / "out" / "index.docx").read_text().splitlines()
    assert Path(html_args[0]).resolve() == source.resolve()
    assert html_args[1:] == ["render", "index.qmd", "--to", "html", "-M", "dlr-renderer:quarto 9.9.9",
                             "-M", "embed-resources:true"]
    assert docx_args[1:] == ["render", "index.qmd", "--to", "docx", "-M", "dlr-renderer:quarto 9.9.9"]
    assert not (source / "_out" / "index.html").exists()          # moved, not copied
    assert "quarto (html): WARNING (fake quarto): about html" in result.warnings
