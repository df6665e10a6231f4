"""What a person sees in Airflow's UI, driven through headless Chromium's DevTools protocol.

Used by the standalone test (the DAG's graph and the trigger form, as the README describes them, and
a registered version's review under Required Actions)
and to take the README's pictures of them from a running ``make standalone``:

    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True make standalone      # in one shell
    .venv/bin/python -m tests.ui_tour http://localhost:8080 docs/images     # in another

The UI is a React application: pages are loaded, then the tour waits for text to appear rather
than for a fixed time, and clicks buttons by their visible label.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churn_pipeline.tooling.browser import CHROMIUM_FLAGS, BrowserError, find_chromium
from tests.e2e.moto_server import free_port

DAG_ID = "customer_churn_pipeline"
TASKS = ("extract_customers", "stage_inputs", "find_champion", "preprocess", "train", "score_champion", "evaluate",
         "check_accuracy", "register_model", "notify_failure")


class Page:
    """One Chromium tab, spoken to over its DevTools WebSocket."""

    def __init__(self, socket: Any):
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def wait_for_text(self, *texts: str, timeout: float = 60.0) -> str:
        """The page's visible text once it holds every one of ``texts``."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() > deadline:
                missing = [text for text in texts if text not in shown]
                raise BrowserError(f"the page never showed {missing}; it shows: {shown[:1500]}")
            time.sleep(0.5)

    def click(self, label: str) -> None:
        """Click the button (or link) whose visible text or aria-label is ``label``."""
        clicked = self.evaluate(f"""(() => {{
            const label = {json.dumps(label)};
            const found = [...document.querySelectorAll('button, a, [role="button"]')].find(element =>
                element.innerText.trim() === label || element.getAttribute('aria-label') === label);
            if (!found) return false;
            found.click();
            return true;
        }})()""")
        if not clicked:
            raise BrowserError(f"no button labelled {label!r} on the page")

    def screenshot(self, path: Path) -> None:
        time.sleep(1.0)  # let the last layout and transition settle
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


@contextmanager
def chromium_page(width: int = 1400, height: int = 900) -> Iterator[Page]:
    """A fresh headless Chromium with one tab, closed afterwards."""
    from websockets.sync.client import connect

    binary = find_chromium()
    if binary is None:
        raise BrowserError("Chromium is not installed: run `make test-deps` as root")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ui-tour-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                                    f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                        tabs = [tab for tab in json.loads(answer.read()) if tab.get("type") == "page"]
                    if tabs:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise BrowserError("Chromium's DevTools endpoint never answered")
                time.sleep(0.3)
            with connect(tabs[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=30) as socket:
                page = Page(socket)
                page.call("Page.enable")
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                          mobile=False)
                yield page
        finally:
            process.terminate()
            process.wait(timeout=30)


def show_the_graph(page: Page, base_url: str, path: str = f"/dags/{DAG_ID}", timeout: float = 60.0,
                   tasks: tuple[str, ...] = TASKS) -> str:
    """A page of a DAG (the DAG's, or one run's) with its graph drawn; the page's text."""
    page.open(f"{base_url}{path}")
    page.wait_for_text(path.split("/")[2], "Trigger")
    deadline = time.monotonic() + timeout
    while "React Flow" not in page.text():  # the graph's canvas signs itself; the grid does not
        page.evaluate("""(() => {
            const toggle = [...document.querySelectorAll('button')].find(
                b => (b.getAttribute('aria-label') || '').startsWith('Show Graph'));
            if (toggle) toggle.click();
        })()""")
        if time.monotonic() > deadline:
            raise BrowserError("the DAG's graph never showed")
        time.sleep(0.5)
    return page.wait_for_text(*tasks)


def open_the_trigger_form(page: Page, param: str = "input_uri") -> str:
    """The trigger form over the current page; its text. (On a run's page the button opens a menu
    first: trigger anew, or again with that run's config.)"""
    page.click("Trigger Dag")
    time.sleep(0.5)
    page.evaluate("""(() => {
        const item = [...document.querySelectorAll('[role=menuitem]')].find(e => e.innerText.trim() === 'Trigger');
        if (item) item.click();
    })()""")
    return page.wait_for_text("Trigger", param)


def trigger_is_enabled(page: Page) -> bool:
    """Whether the open trigger form's submit button can be pressed (the params pass the form's checks)."""
    return bool(page.evaluate("(() => { const b = document.querySelector('[data-testid=trigger-dag-submit]');"
                              " return Boolean(b) && !b.disabled; })()"))


def unpause_is_checked(page: Page) -> bool:
    """Whether the open trigger form's "Unpause ... on trigger" box is checked."""
    return bool(page.evaluate("""(() => {
        const label = [...document.querySelectorAll('label')].find(l => l.innerText.includes('Unpause'));
        const box = label && label.querySelector('input[type=checkbox]');
        return Boolean(box) && box.checked;
    })()"""))


def submit_the_trigger_form(page: Page, timeout: float = 30.0) -> None:
    """Press the open trigger form's Trigger button, and wait until the form has closed."""
    page.evaluate("document.querySelector('[data-testid=trigger-dag-submit]').click()")
    deadline = time.monotonic() + timeout
    while page.evaluate("Boolean(document.querySelector('[data-testid=trigger-dag-submit]'))"):
        if time.monotonic() > deadline:
            raise BrowserError(f"the trigger form never closed: {page.text()[:1500]}")
        time.sleep(0.5)


def answer_the_review(page: Page, url: str, subject: str, option: str, comment: str,
                      timeout: float = 120.0) -> str:
    """Open a review's Required Actions page (the link its notification carries), wait for the question
    of the try now waiting, type the comment and press ``option``; the page's text as it was answered."""
    page.open(url)
    shown = page.wait_for_text(subject, "Awaiting Input", "Comment", option, timeout=timeout)
    page.evaluate(f"""(() => {{
        const field = document.querySelector('input[name=element_comment]');
        const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
        setValue.call(field, {json.dumps(comment)});  // as typing does: React reads the input event
        field.dispatchEvent(new Event('input', {{bubbles: true}}));
    }})()""")
    deadline = time.monotonic() + 30
    while not page.evaluate(f"""[...document.querySelectorAll('button')].some(b =>
            b.innerText.trim() === {json.dumps(option)} && !b.disabled)"""):
        if time.monotonic() > deadline:
            raise BrowserError(f"the {option} button never became pressable: {page.text()[-1500:]}")
        time.sleep(0.3)
    page.click(option)
    page.wait_for_text("Response received", timeout=timeout)
    return shown


def latest_run_path(page: Page, base_url: str) -> str:
    """The path of the DAG's latest run, from the link on the DAG's page."""
    page.open(f"{base_url}/dags/{DAG_ID}")
    page.wait_for_text(DAG_ID, "Latest Run")
    deadline = time.monotonic() + 30
    while not (href := page.evaluate(f"""(() => {{
            const link = [...document.querySelectorAll('a')].find(a => a.pathname.startsWith('/dags/{DAG_ID}/runs/'));
            return link ? link.pathname : null;
        }})()""")):
        if time.monotonic() > deadline:
            raise BrowserError("the DAG's page links no run: run the DAG once first (make demo)")
        time.sleep(0.5)
    return str(href)


def take_pictures(base_url: str, folder: Path) -> list[Path]:
    """The README's pictures: the latest run's graph, and the trigger form over it."""
    graph, form = folder / "ui-graph.png", folder / "ui-trigger-form.png"
    with chromium_page(width=1280, height=720) as page:
        show_the_graph(page, base_url, latest_run_path(page, base_url))
        page.screenshot(graph)
        open_the_trigger_form(page)
        page.screenshot(form)
    return [graph, form]


if __name__ == "__main__":
    url, target = sys.argv[1].rstrip("/"), Path(sys.argv[2])
    for picture in take_pictures(url, target):
        print(picture)
