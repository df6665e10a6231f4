"""The browser as a process: a page that is not there, or a browser that exits without drawing it,
is an error that says what happened (tests/e2e/test_report_in_browser.py drives a real Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn_pipeline.tooling import browser
from churn_pipeline.tooling.browser import BrowserError


def test_a_missing_page_or_a_browser_that_draws_nothing_is_an_error_that_says_so(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><p>x</p>")
    with pytest.raises(BrowserError, match="no page at"):
        browser.visit(tmp_path / "absent.html", chromium="/bin/true")
    with pytest.raises(BrowserError, match="exited 1 without a screenshot"):
        browser.visit(page, chromium="/bin/false")
