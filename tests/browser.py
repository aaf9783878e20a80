"""Test helpers that read the rendered report back as a reader would see it.

`check_page` opens an HTML file in headless Chromium, driven over the Chrome DevTools
Protocol (CDP) with `websocket-client`, and reports whether every image loaded, which tables
are present, and saves a screenshot. `docx_tables` and `docx_paragraphs` read a Word file back
with python-docx.

This is a helper module for tests, not a test file: tests import it as `from browser import
...` (pytest puts tests/ on sys.path, as it does for `conftest`). Tests that use `check_page`
skip when `chromium_path()` is None or `websocket` cannot be imported.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The tallest screenshot `check_page` captures, in CSS pixels; longer pages are cut here.
MAX_SCREENSHOT_HEIGHT = 12000

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class PageCheck:
    """What headless Chromium saw in one HTML page once it had loaded and been scrolled through.

    Attributes
    ----------
    title : str
        ``document.title``.
    n_images : int
        Number of ``<img>`` elements.
    broken_images : tuple of str
        The ``src`` (first 80 characters) of each ``<img>`` that did not load: ``complete`` is
        false or ``naturalWidth`` is 0. Empty when every image loaded.
    tables : tuple of str
        One entry per ``<table>``, in document order: its ``<caption>`` text, or, without a
        caption, the text of its first row that holds ``<th>`` cells (else its first row), cells
        joined by ``" | "``. Whitespace is collapsed.
    n_svg : int
        Number of outermost ``<svg>`` elements (an ``<svg>`` inside another is not counted;
        ``<img src="*.svg">`` counts as an image, not here).
    screenshot : Path
        The PNG written: the full page (its scroll width, at most four viewports wide, by its
        scroll height, cut at `MAX_SCREENSHOT_HEIGHT`), one pixel per CSS pixel.
    console_errors : tuple of str
        ``console.error`` messages, uncaught exceptions and browser log entries of level
        ``error`` (such as a resource that failed to load), in the order they arrived.
    """

    title: str
    n_images: int
    broken_images: tuple
    tables: tuple
    n_svg: int
    screenshot: Path
    console_errors: tuple


def chromium_path() -> str | None:
    """The first of chromium, chromium-browser, google-chrome, google-chrome-stable on PATH, or None."""
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


# Scrolls down one viewport at a time so that loading="lazy" images start, waiting at each
# step for the images in view to finish or fail; then scrolls each image still not complete
# into view and waits for it (a lazy image passed too quickly never starts otherwise); then
# returns to the top. All waiting ends `budget` ms after the start.
_SCROLL_AND_SETTLE = """
(async (budget) => {
  const end = Date.now() + budget;
  const sleep = ms => new Promise(r => setTimeout(r, Math.max(0, ms)));
  const settle = (imgs, ms) => Promise.race([sleep(Math.min(ms, end - Date.now())), Promise.all(
    imgs.filter(img => !img.complete).map(img => new Promise(r => {
      img.addEventListener('load', r, {once: true}); img.addEventListener('error', r, {once: true}); })))]);
  const inView = img => { const b = img.getBoundingClientRect(); return b.bottom >= 0 && b.top <= window.innerHeight; };
  const step = Math.max(200, window.innerHeight - 100);
  const height = () => Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
  for (let y = 0; y < height() && Date.now() < end; y += step) {
    window.scrollTo(0, y); await sleep(50);
    await settle(Array.from(document.images).filter(inView), 2000);
  }
  for (const img of Array.from(document.images).filter(img => !img.complete)) {
    if (Date.now() >= end) break;
    img.scrollIntoView(); await settle([img], 2000);
  }
  window.scrollTo(0, 0);
  return Array.from(document.images).filter(img => !img.complete).length;
})
"""

_COLLECT = """
(() => {
  const clean = s => (s || '').replace(/\\s+/g, ' ').trim();
  const images = Array.from(document.images).map(img =>
    ({src: (img.getAttribute('src') || img.currentSrc || '').slice(0, 80), complete: img.complete, naturalWidth: img.naturalWidth}));
  const tables = Array.from(document.querySelectorAll('table')).map(t => {
    if (t.caption && clean(t.caption.textContent)) return clean(t.caption.textContent);
    const rows = Array.from(t.rows);
    const row = rows.find(r => r.querySelector('th')) || rows[0];
    return row ? Array.from(row.cells).map(c => clean(c.textContent)).join(' | ') : '';
  });
  const svgs = Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement || !s.parentElement.closest('svg'));
  const root = document.documentElement, body = document.body;
  return {title: document.title, images, tables, n_svg: svgs.length,
          width: Math.max(root.scrollWidth, body ? body.scrollWidth : 0),
          height: Math.max(root.scrollHeight, body ? body.scrollHeight : 0)};
})()
"""


class _Cdp:
    """A minimal CDP client over one browser websocket, with flattened target sessions."""

    def __init__(self, url: str, deadline: float):
        import websocket  # websocket-client

        self._websocket = websocket
        self.deadline = deadline
        # Chromium refuses DevTools websockets that send an Origin header it has not been told to allow.
        self.ws = websocket.create_connection(url, timeout=self._remaining("connecting to DevTools"),
                                              suppress_origin=True, enable_multithread=False)
        self._next_id = 0
        self.events: list[dict] = []

    def _remaining(self, doing: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"headless Chromium timed out while {doing}")
        return left

    def _receive(self, doing: str) -> dict:
        self.ws.settimeout(self._remaining(doing))
        try:
            return json.loads(self.ws.recv())
        except self._websocket.WebSocketTimeoutException:
            raise TimeoutError(f"headless Chromium timed out while {doing}") from None

    def call(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = self._receive(f"waiting for {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, *, session: str | None = None) -> dict:
        """Return the first event `method` (of `session`), already received or still to come."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            reply = self._receive(f"waiting for {method}")
            if "method" in reply:
                self.events.append(reply)

    def evaluate(self, expression: str, *, session: str, doing: str):
        """`Runtime.evaluate` with returnByValue and awaitPromise; a thrown exception raises RuntimeError."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=session)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"JavaScript failed while {doing}: {text}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # closing a socket the browser already dropped
            pass


def _devtools_url(profile: Path, stderr_path: Path, proc: subprocess.Popen, deadline: float) -> str:
    """The browser's DevTools websocket URL, once Chromium has chosen its port.

    With ``--remote-debugging-port=0`` Chromium picks a free port and writes it, with the
    browser target's path, to ``<user-data-dir>/DevToolsActivePort`` (two lines); it also
    prints ``DevTools listening on ws://...`` to stderr, which is read when the file is not there.
    """
    port_file = profile / "DevToolsActivePort"
    while True:
        if port_file.exists():
            lines = port_file.read_text(encoding="utf-8", errors="replace").split()
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        log = stderr_path.read_text(encoding="utf-8", errors="replace") if stderr_path.exists() else ""
        found = re.search(r"DevTools listening on (ws://\S+)", log)
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"Chromium exited with status {proc.returncode} before opening DevTools; "
                               f"stderr ends:\n{log[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"headless Chromium timed out while starting (DevTools did not open); "
                               f"stderr ends:\n{log[-2000:]}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    """Terminate Chromium and its helper processes (its own process group), killing if need be."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:  # helpers (renderer, zygote) may outlive the browser process by a moment
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _console_errors(events: list[dict], session: str) -> tuple:
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
        elif event["method"] == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
    return tuple(errors)


def check_page(html: Path, screenshot: Path, *, width=1280, height=2000, timeout=60) -> PageCheck:
    """Open `html` in headless Chromium, scroll through it, and report its images, tables and SVGs.

    Parameters
    ----------
    html : Path
        The HTML file, opened as a file:// URL (so it must be self-contained to load fully).
    screenshot : Path
        Where the full-page PNG is written (its folder is created).
    width, height : int
        Viewport size in CSS pixels (device scale factor 1).
    timeout : float
        Seconds for the whole check, browser start included; beyond it TimeoutError is raised.

    Returns
    -------
    PageCheck

    Notes
    -----
    Chromium runs with ``--headless=new --no-sandbox --disable-gpu --remote-debugging-port=0``
    and a fresh temporary ``--user-data-dir``; the port is read from that folder's
    ``DevToolsActivePort`` file (or stderr). The page is opened in a new target attached as a
    flattened session, navigated, and after ``Page.loadEventFired`` scrolled one viewport at a
    time so that lazy images load, waiting for the images in view at each step (at most 2 s
    a step), then bringing each image still loading into view; all this waiting ends after at
    most 20 s (and within `timeout`), after which an image still loading counts as broken.
    The browser, its helpers and the profile are removed on every exit, errors and timeouts
    included.
    """
    html = Path(html)
    if not html.is_file():
        raise FileNotFoundError(f"check_page: no HTML file at {html}")
    browser = chromium_path()
    if browser is None:
        raise RuntimeError(f"check_page: none of {', '.join(_BROWSERS)} is on PATH")
    screenshot = Path(screenshot)
    deadline = time.monotonic() + timeout
    profile = Path(tempfile.mkdtemp(prefix="dlr-chromium-"))
    stderr_path = profile.parent / f"{profile.name}.stderr"
    proc = None
    cdp = None
    try:
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio",
                 "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        cdp = _Cdp(_devtools_url(profile, stderr_path, proc, deadline), deadline)
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable", session=session)
        cdp.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                        "mobile": False}, session=session)
        cdp.events.clear()  # about:blank's own load events
        navigated = cdp.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        if navigated.get("errorText"):
            raise RuntimeError(f"Chromium could not open {html}: {navigated['errorText']}")
        cdp.wait_for("Page.loadEventFired", session=session)
        budget_ms = int(max(0.0, min(20.0, deadline - time.monotonic() - 5)) * 1000)
        cdp.evaluate(f"{_SCROLL_AND_SETTLE}({budget_ms})", session=session, doing="scrolling through the page")
        page = cdp.evaluate(_COLLECT, session=session, doing="collecting images and tables")
        clip = {"x": 0, "y": 0, "width": max(1, min(int(page["width"]), 4 * width)),
                "height": max(1, min(int(page["height"]), MAX_SCREENSHOT_HEIGHT)), "scale": 1}
        shot = cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip},
                        session=session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        broken = tuple(img["src"] for img in page["images"] if not img["complete"] or img["naturalWidth"] == 0)
        return PageCheck(title=page["title"], n_images=len(page["images"]), broken_images=broken,
                         tables=tuple(page["tables"]), n_svg=int(page["n_svg"]), screenshot=screenshot,
                         console_errors=_console_errors(cdp.events, session))
    finally:
        if cdp is not None:
            cdp.close()
        if proc is not None:
            _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)
        stderr_path.unlink(missing_ok=True)


def docx_tables(path) -> list[list[list[str]]]:
    """Each table of the Word document's body, in order, as rows of cell texts.

    A merged cell repeats its text in every grid position it spans (python-docx's ``row.cells``);
    tables nested inside cells are not listed separately.
    """
    import docx

    return [[[cell.text for cell in row.cells] for row in table.rows] for table in docx.Document(str(path)).tables]


def docx_paragraphs(path) -> list[str]:
    """The text of each paragraph of the Word document's body, in order (not those inside tables)."""
    import docx

    return [paragraph.text for paragraph in docx.Document(str(path)).paragraphs]
