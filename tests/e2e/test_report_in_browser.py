"""The run report as a person sees it: opened in headless Chromium, drawn, and fetching nothing.

Chromium is the Debian package ``chromium`` (``make test-deps`` installs it as root). Where it is
absent these tests skip with the reason, except where CHURN_TESTS_REQUIRE_BROWSER is set (CI), where
they fail. The request check is itself checked: the same machinery must catch a page that does fetch.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest

from churn_pipeline.report.html import CHALLENGER_COLOUR, CONTENT_SECURITY_POLICY, render_report
from churn_pipeline.tooling.browser import PageVisit, visit
from churn_pipeline.tooling.browser import main as screenshot_main
from tests import report_fixtures as fixtures

pytestmark = pytest.mark.e2e

EXTERNAL_IMAGE = "http://127.0.0.1:9/x.png"
# colours of the style sheet that only show when it applied: the banners' left borders, a drifted row
PASSED_BORDER, FAILED_BORDER, DRIFT_ROW = "#16a34a", "#dc2626", "#fee2e2"


def open_page(document: bytes, folder: Path, chromium: str) -> PageVisit:
    page = folder / "report.html"
    page.write_bytes(document)
    return visit(page, width=1280, height=4000, chromium=chromium)


def pixels(png: bytes):
    """The screenshot as an (height, width, 3) array of 0-255 values."""
    import matplotlib.image
    import numpy

    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    return numpy.rint(image[..., :3] * 255).astype(numpy.uint8)


def count_of(image, colour: str) -> int:
    import numpy

    rgb = [int(colour[index:index + 2], 16) for index in (1, 3, 5)]
    return int(numpy.all(image == rgb, axis=-1).sum())


def assert_drawn(screenshot: bytes) -> object:
    import numpy

    image = pixels(screenshot)
    assert image.shape == (4000, 1280, 3)
    # one integer per colour: numpy.unique over rows of three would take seconds on 5 M pixels
    colours = numpy.unique(image[..., 0].astype(numpy.uint32) << 16 | image[..., 1].astype(numpy.uint32) << 8
                           | image[..., 2])
    inked = numpy.any(image < 250, axis=-1).mean()
    assert len(colours) > 200, f"only {len(colours)} distinct colours: the page looks blank"
    assert inked > 0.03, f"only {inked:.1%} of the window is not white"
    return image


def test_a_passed_run_with_a_champion_and_drift_renders_and_fetches_nothing(chromium: str, tmp_path: Path) -> None:
    result = open_page(render_report(fixtures.report_inputs()), tmp_path, chromium)
    assert result.page_requests == ()
    image = assert_drawn(result.screenshot)
    assert count_of(image, PASSED_BORDER) > 500, "the decision banner is not drawn in its colour"
    assert count_of(image, DRIFT_ROW) > 5000, "the drifted feature's row is not highlighted"
    # the importance bars are solid challenger blue: the inline images were decoded and shown
    assert count_of(image, CHALLENGER_COLOUR) > 5000, "the plots are not displayed"


def test_a_rejected_run_without_details_or_champion_renders_and_fetches_nothing(chromium: str,
                                                                                tmp_path: Path) -> None:
    inputs = fixtures.report_inputs(
        decision=fixtures.decision(passed=False, reasons=("model_rejected",),
                                   details=["accuracy 0.7105 is below the threshold 0.7500"]),
        evaluation=fixtures.evaluation(with_champion=False), details=None, drift=fixtures.no_baseline_drift())
    result = open_page(render_report(inputs), tmp_path, chromium)
    assert result.page_requests == ()
    image = assert_drawn(result.screenshot)
    assert count_of(image, FAILED_BORDER) > 500
    assert count_of(image, DRIFT_ROW) == 0


def test_the_check_catches_a_page_that_fetches(chromium: str, tmp_path: Path) -> None:
    """Without this, a checker that never sees a request would pass every report."""
    document = render_report(fixtures.report_inputs()).decode()
    policies = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', document)
    assert [html.unescape(content) for content in policies] == [CONTENT_SECURITY_POLICY]
    policy = f'<meta http-equiv="Content-Security-Policy" content="{policies[0]}">'
    injected = document.replace("<main>", f'<main><img src="{EXTERNAL_IMAGE}" alt="">', 1)
    without_policy = injected.replace(policy, "", 1)

    fetched = open_page(without_policy.encode(), tmp_path, chromium)
    assert EXTERNAL_IMAGE in fetched.page_requests
    # the report's policy alone stops the same image: a second line of defence behind the escaping
    blocked = open_page(injected.encode(), tmp_path, chromium)
    assert blocked.page_requests == ()


def test_the_screenshot_command_saves_what_chromium_shows(chromium: str, tmp_path: Path, capsys) -> None:
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    page.write_bytes(render_report(fixtures.report_inputs()))
    assert screenshot_main([str(page), str(png), "--width=1100", "--height=1500"]) == 0
    assert pixels(png.read_bytes()).shape == (1500, 1100, 3)
    page.write_text(f'<!DOCTYPE html><img src="{EXTERNAL_IMAGE}" alt="">')
    assert screenshot_main([str(page), str(tmp_path / "fetching.png")]) == 1
    assert EXTERNAL_IMAGE in capsys.readouterr().err and not (tmp_path / "fetching.png").exists()
