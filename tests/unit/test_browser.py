"""Reading Chromium's NetLog: the page's requests are told apart from the browser's own. (A browser
process that fails: tests/scripts/test_browser_process.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churn_pipeline.tooling import browser
from churn_pipeline.tooling.browser import BrowserError, read_netlog

TYPES = {"URL_REQUEST_START_JOB": 2, "HOST_RESOLVER_MANAGER_REQUEST": 7, "SOCKET_CONNECT": 9}
PAGE_KEY = "file:// [internally: file://] file:// [internally: file://]"


def event(kind: str, **params: object) -> dict:
    return {"type": TYPES[kind], "phase": 1, "source": {"id": 1, "type": 1}, "params": params}


# Shapes copied from a NetLog of Chromium 156 opening a file:// page with an external image.
EVENTS = [
    event("URL_REQUEST_START_JOB", url="http://clients2.google.com/time/1/current?cup2key=x", initiator="not an origin",
          network_isolation_key="null null", method="GET"),
    event("URL_REQUEST_START_JOB", url="https://accounts.google.com/ListAccounts", initiator="not an origin",
          network_isolation_key="https://google.com https://google.com", method="POST"),
    event("HOST_RESOLVER_MANAGER_REQUEST", host="https://update.googleapis.com", network_anonymization_key="null"),
    event("URL_REQUEST_START_JOB", url="http://127.0.0.1:9/x.png", initiator="null",
          network_isolation_key=PAGE_KEY, method="GET"),
    event("HOST_RESOLVER_MANAGER_REQUEST", host="http://127.0.0.1:9",
          network_anonymization_key="file:// [internally: file://] same_site"),
    event("URL_REQUEST_START_JOB", url="data:image/png;base64,AAAA", initiator="null", network_isolation_key=PAGE_KEY),
    event("SOCKET_CONNECT", address="10.0.0.53:53"),
    {"type": TYPES["URL_REQUEST_START_JOB"], "phase": 2, "source": {"id": 1, "type": 1}, "params": {"net_error": -312}},
]


def netlog(events: list[dict]) -> str:
    return json.dumps({"constants": {"logEventTypes": TYPES}, "events": events})


def test_requests_made_for_the_page_are_told_apart_from_the_browsers_own() -> None:
    page, own = read_netlog(netlog(EVENTS))
    assert page == ("http://127.0.0.1:9/x.png", "http://127.0.0.1:9")
    assert own == ("http://clients2.google.com/time/1/current?cup2key=x",
                       "https://accounts.google.com/ListAccounts", "https://update.googleapis.com")


def test_a_log_without_page_requests_reads_as_none() -> None:
    assert read_netlog(netlog(EVENTS[:3] + EVENTS[5:]))[0] == ()


def test_a_log_cut_short_by_a_browser_that_did_not_close_it_is_still_read() -> None:
    complete = netlog(EVENTS)
    truncated = complete[:complete.rindex("]")] + ",\n"
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)
    assert read_netlog(truncated) == read_netlog(complete)


def test_a_missing_browser_is_an_error_that_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><p>x</p>")
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    with pytest.raises(BrowserError, match="make test-deps"):
        browser.visit(page)
