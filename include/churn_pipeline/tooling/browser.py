"""Open a local page in headless Chromium: what it looks like, and what it asked the network for.

The run report must make no request when opened; this is how that is checked
(``tests/e2e/test_report_in_browser.py``) and how the README's screenshot is taken
(``python -m churn_pipeline.report.html screenshot``). Chromium (Debian package ``chromium``;
``make test-deps`` installs it) loads the page once, saves a screenshot and writes a NetLog: every
URL request and host lookup its network stack made. Those made on the page's behalf carry the
page's site (``file://``) in their network isolation key or a ``null`` (opaque file) initiator.
Chromium also makes requests of its own (component updates, network time, account checks), some
even with ``--disable-background-networking``; they carry neither, and are reported apart so that
they neither hide nor fake a request by the page.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEBIAN_CHROMIUM = "/usr/bin/chromium"
# Quiet, throw-away, single-shot: no sandbox (containers run as root), no GPU, no first-run UI,
# no sync or updates, a fresh profile per visit.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
# The NetLog events that name what was fetched, and where they keep the page's identity.
REQUEST_EVENTS = {"URL_REQUEST_START_JOB": "url", "HOST_RESOLVER_MANAGER_REQUEST": "host"}
PAGE_KEYS = ("network_isolation_key", "network_anonymization_key", "initiator")
LOCAL_SCHEMES = ("data:", "file:")


class BrowserError(RuntimeError):
    """Chromium is missing, failed, or left no screenshot or network log."""


@dataclass(frozen=True)
class PageVisit:
    screenshot: bytes  # PNG of the window (width x height), not of the whole page
    page_requests: tuple[str, ...]  # URLs and hosts the page asked for: a self-contained page has none
    browser_requests: tuple[str, ...]  # Chromium's own background traffic during the visit


def find_chromium() -> str | None:
    """The Chromium binary on this machine, or None."""
    return shutil.which("chromium") or (DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).is_file() else None)


def visit(page: Path, *, width: int = 1280, height: int = 4000, chromium: str | None = None,
          timeout: float = 120.0) -> PageVisit:
    """Load ``page`` once in a fresh headless Chromium; its screenshot and its network requests."""
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("Chromium is not installed: run `make test-deps` as root "
                           "(or apt-get install --no-install-recommends chromium)")
    page = Path(page).resolve()
    if not page.is_file():
        raise BrowserError(f"no page at {page}")
    with tempfile.TemporaryDirectory(prefix="churn-browser-", ignore_cleanup_errors=True) as scratch:
        folder = Path(scratch)
        shot, netlog = folder / "shot.png", folder / "net.json"
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}", f"--log-net-log={netlog}",
                   f"--screenshot={shot}", f"--window-size={width},{height}", page.as_uri()]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=folder)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish loading {page} within {timeout:.0f} s") from None
        if completed.returncode != 0 or not shot.is_file() or not netlog.is_file():
            raise BrowserError(f"Chromium exited {completed.returncode} without a screenshot and a network log; "
                               f"its last output: {completed.stderr[-2000:]}")
        page_requests, browser_requests = read_netlog(netlog.read_text(encoding="utf-8"))
        return PageVisit(shot.read_bytes(), page_requests, browser_requests)


def read_netlog(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The URLs and hosts requested on a file:// page's behalf, and those Chromium requested itself.

    A NetLog is one JSON object; a browser that did not shut down cleanly leaves it without its
    closing brackets, so those are added when missing. ``data:`` and ``file:`` URLs are not network
    requests and are left out.
    """
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    page: list[str] = []
    browser: list[str] = []
    for event in log.get("events", []):
        field = REQUEST_EVENTS.get(names.get(event.get("type"), ""))
        params = event.get("params") or {}
        target = params.get(field) if field else None
        if not isinstance(target, str) or target.startswith(LOCAL_SCHEMES):
            continue
        bucket = page if _made_for_the_page(params) else browser
        if target not in bucket:
            bucket.append(target)
    return tuple(page), tuple(browser)


def _made_for_the_page(params: dict[str, Any]) -> bool:
    values = [str(params.get(key, "")) for key in PAGE_KEYS]
    # a file:// page's origin is opaque: its requests' initiator serialises as "null"
    return any("file://" in value for value in values) or params.get("initiator") == "null"


def main(argv: Sequence[str] | None = None) -> int:
    """Save a PNG of a page as headless Chromium shows it, refusing a page that makes any request."""
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.tooling.browser", description=main.__doc__)
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)
    try:
        result = visit(args.page, width=args.width, height=args.height)
        if result.page_requests:
            raise BrowserError(f"the page made requests: {', '.join(result.page_requests)}; no screenshot saved")
        args.png.write_bytes(result.screenshot)
    except (OSError, BrowserError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.png} ({len(result.screenshot):,} bytes); the page made no request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
