"""The run report: the decision first, every part shown or said missing, nothing fetched, nothing injected."""

from __future__ import annotations

import base64
import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from churn_pipeline.report.html import CONTENT_SECURITY_POLICY, ReportInputs, main, render_report
from tests import report_fixtures as fixtures

HOSTILE = "<script>alert('x')</script>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would see: every start tag with its attributes, the text, and the table rows."""

    def __init__(self, document: bytes):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[tuple[str, list[str]]] = []  # (the row's class, its cells' text)
        self.chunks: list[str] = []
        self._cell: list[str] | None = None
        self.feed(document.decode("utf-8"))
        self.close()
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def row(self, first_cell: str) -> tuple[str, list[str]]:
        matches = [row for row in self.rows if row[1] and row[1][0] == first_cell]
        assert len(matches) == 1, f"{len(matches)} rows start with {first_cell!r}"
        return matches[0]


def render(**overrides: Any) -> Page:
    return Page(render_report(fixtures.report_inputs(**overrides)))


@pytest.fixture(scope="module")
def example() -> bytes:
    return render_report(fixtures.report_inputs())


@pytest.fixture(scope="module")
def page(example: bytes) -> Page:
    return Page(example)


def test_the_decision_and_every_reason_come_first(page: Page) -> None:
    decision = fixtures.decision()
    positions = [page.text.index(text) for text in (
        "Passed, registered for approval", *decision["details"], "Metrics on the test customers",
        "Curves, errors and what the model uses", "Did the customers' data move?", "Data quality",
        "Artefacts and jobs")]
    assert positions == sorted(positions)
    banner = [attrs for attrs in page.all("section") if "decision" in attrs.get("class", "")]
    assert banner == [{"class": "decision passed", "id": "decision"}]


def test_a_rejected_run_says_not_registered_and_names_every_failing_rule() -> None:
    sentences = ["roc_auc 0.8906 is below the champion's 0.8801 + 0.0500 (version 1)",
                 "drift at level drift on 1 feature (MonthlyCharges) blocks registration (drift_mode block)"]
    page = render(decision=fixtures.decision(passed=False, reasons=("not_better_than_champion", "data_drift"),
                                             details=sentences, drift_mode="block"))
    assert "Not registered: not better than the champion; the data drifted" in page.text
    assert all(sentence in page.text for sentence in sentences)
    assert page.text.index(sentences[1]) < page.text.index("Metrics on the test customers")
    assert {"class": "decision failed", "id": "decision"} in page.all("section")


def test_metrics_stand_beside_the_baseline_and_the_champion_with_the_change(page: Page) -> None:
    header = next(cells for _, cells in page.rows if cells and cells[0] == "metric")
    assert header == ["metric", "this run", "majority-class baseline", "champion (version 1)", "change"]
    assert page.row("accuracy")[1] == ["accuracy", "0.8305 ± 0.0081", "0.7240", "0.8260", "+0.0045"]
    css, cells = page.row("ROC AUC (gate)")
    assert css == "gate-metric" and cells[1:] == ["0.8906 ± 0.0074", "–", "0.8801", "+0.0105"]
    assert "models:/customer-churn/1" in page.text


def test_without_a_champion_the_report_says_so_and_has_no_champion_column() -> None:
    page = render(evaluation=fixtures.evaluation(with_champion=False), details=fixtures.details(with_champion=False))
    assert "No champion: no approved version to compare with." in page.text
    assert page.row("accuracy")[1] == ["accuracy", "0.8305 ± 0.0081", "0.7240"]
    assert "champion (version" not in page.text


def test_a_champion_that_cannot_be_compared_is_named_with_the_reason() -> None:
    evaluation = fixtures.evaluation()
    evaluation["champion"] = {"identifier": "models:/customer-churn/1", "version": 1, "comparable": False,
                              "reason": "it was trained on a schema without the column StreamingTV",
                              "metrics": {}, "delta": {}}
    page = render(evaluation=evaluation, details=fixtures.details(with_champion=False))
    assert ("Champion not comparable: it was trained on a schema without the column StreamingTV. "
            "Champion: models:/customer-churn/1") in page.text
    assert len(page.row("accuracy")[1]) == 3


def test_drifted_features_come_first_and_are_highlighted_watched_ones_lightly(page: Page) -> None:
    css, cells = page.row("MonthlyCharges")
    assert css == "level-drift" and cells[1:4] == ["numeric", "1.7300", "drift"]
    assert page.row("TotalCharges")[0] == "level-watch"
    assert page.row("Gender") == ("", ["Gender", "categorical", "0.0004", "ok", "0.980 → 0.979", "-0.001", "0.0 %"])
    features = [cells[0] for _, cells in page.rows if cells and cells[0] in fixtures.FEATURES]
    assert features[:2] == ["MonthlyCharges", "TotalCharges"]
    assert "1 feature(s) drifted, 1 to watch (drift mode warn: reported, not blocking)" in page.text
    assert page.text.index("1 feature(s) drifted") < page.text.index("Metrics on the test customers")


@pytest.mark.parametrize("drift, drift_mode, expected", [
    (fixtures.no_baseline_drift(), "warn", "No baseline yet (first run)"),
    (None, "off", "Drift check off for this run (drift mode off)."),
    (None, "warn", "No drift report for this run (no drift.json)."),
])
def test_a_run_without_a_drift_comparison_says_why(drift: dict | None, drift_mode: str, expected: str) -> None:
    page = render(drift=drift, decision=fixtures.decision(drift_mode=drift_mode))
    assert expected in page.text
    assert not [css for css, _ in page.rows if css.startswith("level-")]
    assert "feature(s) drifted" not in page.text


def test_missing_and_extra_columns_are_named() -> None:
    drift = fixtures.drift()
    drift.update(missing_columns=["StreamingTV"], extra_columns=["Region"])
    page = render(drift=drift)
    assert "In the baseline, absent now: StreamingTV" in page.text and "New, not in the baseline: Region" in page.text


def test_every_plot_is_an_inline_png_of_its_stated_size(page: Page) -> None:
    images = page.all("img")
    assert [image["alt"] for image in images] == ["ROC curve", "Precision and recall", "Calibration",
                                                  "Confusion matrix", "Top 10 permutation importances"]
    for image in images:
        assert image["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(image["src"].removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        # IHDR: width and height, big-endian, right after the signature and the chunk header
        assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (
            int(image["width"]), int(image["height"]))
        assert b"Software" not in png and b"matplotlib" not in png


def test_only_the_top_ten_importances_are_drawn_and_the_caption_says_of_how_many() -> None:
    details = fixtures.details()
    extra = [{"name": f"Extra{index}", "mean": 0.0001 * index, "std": 0.0} for index in range(4)]
    details["permutation_importance"]["features"] += extra
    page = render(details=details)
    assert "the 10 largest of 14, mean of 3 repeats on 2,000 test rows" in page.text


def test_the_data_quality_counts_of_preprocessing_are_shown(page: Page) -> None:
    assert page.row("rows read")[1] == ["rows read", "10,100"]
    assert page.row("duplicate rows (dropped)")[1][1] == "100"
    assert page.row("rows used")[1][1] == "10,000 (99.0 %)"
    assert page.row("classes")[1][1] == "No 7,238 (72.4 %) · Yes 2,762 (27.6 %)"
    assert page.row("splits")[1][1] == ("train 7,000 (1,933 churned) · validation 1,000 (277 churned) · "
                                        "test 2,000 (552 churned)")
    assert page.row("missing values")[1][1] == "Age 198 · TotalCharges 41"


def test_the_page_fetches_nothing_and_runs_nothing(example: bytes, page: Page) -> None:
    policy = [attrs for attrs in page.all("meta") if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy == [{"http-equiv": "Content-Security-Policy", "content": CONTENT_SECURITY_POLICY}]
    assert CONTENT_SECURITY_POLICY == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    # the policy is in force before the first element that could fetch
    assert example.index(b"Content-Security-Policy") < example.index(b"<img")
    fetching = [(tag, attrs) for tag, attrs in page.tags if tag not in ("a",) and ({"src", "href", "srcset", "data",
                                                                                 "poster", "background"} & set(attrs))]
    assert {tag for tag, _ in fetching} == {"img"}
    assert all(attrs["src"].startswith("data:") for _, attrs in fetching)
    assert not {"script", "link", "iframe", "object", "embed", "base", "form"} & {tag for tag, _ in page.tags}
    assert b"url(" not in example and b"@import" not in example
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]


def test_links_open_only_when_clicked_and_unsafe_ones_are_not_links() -> None:
    links = [*fixtures.links(), {"label": "bad", "href": "javascript:alert(1)"},
             {"label": "protocol-relative", "href": "//evil.example/x"}]
    page = render(links=links)
    hrefs = [attrs["href"] for attrs in page.all("a") if not attrs["href"].startswith("#")]
    assert hrefs == [
        f"{fixtures.RUN_URI}/evaluation/evaluation.json",
        f"{fixtures.RUN_URI}/model/churn-train-{fixtures.RUN_KEY}/output/model.tar.gz",
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
        f"#/jobs/churn-train-{fixtures.RUN_KEY}",
        f"file:///srv/churn/local-store/jobs/churn-evaluate-{fixtures.RUN_KEY}",
    ]
    assert "bad javascript:alert(1)" in page.text and "protocol-relative //evil.example/x" in page.text


def test_every_string_from_the_inputs_is_escaped() -> None:
    drift = fixtures.drift()
    drift["features"][0]["name"] = HOSTILE
    drift["current"]["source"] = "<img src=x onerror=alert(1)>"
    details = fixtures.details()
    details["permutation_importance"]["features"][0]["name"] = HOSTILE
    quality = fixtures.quality()
    quality["missing_values"][HOSTILE] = 3
    evaluation = fixtures.evaluation()
    evaluation["champion"]["identifier"] = '"><script>alert(1)</script>'
    document = render_report(fixtures.report_inputs(
        run_key=HOSTILE, run_id='x" onmouseover="alert(1)', backend="<b>local</b>",
        decision=fixtures.decision(details=[HOSTILE], detail=HOSTILE), evaluation=evaluation, details=details,
        drift=drift, quality=quality, links=[{"label": HOSTILE, "href": 's3://bucket/"><script>x</script>'}]))
    page = Page(document)
    assert b"<script" not in document.lower() and b"<img src=x" not in document
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert {tag for tag, _ in page.tags} <= {"html", "head", "meta", "title", "style", "body", "main", "header", "p",
                                             "h1", "h2", "code", "section", "ul", "li", "a", "div", "figure", "img",
                                             "figcaption", "strong", "table", "thead", "tbody", "tr", "th", "td",
                                             "span"}
    # the hostile text is shown as text, where it belongs
    assert page.text.count(HOSTILE) >= 5
    assert page.row(HOSTILE)[0] == "level-drift"


def test_markup_in_a_feature_name_is_escaped_by_the_template_not_by_hand() -> None:
    """The template's autoescaping is what stands between the data and the page: with it off, this fails."""
    name = "<script>alert(1)</script>"
    drift = fixtures.drift()
    drift["features"][0]["name"] = name
    quality = fixtures.quality()
    quality["missing_values"] = {name: 5}
    document = render_report(fixtures.report_inputs(drift=drift, quality=quality))
    assert document.count(b"<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>") == 2
    page = Page(document)
    assert page.row(name)[1][:2] == [name, "numeric"]
    assert page.row("missing values")[1][1] == f"{name} 5"


def test_feature_names_are_drawn_as_text_never_parsed_as_mathtext() -> None:
    details = fixtures.details()
    details["permutation_importance"]["features"][0]["name"] = r"cost $\undefinedcommand{x}$ in $"
    assert len(render(details=details).all("img")) == 5


def test_an_unusable_evaluation_still_gives_a_report_that_says_what_is_missing() -> None:
    inputs = ReportInputs.from_json(
        run_key=fixtures.RUN_KEY, run_id=fixtures.RUN_ID, dag_id="customer_churn_pipeline", backend="local",
        decision=fixtures.decision(
            passed=False, reasons=("evaluation_invalid",), accuracy=None, metrics={},
            details=[f"no evaluation report at {fixtures.RUN_URI}/evaluation/evaluation.json"]),
        evaluation=None, details=None, drift=None, quality=fixtures.as_bytes(fixtures.quality()), links=[])
    page = Page(render_report(inputs))
    assert "Not registered: the evaluation is unusable" in page.text
    assert "Could not read: evaluation.json was not found." in page.text
    assert "No metrics: the evaluation wrote none that can be read" in page.text
    assert "Champion: unknown (no evaluation.json)." in page.text
    assert "Not drawn: ROC, precision-recall and calibration curves and permutation importances" in page.text
    assert "Not drawn: confusion matrix: evaluation.json has none." in page.text
    assert "No drift report for this run" in page.text and "No links were recorded." in page.text
    assert page.all("img") == []
    assert page.row("rows used")[1][1] == "10,000 (99.0 %)"


def test_malformed_or_partial_parts_are_reported_not_fatal() -> None:
    details = fixtures.details()
    details["roc"]["challenger"]["tpr"] = details["roc"]["challenger"]["tpr"][:-1]  # one point short
    details["calibration"] = "not an object"
    evaluation = fixtures.evaluation()
    evaluation["metrics"]["roc_auc"] = float("nan")
    del evaluation["confusion_matrix"]
    inputs = ReportInputs.from_json(
        run_key=fixtures.RUN_KEY, run_id=fixtures.RUN_ID, dag_id="customer_churn_pipeline", backend="local",
        decision=fixtures.decision(), evaluation=json.dumps(evaluation).encode(),
        details=json.dumps(details).encode(), drift=b"{truncated", quality=b"[1, 2]", links=fixtures.links())
    page = Page(render_report(inputs))
    assert "drift.json is not valid JSON" in page.text and "data_quality.json holds a JSON list" in page.text
    assert [image["alt"] for image in page.all("img")] == ["Precision and recall", "Top 10 permutation importances"]
    for missing in ("ROC curve: details.json has no usable challenger curve",
                    "calibration curve: details.json has no usable challenger curve",
                    "confusion matrix: evaluation.json has none"):
        assert f"Not drawn: {missing}." in page.text
    assert [cells[0] for _, cells in page.rows][1:5] == ["accuracy", "precision", "recall", "F1 score"]
    assert "ROC AUC" not in [cells[0] for _, cells in page.rows]


def test_from_json_reads_the_files_as_the_pipeline_writes_them() -> None:
    expected = fixtures.report_inputs()
    inputs = ReportInputs.from_json(
        run_key=expected.run_key, run_id=expected.run_id, dag_id=expected.dag_id, backend=expected.backend,
        decision=fixtures.as_bytes(expected.decision), evaluation=fixtures.as_bytes(expected.evaluation),
        details=fixtures.as_bytes(expected.details), drift=fixtures.as_bytes(expected.drift),
        quality=fixtures.as_bytes(expected.quality), links=expected.links)
    assert inputs == dataclasses.replace(expected, links=tuple(expected.links))
    assert render_report(inputs) == render_report(expected)


def test_the_command_line_renders_a_report_from_a_runs_files(tmp_path: Path, capsys) -> None:
    expected = fixtures.report_inputs(links=fixtures.links()[:1])
    files = {name: tmp_path / f"{name}.json" for name in ("decision", "evaluation", "details", "drift", "quality")}
    for name, path in files.items():
        path.write_text(json.dumps(getattr(expected, name)))
    output = tmp_path / "report.html"
    arguments = [f"--{name}={path}" for name, path in files.items()]
    assert main(["render", *arguments, f"--run-key={expected.run_key}", f"--run-id={expected.run_id}",
                 "--backend=sagemaker", f"--link={expected.links[0]['label']}={expected.links[0]['href']}",
                 f"--output={output}"]) == 0
    assert output.read_bytes() == render_report(expected)
    files["decision"].unlink()
    assert main(["render", *arguments, "--run-key=K", f"--output={output}"]) == 1
    assert "no gate decision at" in capsys.readouterr().err


def test_the_same_inputs_give_the_same_bytes(example: bytes) -> None:
    assert render_report(fixtures.report_inputs()) == example


def _in_business_terms(evaluation: dict, details: dict) -> tuple[dict, dict]:
    """The example's evaluation and details with what evaluation.py adds in the business's terms."""
    from churn_common import business

    labels = [1] * 552 + [0] * 1448
    ours = [0.9 - 0.8 * rank / 2000 for rank in range(2000)]  # churners scored first, mostly
    theirs = ours[::-1][:600] + ours[600:]
    figures = business.Economics()
    for block, scores, threshold in ((evaluation, ours, 0.28), (evaluation["champion"], theirs, 0.5)):
        block["ranking"] = business.ranking(labels, scores)
        block["economics"] = {"threshold": threshold, "chosen_on": "validation", "figures": figures.to_dict(),
                              "at_threshold": business.campaign(labels, scores, figures, threshold),
                              "at_default": business.campaign(labels, scores, figures, 0.5)}
    evaluation["calibration"] = {"brier": 0.1369, "ece": 0.0227, "applied": False,
                                 "reason": "out of fold, calibration did not lower the validation Brier score"}
    details["gains"] = {"challenger": business.ranking(labels, ours)["curve"],
                        "champion": business.ranking(labels, theirs)["curve"]}
    return evaluation, details


def test_the_report_says_whom_to_call_and_what_it_is_worth() -> None:
    evaluation, details = _in_business_terms(fixtures.evaluation(), fixtures.details())
    page = render(evaluation=evaluation, details=details)
    assert page.text.index("Metrics on the test customers") < page.text.index("Whom to call, and what it is worth") \
        < page.text.index("Curves, errors and what the model uses")
    top = evaluation["ranking"]["table"][1]
    assert page.row("top 10 %")[1][:5] == ["top 10 %", "200", f"{100 * top['gain']:.1f} %", f"{top['lift']:.2f}",
                                          f"{top['precision']:.3f}"]
    assert len(page.row("top 30 %")[1]) == 7  # the champion's gain and lift beside
    css, chosen = page.row("this run, at its threshold (chosen on validation)")
    ours = evaluation["economics"]["at_threshold"]
    assert css == "gate-metric" and chosen[1:] == ["0.28", f"{ours['contacted']:,}", f"{ours['profit']:,.0f}",
                                                   f"{ours['cost']:,.0f}"]
    assert page.row("this run, at 0.5")[1][1] == "0.50"
    assert page.row("champion (version 1), at its own threshold")[1][1] == "0.50"
    assert "Keeping a churner is worth 500, an offer costs 100 and keeps 100 % of the churners" in page.text
    assert ("Calibration: Brier score 0.1369, expected calibration error 0.0227; no calibrator is applied "
            "(out of fold, calibration did not lower the validation Brier score).") in page.text
    assert "Cumulative gains" in [image["alt"] for image in page.all("img")]


def test_an_evaluation_from_before_the_business_figures_says_they_are_missing(page: Page) -> None:
    assert "No ranking or campaign figures: the evaluation wrote none" in page.text
