"""The chat page at `GET /` in a real browser: Debian's headless Chromium, driven
over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL on fds 3 and 4), so neither a driver nor a Python
package is needed. The service is the real one (`rag-backend serve` on loopback,
the fixture docs ingested).

Chromium comes from ``scripts/install-browser.sh`` (apt-get) when it is missing;
if it still cannot be found these tests FAIL, unless ``RAG_SKIP_BROWSER=1``.
``RAG_CHROMIUM`` names another binary; ``RAG_SCREENSHOT=path.png`` keeps the
screenshot of the answered page.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http import page as page_module
from entrypoints.http.app import create_app
from entrypoints.http.page import prefers_html
from service_process import clean_env, free_port, running_service

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "docs"
INSTALL = ROOT / "scripts" / "install-browser.sh"
WAIT = 15.0  # seconds: the bound of every wait on the browser

# The first test may install Chromium with apt-get; every wait inside is bounded anyway.
pytestmark = pytest.mark.timeout(600)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
]


# --- Chromium over the DevTools Protocol ------------------------------------------------


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    if os.environ.get("RAG_SKIP_BROWSER") == "1":
        pytest.skip("RAG_SKIP_BROWSER=1: browser tests skipped on request")
    if given := os.environ.get("RAG_CHROMIUM"):
        return given
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    try:
        done = subprocess.run(
            ["bash", str(INSTALL)], capture_output=True, text=True, timeout=540, check=False
        )
        why = f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = repr(exc)
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            f"Chromium not found after scripts/install-browser.sh ({why}).\n"
            "Install Debian's chromium, or set RAG_SKIP_BROWSER=1 to skip the browser tests."
        )
    return found


def _high_fd(fd: int) -> int:
    """The fd moved to >= 10, so bash's 3<& and 4>& cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium; CDP over a pipe; flat sessions per tab."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child_r, to_child_w = (_high_fd(fd) for fd in os.pipe())
        from_child_r, from_child_w = (_high_fd(fd) for fd in os.pipe())
        self.log_path = profile.parent / "chromium.log"
        args = [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{to_child_r} 4>&{from_child_w}', "bash", *args],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self._out, self._in = to_child_w, from_child_r
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        buffer = bytearray()
        try:
            while chunk := os.read(self._in, 1 << 16):
                buffer += chunk
                while (end := buffer.find(b"\0")) >= 0:
                    message = json.loads(bytes(buffer[:end]))
                    del buffer[: end + 1]
                    with self._cond:
                        if "id" in message:
                            self._replies[message["id"]] = message
                        else:
                            self._events.append(message)
                        self._cond.notify_all()
        except OSError:
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = WAIT,
    ) -> dict[str, Any]:
        with self._cond:
            if self._closed:
                raise BrowserError(f"Chromium is gone; log:\n{self.log_tail()}")
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = memoryview(json.dumps(message).encode() + b"\0")
        while data:
            data = data[os.write(self._out, data) :]
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    why = "exited" if self._closed else f"did not answer in {timeout} s"
                    raise BrowserError(f"{method}: Chromium {why}; log:\n{self.log_tail()}")
                self._cond.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, session: str, timeout: float = WAIT) -> dict[str, Any]:
        """The params of the first ``method`` event on ``session`` (removed from the record)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if event.get("method") == method and event.get("sessionId") == session:
                        self._events.remove(event)
                        params: dict[str, Any] = event.get("params", {})
                        return params
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise BrowserError(f"no {method} event in {timeout} s")
                self._cond.wait(left)

    def new_tab(self, width: int = 412, height: int = 915) -> Tab:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        tab = Tab(self, session["sessionId"])
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
        )
        return tab

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        try:
            with contextlib.suppress(BrowserError, OSError):
                self.call("Browser.close", timeout=3)
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)  # its own session: Chromium's helpers too
                self.process.wait(timeout=5)
            for fd in (self._out, self._in):
                with contextlib.suppress(OSError):
                    os.close(fd)


class Tab:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"not true after {timeout} s: {expression}\npage:\n{text}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        navigated = self.call("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"{url}: {navigated['errorText']}")
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def click(self, selector: str) -> None:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(BrowserError):
            self.browser.call("Target.detachFromTarget", {"sessionId": self.session})


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = chromium_binary()
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    instance = Browser(binary, profile)
    try:
        yield instance
    finally:
        instance.close()


CORS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>pending</title></head>
<body><pre id="result"></pre><script>
const service = new URLSearchParams(location.search).get("service");
const out = document.getElementById("result");
fetch(service + "/chat", {
  method: "POST",
  credentials: "include",
  headers: {"content-type": "application/json"},
  body: JSON.stringify({query: "How do nodes talk to each other?"}),
}).then(async (r) => {
  out.textContent = JSON.stringify({status: r.status, body: await r.json()});
  document.title = "ok";
}).catch((e) => {
  out.textContent = String(e);
  document.title = "blocked: " + e.name;
});
</script></body></html>"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = CORS_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def other_origin() -> Iterator[int]:
    """A second loopback web server (another origin) serving the CORS page; its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, other_origin: int
) -> Iterator[tuple[str, Path]]:
    """The real service with the fixture docs, allowing http://127.0.0.1:<other_origin>."""
    workdir = tmp_path_factory.mktemp("service")
    shutil.copytree(FIXTURES, workdir / "docs")
    env = clean_env(
        PORT=str(free_port()),
        DATA_DIR=str(workdir / "data"),
        CORS_ALLOWED_ORIGINS=f"http://127.0.0.1:{other_origin}",
    )
    with running_service(env, workdir, "--ingest", "docs") as base:
        yield base, workdir


# --- GET / without a browser ------------------------------------------------------------

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("text/html, application/json", False),  # a tie keeps the API's answer
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0, */*", False),
        ("text/html;q=1.5", False),  # malformed q: the range is ignored
        ("application/json;q=0.4, text/html;q=0.6", True),
        ("TEXT/HTML", True),
        ("text/*;q=0.9, */*;q=0.1", True),
        ('text/html;x="a,b;c";q=0.9, */*;q=0.8', True),
        (BROWSER_ACCEPT, True),
    ],
)
def test_root_negotiates_on_accept_q_values(accept: str | None, page: bool) -> None:
    assert prefers_html(accept) is page


def test_the_page_is_read_once_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    container = asyncio.run(in_memory_container(Settings(_env_file=None)))
    app = create_app(container.settings, container)
    reads: list[str | None] = []
    real_load = page_module.load

    def counting_load(site: str | None = None) -> page_module.ChatPage:
        reads.append(site)
        return real_load(site)

    monkeypatch.setattr(page_module, "load", counting_load)
    page_module.install(app, site="https://book.example/a?b=<c>")
    with TestClient(app) as client:
        for _ in range(3):
            response = client.get("/", headers={"Accept": "text/html"})
            assert 'data-site="https://book.example/a?b=&lt;c&gt;"' in response.text
        assert client.get("/").json()["status"] == "online"
    assert reads == ["https://book.example/a?b=<c>"]


def test_root_serves_json_to_api_clients_and_the_page_to_browsers(
    service: tuple[str, Path],
) -> None:
    base, _ = service
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        api = httpx.get(f"{base}/", headers=headers, timeout=5)
        assert api.status_code == 200
        assert api.headers["content-type"] == "application/json"
        assert api.json() == {"status": "online", "service": "rag-backend", "version": "0.1.0"}
        assert "accept" in api.headers["vary"].lower()
    html = httpx.get(f"{base}/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "accept" in html.headers["vary"].lower()
    assert "x-frame-options" not in html.headers  # it must work in the Space's iframe
    assert "frame-ancestors" not in html.headers["content-security-policy"]
    assert '<form id="ask"' in html.text


# --- the page in Chromium ---------------------------------------------------------------

QUESTION = "How do nodes talk to each other?"

ANSWER_DONE = """(() => {
  const turns = document.querySelectorAll('.turn');
  const last = turns[turns.length - 1];
  return !!last && last.getAttribute('aria-busy') === 'false';
})()"""

LAST_TURN = """(() => {
  const turns = document.querySelectorAll('.turn');
  const t = turns[turns.length - 1];
  return {
    turns: turns.length,
    text: t.querySelector('.answer-text').textContent,
    error: t.querySelector('.error') ? t.querySelector('.error').textContent : null,
    links: [...t.querySelectorAll('.sources li a')].map(a => ({
      href: a.getAttribute('href'), resolved: a.href, text: a.textContent,
      target: a.target, item: a.closest('li').id})),
    cites: [...t.querySelectorAll('.answer-text a.cite')].map(a => ({
      href: a.getAttribute('href'), text: a.textContent,
      exists: !!document.getElementById(a.getAttribute('href').slice(1))})),
    meta: t.querySelector('.meta').textContent,
    updates: window.__updates,
  };
})()"""

# Counts the answer's text changes seen before its sources were listed (i.e. while
# the deltas arrived, before the citations event).
WATCH_UPDATES = """(() => {
  window.__updates = 0;
  new MutationObserver((records) => {
    for (const r of records) {
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const text = node && node.closest('.answer-text');
      const turn = text && text.closest('.turn');
      if (turn && turn.querySelector('.sources').hidden && text.textContent) window.__updates++;
    }
  }).observe(document.getElementById('log'), {childList: true, subtree: true});
  return true;
})()"""


def ask(tab: Tab, question: str) -> dict[str, Any]:
    before = tab.evaluate("document.querySelectorAll('.turn').length")
    tab.type_into("#question", question)
    tab.click("#send")
    tab.wait_for(f"document.querySelectorAll('.turn').length > {before}")
    tab.wait_for(ANSWER_DONE)
    result: dict[str, Any] = tab.evaluate(LAST_TURN)
    return result


def open_page(browser: Browser, url: str) -> Tab:
    tab = browser.new_tab()
    tab.goto(url)
    tab.wait_for("document.getElementById('app').dataset.ready === 'true'")
    assert tab.evaluate("document.title") == "Ask the docs"
    # The inline style ran under the page's Content-Security-Policy (the script did: ready).
    assert tab.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") == "736px"
    return tab


def test_page_streams_a_cited_answer_with_links_to_the_docs(
    browser: Browser, service: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = service
    tab = open_page(browser, f"{base}/")
    try:
        tab.evaluate(WATCH_UPDATES)
        turn = ask(tab, QUESTION)
        assert turn["error"] is None, turn
        assert turn["text"].strip() and "[1]" in turn["text"], turn
        assert turn["updates"] >= 1, turn  # text was shown before the answer was complete
        assert turn["links"], turn
        for link in turn["links"]:
            assert link["href"].startswith("/docs/"), link
            assert link["resolved"].startswith(f"{base}/docs/"), link
            assert link["target"] == "_blank" and link["item"].startswith("t1-src-"), link
        assert turn["cites"] and all(c["exists"] for c in turn["cites"]), turn
        assert turn["cites"][0]["href"].startswith("#t1-src-"), turn
        assert "answer" in turn["meta"] and "retrieval" in turn["meta"], turn

        shot = tmp_path / "chat-page.png"
        tab.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if keep := os.environ.get("RAG_SCREENSHOT"):
            shutil.copyfile(shot, keep)

        # A second question is a second turn in the same page.
        again = ask(tab, "How do I install the tools?")
        assert again["turns"] == 2 and again["error"] is None and again["text"].strip(), again

        # Server text is text: markup in a question is shown, never parsed.
        ask(tab, "<img src=x onerror=alert(1)> <b>bold</b>?")
        assert tab.evaluate("document.querySelectorAll('#log img, #log b').length") == 0

        # The API's error detail (here a 422 for an over-long question) is shown plainly.
        tab.evaluate("document.getElementById('question').removeAttribute('maxlength')")
        failed = ask(tab, "x" * 4_001)
        assert failed["error"] and "422" in failed["error"], failed
        assert "query" in failed["error"], failed
    finally:
        tab.close()


def test_source_links_follow_the_site_parameter(
    browser: Browser, service: tuple[str, Path]
) -> None:
    base, _ = service
    tab = open_page(browser, f"{base}/?site=https://book.example/textbook/")
    try:
        turn = ask(tab, QUESTION)
        assert turn["links"], turn
        assert all(
            link["href"].startswith("https://book.example/textbook/docs/") for link in turn["links"]
        ), turn
    finally:
        tab.close()
    # A base that is not http(s) is ignored: links stay relative.
    tab = open_page(browser, f"{base}/?site=javascript:alert(1)//")
    try:
        turn = ask(tab, QUESTION)
        assert turn["links"] and all(link["href"].startswith("/docs/") for link in turn["links"])
    finally:
        tab.close()


def test_source_links_follow_site_url_without_a_parameter(browser: Browser, tmp_path: Path) -> None:
    """SITE_URL set: the API's source links are absolute, so the page's are too, with
    no ``?site=`` (which only a comment mentioned)."""
    shutil.copytree(FIXTURES, tmp_path / "docs")
    env = clean_env(
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
        SITE_URL="https://book.example/textbook/",
    )
    with running_service(env, tmp_path, "--ingest", "docs") as base:
        tab = open_page(browser, f"{base}/")
        try:
            turn = ask(tab, QUESTION)
            assert turn["error"] is None and turn["links"], turn
            for link in turn["links"]:
                assert link["href"].startswith("https://book.example/textbook/docs/"), link
        finally:
            tab.close()


def test_page_reports_a_service_that_cannot_be_reached(
    browser: Browser, service: tuple[str, Path]
) -> None:
    base, _ = service
    tab = open_page(browser, f"{base}/")
    try:
        # The page is loaded; then its request to the API fails as if the service were gone.
        tab.call("Fetch.enable", {"patterns": [{"urlPattern": "*/chat/stream"}]})
        tab.type_into("#question", QUESTION)
        tab.click("#send")
        paused = tab.browser.wait_event("Fetch.requestPaused", tab.session)
        tab.call(
            "Fetch.failRequest",
            {"requestId": paused["requestId"], "errorReason": "ConnectionRefused"},
        )
        tab.wait_for(ANSWER_DONE)
        turn = tab.evaluate(LAST_TURN)
        assert turn["error"] and "Network error" in turn["error"], turn
        assert tab.evaluate("document.getElementById('send').disabled") is False
    finally:
        tab.close()


# --- CORS with credentials from another loopback origin --------------------------------


def cors_outcome(browser: Browser, page_origin: str, service_base: str) -> tuple[str, str]:
    tab = browser.new_tab()
    try:
        tab.goto(f"{page_origin}/?service={service_base}")
        title: str = tab.wait_for("document.title !== 'pending' && document.title")
        result: str = tab.evaluate("document.getElementById('result').textContent")
        return title, result
    finally:
        tab.close()


@pytest.mark.parametrize("setting", ["allowed-origins", "origin-regex", "neither"])
def test_cors_with_credentials_from_another_loopback_origin(
    setting: str,
    browser: Browser,
    service: tuple[str, Path],
    other_origin: int,
    tmp_path: Path,
) -> None:
    page = f"http://127.0.0.1:{other_origin}"
    if setting == "allowed-origins":
        # The module's service allows exactly http://127.0.0.1:<other_origin>.
        started: contextlib.AbstractContextManager[str] = contextlib.nullcontext(service[0])
    else:
        cors = {"origin-regex": {"CORS_ORIGIN_REGEX": rf"http://127\.0\.0\.1:{other_origin}"}}
        env = clean_env(
            PORT=str(free_port()), DATA_DIR=str(tmp_path / "data"), **cors.get(setting, {})
        )
        started = running_service(env, tmp_path)
    with started as base:
        title, result = cors_outcome(browser, page, base)
        if setting == "neither":
            assert title == "blocked: TypeError", result
        else:
            assert title == "ok", result
            answer = json.loads(result)
            assert answer["status"] == 200 and "response" in answer["body"], answer
            # localhost is another origin than 127.0.0.1: not allowed.
            title, result = cors_outcome(browser, f"http://localhost:{other_origin}", base)
            assert title == "blocked: TypeError", result


def test_feedback_round_trip_from_the_page(browser: Browser, service: tuple[str, Path]) -> None:
    base, workdir = service
    tab = open_page(browser, f"{base}/")
    try:
        turn = ask(tab, "What is a node?")
        assert turn["error"] is None, turn
        tab.wait_for("document.querySelectorAll('.turn .feedback button').length === 3")
        buttons = ".turn:last-child .feedback button"
        tab.click(f"{buttons}:nth-of-type(2)")  # not helpful: the comment box opens
        said = "document.querySelector('.turn:last-child .feedback .said').textContent"
        tab.wait_for(f"{said} === 'Thanks, noted.'")
        tab.type_into(".turn:last-child .feedback input", "It cites the wrong page")
        tab.click(f"{buttons}:nth-of-type(3)")  # send the comment: the same vote, changed
        tab.wait_for(f"{said} === 'Sending…' || {said} === 'Thanks, noted.'")
        tab.wait_for(f"{said} === 'Thanks, noted.'")
    finally:
        tab.close()
    key = (workdir / "data" / "admin-key").read_text().strip()
    report = httpx.get(
        f"{base}/admin/insights", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()
    disliked = [d for d in report["most_down_voted"] if d["question"] == "What is a node?"]
    assert disliked and disliked[0]["down"] == 1, report  # one reader, one vote
    assert disliked[0]["comments"] == ["It cites the wrong page"]


def test_the_insights_page_shows_the_report_for_the_key(
    browser: Browser, service: tuple[str, Path]
) -> None:
    base, workdir = service
    httpx.post(f"{base}/chat", json={"query": "How long should I boil fresh pasta?"}, timeout=10)
    key = (workdir / "data" / "admin-key").read_text().strip()
    tab = browser.new_tab()
    try:
        tab.goto(f"{base}/admin")
        tab.wait_for("document.getElementById('admin').dataset.ready === 'true'")
        tab.type_into("#key", "wrong key")
        tab.click("#go")
        tab.wait_for("document.getElementById('status').textContent.startsWith('Error 401')")
        tab.evaluate("document.getElementById('key').value = ''")
        tab.type_into("#key", key)
        tab.click("#go")
        tab.wait_for("!document.getElementById('report').hidden")
        gaps = tab.evaluate("document.getElementById('gaps').textContent")
        assert "How long should I boil fresh pasta?" in gaps
        assert tab.evaluate("document.querySelectorAll('#chart rect').length") >= 2
        stored = tab.evaluate(
            "localStorage.length + sessionStorage.length + document.cookie.length"
        )
        assert stored == 0  # the key lives in the page's memory only
    finally:
        tab.close()
