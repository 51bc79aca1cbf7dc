"""The report in a real browser: headless Chromium driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (the protocol on file descriptors 3 and
4, so no extra Python package is needed). The test loads a report built from hand-made
results of every category, reads the summary counts from the page and compares them with
results.json, applies filters (from the address and through the controls), sorts a column,
checks that nothing was logged as an error, and keeps a full-page screenshot: its path is
printed and it is copied to ``bench/out/report_screenshot.png``.

Skipped only when no Chromium/Chrome binary is installed (CI installs Debian's ``chromium``).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lmech.report import write_report
from test_report import sample_results

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER = next((shutil.which(b) for b in _BROWSERS if shutil.which(b)), None)
ARTEFACT = Path(__file__).resolve().parents[1] / "bench" / "out" / "report_screenshot.png"

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium/Chrome binary found and none could be installed "
           "(`apt-get install chromium`; .ci/run tries it)",
)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path, log: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "about:blank"]
        # Chromium reads the protocol on fd 3 and writes on fd 4. The child moves the pipe ends
        # there; with close_fds=False nothing else leaks, as Python's own descriptors are
        # non-inheritable (closed on exec) while dup2's copies are inheritable.
        def _move_pipes() -> None:
            import fcntl

            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log_file,
            close_fds=False, preexec_fn=_move_pipes,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None
        self.log = log

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            import select

            ready, _, _ = select.select([self._from_chrome], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the debugging pipe: "
                                       + self.log.read_text(errors="replace")[-2000:])
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors/warnings, uncaught exceptions and error log entries seen so far."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')} "
                           f"{p.get('exceptionDetails', {}).get('exception', {}).get('description', '')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log_file.close()


@pytest.fixture
def browser(tmp_path):
    tools = DevTools(BROWSER, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        tools.session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                   session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            tools.send(f"{domain}.enable")
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        yield tools
    finally:
        tools.close()


def _load(tools: DevTools, url: str) -> None:
    tools.send("Page.navigate", {"url": url})
    tools.wait_for("Page.loadEventFired")
    deadline = time.monotonic() + 20
    while tools.evaluate("document.body && document.body.getAttribute('data-ready')") != "1":
        assert time.monotonic() < deadline, "the report's script never finished"
        time.sleep(0.1)


VISIBLE_ROWS = "Array.from(document.querySelectorAll('#claims tbody tr')).filter(r => !r.hidden)" \
               ".map(r => r.querySelector('a').textContent)"


def test_report_in_headless_chromium(browser, tmp_path):
    results = sample_results()
    out = tmp_path / "report"
    page = write_report(results, out)
    data = json.loads((out / "results.json").read_text())
    expected = {}
    for row in data:
        expected[row["category"]] = expected.get(row["category"], 0) + 1

    # 1. a filter from the address: only the known failure is listed
    _load(browser, page.as_uri() + "#f:status=known_failure")
    assert browser.evaluate(VISIBLE_ROWS) == ["scaling.hard.kf"]
    assert browser.evaluate("document.getElementById('shown').textContent") == "1"

    # 2. the plain page: summary counts equal results.json, every row shown
    _load(browser, page.as_uri())
    browser.evaluate("location.hash = ''")
    browser.evaluate("document.getElementById('f-clear').click()")
    counts = browser.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('[data-count]'))"
                              ".map(e => [e.dataset.count, +e.textContent]))")
    assert {k: v for k, v in counts.items() if v} == expected
    assert sum(counts.values()) == len(data)
    assert len(browser.evaluate(VISIBLE_ROWS)) == len(data)

    # 3. the controls filter: family select, then free text on top
    browser.evaluate("var s = document.getElementById('f-family'); s.value = 'kernel';"
                     "s.dispatchEvent(new Event('change'))")
    assert sorted(browser.evaluate(VISIBLE_ROWS)) == ["kernel.curve.ok", "kernel.ood.broken"]
    browser.evaluate("var t = document.getElementById('f-text'); t.value = 'ood';"
                     "t.dispatchEvent(new Event('input'))")
    assert browser.evaluate(VISIBLE_ROWS) == ["kernel.ood.broken"]
    browser.evaluate("document.getElementById('f-clear').click()")

    # 4. sorting by value, both directions (the error's nan sorts last)
    browser.evaluate("document.querySelector('th[data-key=value]').click()")
    ascending = browser.evaluate(VISIBLE_ROWS)
    values = {r["name"]: r["value"] for r in data}
    finite = [n for n in ascending if values[n] is not None]
    assert [values[n] for n in finite] == sorted(values[n] for n in finite)
    assert ascending[-1] == "icl.depth.crash"
    browser.evaluate("document.querySelector('th[data-key=value]').click()")
    assert browser.evaluate(VISIBLE_ROWS)[0] == "icl.depth.crash" or \
        browser.evaluate(VISIBLE_ROWS)[0] == max(finite, key=lambda n: values[n])

    # 5. figures drawn inline, with a real size
    sizes = browser.evaluate("Array.from(document.querySelectorAll('svg.fig'))"
                             ".map(s => [s.getBoundingClientRect().width, s.getBoundingClientRect().height])")
    assert len(sizes) == 7 and all(w > 300 and h > 200 for w, h in sizes)

    # 6. nothing went wrong in the console
    assert browser.evaluate("document.documentElement.getAttribute('data-js-errors')") is None
    assert browser.problems() == []
    # ... and the check above does see errors: a deliberate one is reported
    browser.evaluate("console.error('deliberate probe')")
    browser.evaluate("1")
    assert any("deliberate probe" in p for p in browser.problems())

    # 7. a full-page screenshot, kept as an artefact
    height = browser.evaluate("document.documentElement.scrollHeight")
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1280, "height": min(int(height), 6000), "scale": 1}})
    png = base64.b64decode(shot["data"])
    assert png[:4] == b"\x89PNG"
    path = tmp_path / "report_screenshot.png"
    path.write_bytes(png)
    try:
        ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, ARTEFACT)
        print(f"\nreport screenshot: {ARTEFACT} (and {path})")
    except OSError:
        print(f"\nreport screenshot: {path}")
