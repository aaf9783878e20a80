"""The browser and DOCX read-back helpers of tests/browser.py, on pages and documents built here.

The page check needs headless Chromium (Debian's `chromium`; .ci/run installs it) and
websocket-client, and skips without them.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from browser import MAX_SCREENSHOT_HEIGHT, check_page, chromium_path, docx_paragraphs, docx_tables  # noqa: E402

BROKEN = "data:image/png;base64,AAAA"


def _png_data_uri(color: str) -> str:
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1], [0, 1], color=color)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def browser_available():
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install websocket-client)")
    if chromium_path() is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)")


def test_check_page_finds_the_broken_image_the_tables_and_takes_a_screenshot(tmp_path, browser_available):
    # The second good image is lazy and far below the first viewport: it loads only if the
    # check scrolls through the page. The 14000 px spacer makes the page taller than the
    # screenshot's cap.
    html = tmp_path / "page.html"
    html.write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Browser check page</title></head>
<body style="margin:0;background:#fff">
<h1 style="background:#c03;color:#fff;margin:0">Report</h1>
<img id="roc" src="{_png_data_uri('tab:blue')}" alt="ROC">
<img id="broken" src="{BROKEN}" alt="broken">
<table><caption>Table 1. Patient characteristics</caption>
  <tr><th>Variable</th><th>Value</th></tr><tr><td>Age</td><td>61</td></tr></table>
<table><caption>Table 2. Discrimination</caption>
  <tr><th>Model</th><th>AUC</th></tr><tr><td>A</td><td>0.81</td></tr></table>
<svg width="20" height="20"><circle cx="10" cy="10" r="5"/></svg>
<div style="height:14000px"></div>
<img id="calibration" loading="lazy" src="{_png_data_uri('tab:orange')}" alt="calibration">
<script>console.error("deliberate console error")</script>
</body></html>""", encoding="utf-8")

    result = check_page(html, tmp_path / "shots" / "page.png", width=800, height=1000, timeout=90)

    assert result.title == "Browser check page"
    assert result.n_images == 3
    assert result.broken_images == (BROKEN,)
    assert result.tables == ("Table 1. Patient characteristics", "Table 2. Discrimination")
    assert result.n_svg == 1
    assert any("deliberate console error" in message for message in result.console_errors)
    assert result.screenshot == tmp_path / "shots" / "page.png"
    assert result.screenshot.stat().st_size > 0
    pixels = mpimg.imread(result.screenshot)  # PNG: floats in [0, 1], shape (height, width, channels)
    assert pixels.shape[1] == 800
    assert pixels.shape[0] == MAX_SCREENSHOT_HEIGHT
    assert np.ptp(pixels[:40, :, :3]) > 0.5  # the red heading was drawn, not a blank page


def test_check_page_reports_tables_without_caption_by_their_header_row(tmp_path, browser_available):
    html = tmp_path / "plain.html"
    html.write_text("<html><body><table><thead><tr><th>Cohort</th><th> n </th></tr></thead>"
                    "<tr><td>training</td><td>80</td></tr></table></body></html>", encoding="utf-8")
    result = check_page(html, tmp_path / "plain.png", width=640, height=480)
    assert result.tables == ("Cohort | n",)
    assert result.n_images == 0 and result.broken_images == ()
    assert mpimg.imread(result.screenshot).shape[:2] == (480, 640)  # a short page: one viewport


def test_check_page_timeout_stops_the_browser_and_removes_its_profile(tmp_path, browser_available, monkeypatch):
    # A page whose script never returns: the load event never fires, so the deadline must.
    import browser

    started, profiles = [], []
    real_popen, real_mkdtemp = browser.subprocess.Popen, browser.tempfile.mkdtemp

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def mkdtemp(*args, **kwargs):
        profiles.append(Path(real_mkdtemp(*args, **kwargs)))
        return str(profiles[-1])

    monkeypatch.setattr(browser.subprocess, "Popen", popen)
    monkeypatch.setattr(browser.tempfile, "mkdtemp", mkdtemp)
    html = tmp_path / "hang.html"
    html.write_text("<html><body><script>while (true) {}</script></body></html>", encoding="utf-8")
    with pytest.raises(TimeoutError, match="timed out"):
        check_page(html, tmp_path / "hang.png", timeout=5)
    assert len(started) == 1 and started[0].poll() is not None
    assert len(profiles) == 1 and not profiles[0].exists()
    assert not (tmp_path / "hang.png").exists()


def test_check_page_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HTML file"):
        check_page(tmp_path / "absent.html", tmp_path / "absent.png")


def test_docx_tables_and_paragraphs_read_a_document_back(tmp_path):
    docx = pytest.importorskip("docx", reason="python-docx is not installed (pip install python-docx)")
    document = docx.Document()
    document.add_paragraph("Table 1. Discrimination")
    table = document.add_table(rows=3, cols=3)
    cells = [["Model", "AUC", "95% CI"], ["A", "0.81", "0.74 to 0.88"], ["B", "0.77", "0.69 to 0.85"]]
    for row, texts in zip(table.rows, cells):
        for cell, text in zip(row.cells, texts):
            cell.text = text
    document.add_paragraph("Numbers are estimates with 95% confidence intervals.")
    path = tmp_path / "report.docx"
    document.save(str(path))

    assert docx_tables(path) == [cells]
    assert docx_paragraphs(path) == ["Table 1. Discrimination", "Numbers are estimates with 95% confidence intervals."]
