"""The DOCX as a manuscript: what pandoc's Word writer cannot express from Markdown, added to the
rendered document with python-docx.

- **Spanning headers**: a column named ``"Group: name"`` (the report's tables name grouped
  columns so, e.g. ``"Training cohort (n = 132): ER (n = 78)"``) is shown under a header cell
  ``Group`` that spans its group's adjacent columns, with ``name`` beneath; an ungrouped column's
  header spans both header rows. Both rows repeat on every page the table runs onto.
- **Landscape sections**: a table of more than :data:`LANDSCAPE_COLUMNS` columns, with its
  caption and notes, sits in a landscape section of its own (consecutive wide tables share one).
- **Properties**: the title and the authors (study.yaml's ``title`` and ``authors``) in the
  document's core properties; no author when the study names none.

Nothing is computed here: the cells are the rendered text, rearranged.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence

#: tables with more columns than this go into a landscape section
LANDSCAPE_COLUMNS = 8
#: what separates a column's group from its own name in the header text
GROUP_SEPARATOR = ": "


def split_header(text: str) -> tuple[Optional[str], str]:
    """``"Training cohort (n = 132): ER (n = 78)"`` -> ("Training cohort (n = 132)", "ER (n = 78)");
    a header without the separator has no group."""
    group, sep, name = str(text).partition(GROUP_SEPARATOR)
    return (group.strip(), name.strip()) if sep and group.strip() and name.strip() else (None, str(text).strip())


def header_groups(headers: Sequence[str]) -> list[tuple[Optional[str], int, int]]:
    """(group or None, first column, last column) runs over ``headers``: adjacent columns of one
    group form a run; every ungrouped column is a run of its own."""
    runs: list[tuple[Optional[str], int, int]] = []
    for i, text in enumerate(headers):
        group, _ = split_header(text)
        if group is not None and runs and runs[-1][0] == group and runs[-1][2] == i - 1:
            runs[-1] = (group, runs[-1][1], i)
        else:
            runs.append((group, i, i))
    return runs


def _qn(tag: str) -> str:
    from docx.oxml.ns import qn

    return qn(tag)


def _set_text(cell, text: str) -> None:
    """The cell's text, keeping its first paragraph's and first run's formatting."""
    paragraphs = cell.paragraphs
    first = paragraphs[0]
    for extra in paragraphs[1:]:
        extra._p.getparent().remove(extra._p)
    runs = first.runs
    if runs:
        runs[0].text = text
        for run in runs[1:]:
            run._r.getparent().remove(run._r)
    else:
        first.add_run(text)


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    if tr_pr.find(_qn("w:tblHeader")) is None:
        from docx.oxml import OxmlElement

        tr_pr.append(OxmlElement("w:tblHeader"))


def span_headers(table) -> bool:
    """Give ``table`` (python-docx) a spanning header row where its header names groups; returns
    whether it did."""
    if len(table.rows) < 1:
        return False
    header = table.rows[0]
    texts = [cell.text for cell in header.cells]
    runs = header_groups(texts)
    if all(group is None for group, _, _ in runs):
        return False
    top_tr = copy.deepcopy(header._tr)
    header._tr.addprevious(top_tr)
    top, bottom = table.rows[0], table.rows[1]
    for group, first, last in runs:
        if group is None:
            merged = top.cells[first].merge(bottom.cells[first])
            _set_text(merged, texts[first])
            continue
        for i in range(first, last + 1):
            _set_text(bottom.cells[i], split_header(texts[i])[1])
        cell = top.cells[first].merge(top.cells[last]) if last > first else top.cells[first]
        _set_text(cell, group)
    for row in (top, bottom):
        _repeat_header(row)
    return True


#: Word's default page (US Letter, 1-inch margins) in twentieths of a point, for a document
#: whose sections do not say (pandoc's reference document does not)
DEFAULT_PAGE = {"w:w": "12240", "w:h": "15840"}
DEFAULT_MARGINS = {"w:top": "1440", "w:right": "1440", "w:bottom": "1440", "w:left": "1440", "w:header": "720",
                   "w:footer": "720", "w:gutter": "0"}


def _page_size(sect):
    """``sect``'s w:pgSz, added (Word's default page and margins) where it has none."""
    from docx.oxml import OxmlElement

    size = sect.find(_qn("w:pgSz"))
    if size is None:
        size = OxmlElement("w:pgSz")
        for key, value in DEFAULT_PAGE.items():
            size.set(_qn(key), value)
        margins = OxmlElement("w:pgMar")
        for key, value in DEFAULT_MARGINS.items():
            margins.set(_qn(key), value)
        # in a w:sectPr's order: after the header and footer references, the notes' and the
        # break's properties; w:pgSz before w:pgMar
        before = {_qn(t) for t in ("w:headerReference", "w:footerReference", "w:footnotePr", "w:endnotePr", "w:type")}
        at = sum(1 for child in sect if child.tag in before)
        sect.insert(at, margins)
        sect.insert(at, size)
    return size


def _section_break(template, *, landscape: bool):
    """A paragraph ending a section laid out as ``template`` (a w:sectPr), turned landscape or
    portrait."""
    from docx.oxml import OxmlElement

    sect = copy.deepcopy(template)
    size = _page_size(sect)
    w, h = int(size.get(_qn("w:w"))), int(size.get(_qn("w:h")))
    wide = (max(w, h), min(w, h)) if landscape else (min(w, h), max(w, h))
    size.set(_qn("w:w"), str(wide[0]))
    size.set(_qn("w:h"), str(wide[1]))
    if landscape:
        size.set(_qn("w:orient"), "landscape")
    elif _qn("w:orient") in size.attrib:
        del size.attrib[_qn("w:orient")]
    for kind in ("w:headerReference", "w:footerReference"):  # the next section inherits them
        for ref in sect.findall(_qn(kind)):
            sect.remove(ref)
    paragraph = OxmlElement("w:p")
    properties = OxmlElement("w:pPr")
    properties.append(sect)
    paragraph.append(properties)
    return paragraph


def _is_break(element) -> bool:
    return element is not None and element.tag == _qn("w:p") and element.find(f"{_qn('w:pPr')}/{_qn('w:sectPr')}") \
        is not None


def _style_of(element) -> str:
    style = element.find(f"{_qn('w:pPr')}/{_qn('w:pStyle')}") if element is not None else None
    return style.get(_qn("w:val")) if style is not None else ""


def landscape_wide_tables(document, *, columns: int = LANDSCAPE_COLUMNS) -> int:
    """Put each table of more than ``columns`` columns, its caption (the paragraph before it in
    a caption style) and its notes (the paragraph after it) into a landscape section; returns the
    number of tables moved."""
    template = document.sections[-1]._sectPr
    _page_size(template)  # the last section (portrait) says its page, as the landscape ones do
    moved = 0
    for table in document.tables:
        if len(table.columns) <= columns:
            continue
        tbl = table._tbl
        start = tbl.getprevious()
        start = start if start is not None and "aption" in _style_of(start) else tbl
        end = tbl.getnext()
        end = end if end is not None and end.tag == _qn("w:p") and not _is_break(end) else tbl
        before = start.getprevious()
        if _is_break(before) and "landscape" in before.xpath("string(.//w:pgSz/@w:orient)"):
            # the previous wide table's section ends right here: it takes this table too
            before.getparent().remove(before)
        else:
            start.addprevious(_section_break(template, landscape=False))
        end.addnext(_section_break(template, landscape=True))
        moved += 1
    return moved


def finish_docx(path, *, title: Optional[str] = None, authors: Optional[Sequence[str]] = None) -> dict:
    """Finish the rendered DOCX at ``path`` in place (spanning headers, landscape sections,
    properties; ``title`` and ``authors`` None keep the document's own); returns what was done
    (``spanned``, ``landscape`` table counts)."""
    from docx import Document

    path = Path(path)
    document = Document(str(path))
    spanned = sum(span_headers(table) for table in document.tables)
    landscape = landscape_wide_tables(document)
    properties = document.core_properties
    if title:
        properties.title = str(title)
    if authors is not None:
        properties.author = "; ".join(str(a) for a in authors)
    properties.last_modified_by = ""
    properties.comments = ""
    tmp = path.with_name(f".{path.name}.tmp")
    document.save(str(tmp))
    tmp.replace(path)
    return {"spanned": spanned, "landscape": landscape}


def main() -> int:
    """Quarto's post-render step (``_quarto.yml``): finish each DOCX Quarto wrote
    (``QUARTO_PROJECT_OUTPUT_FILES``), keeping its own title and authors."""
    import os

    for name in os.environ.get("QUARTO_PROJECT_OUTPUT_FILES", "").splitlines():
        if name.strip().endswith(".docx") and Path(name.strip()).is_file():
            finish_docx(name.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
