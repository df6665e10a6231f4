"""The run report: one self-contained HTML page that a person reads in a minute.

The evaluation job computes numbers (its container has no matplotlib); this module turns them, with
the gate decision, preprocessing's data-quality counts and the run's links, into the page stored at
``runs/<run key>/report/report.html``. In the order a reader needs them: the decision and every
reason for it; the metrics beside the majority-class baseline and the champion; ROC,
precision-recall and calibration curves, the confusion matrix and the top permutation importances;
the drift table; the data-quality counts; links to the run's artefacts and jobs.

The page fetches nothing when opened: plots are inline PNG ``data:`` URIs, the style sheet is
inline, there is no script, and a Content-Security-Policy forbids every fetch but ``data:`` images,
so a mail client or an S3 console preview shows it as rendered here and tells no third party.

Rendering is a pure function of ``ReportInputs``. Every part but the decision may be missing or
malformed (an unusable evaluation is exactly when people open the report): what exists is shown and
what is missing is said, in place. matplotlib is imported only while drawing, so that importing this
module (as the DAG's import chain may) stays cheap.

    python -m churn_pipeline.report.html render --decision D.json --evaluation E.json [...] -o report.html
    python -m churn_pipeline.report.html screenshot report.html report.png
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# The pipeline's metrics in reading order; names the evaluation adds later follow, sorted.
METRIC_LABELS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1_score": "F1 score",
                 "roc_auc": "ROC AUC"}
# SageMaker's model-quality block (binary_classification_metrics) spells two of them differently.
QUALITY_BLOCK_NAMES = {"f1_score": "f1", "roc_auc": "auc"}
REASON_HEADLINES = {
    "model_rejected": "accuracy below the threshold",
    "evaluation_invalid": "the evaluation is unusable",
    "not_better_than_champion": "not better than the champion",
    "data_drift": "the data drifted",
}
DRIFT_LEVELS = ("drift", "watch", "ok")  # most severe first: the drift table's order
# The population stability index bounds of those levels, as the drift check assigns them; stated to readers.
PSI_WATCH_FROM, PSI_DRIFT_FROM = 0.1, 0.25
TOP_IMPORTANCES = 10
# A link that only opens when clicked; anything else (javascript:, data:) is shown as text.
LINK_SCHEMES = ("s3://", "https://", "http://", "file://")

CHALLENGER_COLOUR = "#1d4ed8"
CHAMPION_COLOUR = "#ea580c"
REFERENCE_COLOUR = "#9ca3af"
FIGURE_INCHES = (5.0, 3.5)  # two figures side by side in the page's 1,044 px
FIGURE_MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.13, "top": 0.91}
FIGURE_DPI = 100  # images are shown at their natural size: crisp, and no resampling by the browser
# Text in figures is data (feature names), never mathtext: a "$" in a column name must not be parsed.
# (Typed loosely: matplotlib types rc_context's keys as a Literal of every rcParam name.)
FIGURE_STYLE: dict[Any, Any] = {
    "font.size": 9.0, "axes.titlesize": 10.0, "axes.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True, "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8, "legend.frameon": False, "text.parse_math": False,
}

STYLE_SHEET = """
body { margin: 0; color: #1f2937; background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #e5e7eb; }
p { margin: 6px 0; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.meta, .note, figcaption { color: #4b5563; }
.note, figcaption { font-size: 13px; }
.missing { color: #6b7280; font-style: italic; }
.decision { margin: 14px 0 6px; padding: 12px 18px; border-left: 8px solid; border-radius: 6px; }
.decision.passed { background: #ecfdf3; border-color: #16a34a; }
.decision.failed { background: #fef2f2; border-color: #dc2626; }
.verdict { font-size: 24px; font-weight: 700; margin: 0 0 4px; }
.passed .verdict { color: #166534; }
.failed .verdict { color: #991b1b; }
.decision ul { margin: 4px 0; padding-left: 20px; }
.attention { padding: 6px 12px; background: #fef9c3; border-radius: 6px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0; }
th, td { padding: 4px 12px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
th { font-size: 13px; color: #374151; background: #f9fafb; }
.num { text-align: right; }
tr.gate-metric td { font-weight: 600; }
.better { color: #166534; }
.worse { color: #991b1b; }
.sd { color: #6b7280; font-size: 12px; }
tr.level-drift td { background: #fee2e2; }
tr.level-drift td.level { color: #991b1b; font-weight: 700; }
tr.level-watch td { background: #fefce8; }
tr.level-watch td.level { color: #854d0e; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 18px 24px; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { max-width: 500px; }
ul.links { padding-left: 20px; }
"""


@dataclass(frozen=True)
class ReportInputs:
    """Everything one run's report shows, as the plain JSON values the pipeline wrote.

    ``decision`` is the gate decision (``GateDecision`` with the champion and drift rules' fields);
    ``evaluation``, ``details`` and ``drift`` come from the evaluation job, ``quality`` from
    preprocessing. ``details`` is None when the job wrote no curves, ``drift`` when the drift check
    is off or has no file, ``quality`` when preprocessing's summary is not there. ``notes`` say what
    could not be read; the report shows them rather than failing.
    """

    run_key: str
    run_id: str
    dag_id: str
    backend: str
    decision: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    details: Mapping[str, Any] | None
    drift: Mapping[str, Any] | None
    quality: Mapping[str, Any] | None
    links: Sequence[Mapping[str, str]] = ()
    notes: Sequence[str] = ()

    @classmethod
    def from_json(cls, *, run_key: str, run_id: str, dag_id: str, backend: str,
                  decision: Mapping[str, Any] | bytes, evaluation: bytes | None, details: bytes | None = None,
                  drift: bytes | None = None, quality: bytes | None = None,
                  links: Sequence[Mapping[str, str]] = ()) -> ReportInputs:
        """Build the inputs from the files' bytes (None: the file does not exist).

        A file that is not a JSON object is read as absent and named in ``notes``: a report with a
        hole that says so is more use than no report, and the gate has already judged the run.
        """
        notes: list[str] = []
        decision_object = decision if isinstance(decision, Mapping) else _json_object("the gate decision", decision,
                                                                                      notes)
        evaluation_object = _json_object("evaluation.json", evaluation, notes)
        if evaluation is None:
            notes.append("evaluation.json was not found")
        return cls(run_key=run_key, run_id=run_id, dag_id=dag_id, backend=backend,
                   decision=decision_object or {}, evaluation=evaluation_object or {},
                   details=_json_object("details.json", details, notes),
                   drift=_json_object("drift.json", drift, notes),
                   quality=_json_object("data_quality.json", quality, notes),
                   links=tuple(links), notes=tuple(notes))


def _json_object(name: str, raw: bytes | None, notes: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        notes.append(f"{name} is not valid JSON ({error})")
        return None
    if not isinstance(value, dict):
        notes.append(f"{name} holds a JSON {type(value).__name__}, not an object")
        return None
    return value


def render_report(inputs: ReportInputs) -> bytes:
    """One self-contained HTML document (UTF-8): the same inputs give the same bytes."""
    decision = _mapping(inputs.decision)
    title = f"Run {inputs.run_key}: {_verdict(decision)}"
    sections = [
        _header(inputs, decision),
        _metrics_section(inputs.evaluation, decision),
        _plots_section(_mapping(inputs.evaluation), inputs.details),
        _drift_section(inputs.drift, decision),
        _quality_section(inputs.quality),
        _links_section(inputs.links),
    ]
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_e(CONTENT_SECURITY_POLICY)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{STYLE_SHEET}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )
    return document.encode("utf-8")


# --- values: read defensively, shown escaped --------------------------------------------------------

def _e(value: Any) -> str:
    """Text for HTML (element content and quoted attributes alike)."""
    return html.escape(str(value), quote=True)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects in a list; anything else in it, or a value that is no list, gives nothing."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _fixed(value: Any, digits: int = 4) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.{digits}f}"


def _signed(value: Any, digits: int = 4) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:+.{digits}f}"


def _count(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:,.0f}"


def _share(part: Any, whole: Any) -> str:
    part_number, whole_number = _number(part), _number(whole)
    if part_number is None or not whole_number:
        return ""
    return f" ({100 * part_number / whole_number:.1f} %)"


def _missing(text: str) -> str:
    return f"<p class=\"missing\">{_e(text)}</p>"


def _table(header: Sequence[tuple[str, str]], rows: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """A table from (css class, escaped html) cells; each row carries its own css class."""
    head = "".join(f"<th class=\"{css}\">{cell}</th>" if css else f"<th>{cell}</th>" for css, cell in header)
    body = []
    for row_class, cells in rows:
        opening = f"<tr class=\"{row_class}\">" if row_class else "<tr>"
        body.append(opening + "".join(f"<td class=\"{css}\">{cell}</td>" if css else f"<td>{cell}</td>"
                                      for css, cell in cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


# --- 1. header and decision -------------------------------------------------------------------------

def _reasons(decision: Mapping[str, Any]) -> list[str]:
    reasons = decision.get("reasons")
    if isinstance(reasons, (list, tuple)) and reasons:
        return [str(reason) for reason in reasons]
    reason = decision.get("reason")
    return [str(reason)] if reason and reason != "passed" else []


def _verdict(decision: Mapping[str, Any]) -> str:
    if decision.get("passed") is True:
        return "passed, registered for approval"
    reasons = _reasons(decision)
    if not reasons:
        return "not registered"
    return "not registered: " + "; ".join(REASON_HEADLINES.get(reason, reason) for reason in reasons)


def _header(inputs: ReportInputs, decision: Mapping[str, Any]) -> str:
    passed = decision.get("passed") is True
    sentences = decision.get("details")
    if not isinstance(sentences, (list, tuple)) or not sentences:
        sentences = [decision["detail"]] if decision.get("detail") else []
    items = "".join(f"<li>{_e(sentence)}</li>" for sentence in sentences)
    reasons_list = f"<ul>{items}</ul>" if items else _missing("The decision gives no reason.")
    verdict = _verdict(decision)
    parts = [
        "<header>",
        f"<p class=\"meta\">{_e(inputs.dag_id)} · run report</p>",
        f"<h1>Run {_e(inputs.run_key)}</h1>",
        f"<p class=\"meta\">run id <code>{_e(inputs.run_id)}</code> · backend {_e(inputs.backend)}</p>",
        "</header>",
        f"<section class=\"decision {'passed' if passed else 'failed'}\" id=\"decision\">",
        f"<p class=\"verdict\">{_e(verdict[:1].upper() + verdict[1:])}</p>",
        reasons_list,
        f"<p class=\"note\">{_e(_rules(decision))}</p>",
        "</section>",
    ]
    attention = _drift_attention(inputs.drift, decision)
    if attention:
        parts.append(f"<p class=\"attention\">{_e(attention)} <a href=\"#drift\">Drift table</a></p>")
    if inputs.notes:
        parts.append("<p class=\"attention\">Could not read: " + "; ".join(_e(note) for note in inputs.notes)
                     + ".</p>")
    return "\n".join(parts)


def _rules(decision: Mapping[str, Any]) -> str:
    """The rules this decision applied, in one line: what a reader needs to weigh the reasons."""
    rules = [f"accuracy threshold {_fixed(decision.get('threshold'))}"]
    comparison = decision.get("compare_with_champion")
    if comparison == "off":
        rules.append("champion comparison off")
    elif comparison:
        rules.append(f"champion comparison {comparison}: {decision.get('champion_metric', '?')} at least the "
                     f"champion's + {_fixed(decision.get('min_improvement'))}")
    if decision.get("drift_mode"):
        rules.append(f"drift mode {decision['drift_mode']}")
    return "Rules: " + "; ".join(rules) + "."


def _drift_attention(drift: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> str:
    """A line under the decision when features drifted, so a passed run's drift is not missed."""
    if drift is None or drift.get("status") != "compared":
        return ""
    drifted, watched = (_level_count(drift, level) for level in ("drift", "watch"))
    if not drifted and not watched:
        return ""
    counts = f"{drifted:.0f} feature(s) drifted, {watched:.0f} to watch"
    if decision.get("drift_mode") == "warn":
        return f"Data drift: {counts} (drift mode warn: reported, not blocking)."
    return f"Data drift: {counts}."


def _level_count(drift: Mapping[str, Any], level: str) -> float:
    """How many features are at ``level``: the summary's count, else counted from the features."""
    counted = _number(_mapping(drift.get("summary")).get(level))
    if counted is not None:
        return counted
    return float(sum(1 for item in _objects(drift.get("features")) if item.get("level") == level))


# --- 2. metrics -------------------------------------------------------------------------------------

def _metric_names(metrics: Mapping[str, Any]) -> list[str]:
    known = [name for name in METRIC_LABELS if _number(metrics.get(name)) is not None]
    others = sorted(name for name, value in metrics.items() if name not in METRIC_LABELS and _number(value) is not None)
    return known + others


def _metrics_section(evaluation: Mapping[str, Any], decision: Mapping[str, Any]) -> str:
    evaluation = _mapping(evaluation)
    parts = ["<h2 id=\"metrics\">Metrics on the test customers</h2>"]
    metrics = _mapping(evaluation.get("metrics")) or _mapping(decision.get("metrics"))
    names = _metric_names(metrics)
    champion = evaluation.get("champion")
    champion = champion if isinstance(champion, Mapping) else None
    comparable = champion is not None and champion.get("comparable") is True
    if not names:
        parts.append(_missing("No metrics: the evaluation wrote none that can be read (see the decision above)."))
    else:
        parts.append(_metrics_table(names, metrics, evaluation, decision, champion if comparable else None))
        rows = _mapping(evaluation.get("rows"))
        test, positive = rows.get("test"), rows.get("positive")
        sentences = []
        if _number(test) is not None:
            sentences.append(f"On {_count(test)} test customers, {_count(positive)} of whom churned"
                             f"{_share(positive, test)}.")
        if evaluation.get("binary_classification_metrics"):
            sentences.append("± is the bootstrap standard deviation.")
        if sentences:
            parts.append(f"<p class=\"note\">{' '.join(sentences)}</p>")
    parts.append(_champion_line(champion, evaluation))
    return "\n".join(parts)


def _metrics_table(names: Sequence[str], metrics: Mapping[str, Any], evaluation: Mapping[str, Any],
                   decision: Mapping[str, Any], champion: Mapping[str, Any] | None) -> str:
    quality = _mapping(evaluation.get("binary_classification_metrics"))
    baseline = _mapping(evaluation.get("baseline")).get("majority_class_accuracy")
    header = [("", "metric"), ("num", "this run"), ("num", "majority-class baseline")]
    if champion is not None:
        version = champion.get("version")
        header += [("num", _e(f"champion (version {version})" if version is not None else "champion")),
                   ("num", "change")]
    champion_metrics = _mapping(champion.get("metrics")) if champion is not None else {}
    deltas = _mapping(champion.get("delta")) if champion is not None else {}
    gate_metric = decision.get("champion_metric")
    rows = []
    for name in names:
        deviation = _number(_mapping(quality.get(QUALITY_BLOCK_NAMES.get(name, name))).get("standard_deviation"))
        value = _fixed(metrics[name]) + (f" <span class=\"sd\">± {deviation:.4f}</span>" if deviation is not None
                                         else "")
        label = _e(METRIC_LABELS.get(name, name)) + (" <span class=\"sd\">(gate)</span>" if name == gate_metric else "")
        cells = [("", label), ("num", value), ("num", _fixed(baseline) if name == "accuracy" else "–")]
        if champion is not None:
            delta = _number(deltas.get(name))
            if delta is None and _number(champion_metrics.get(name)) is not None:
                delta = float(metrics[name]) - float(champion_metrics[name])
            css = "num" if not delta else f"num {'better' if delta > 0 else 'worse'}"
            cells += [("num", _fixed(champion_metrics.get(name))), (css, _signed(delta))]
        rows.append(("gate-metric" if name == gate_metric else "", cells))
    return _table(header, rows)


def _champion_line(champion: Mapping[str, Any] | None, evaluation: Mapping[str, Any]) -> str:
    if champion is None:
        if not evaluation:
            return _missing("Champion: unknown (no evaluation.json).")
        return "<p>No champion: no approved version to compare with.</p>"
    identifier = champion.get("identifier")
    named = f" <code>{_e(identifier)}</code>" if identifier else ""
    if champion.get("comparable") is True:
        return f"<p>Champion:{named}, scored on the same test customers.</p>"
    reason = champion.get("reason") or "no reason given"
    return f"<p class=\"attention\">Champion not comparable: {_e(reason)}.{(' Champion:' + named) if named else ''}</p>"


# --- 3. plots ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plot:
    """One figure to draw: what it shows, and the drawing on a matplotlib Axes."""

    title: str
    caption: str
    draw: Callable[[Any], None]


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, list):
        return None
    numbers = [_number(item) for item in value]
    return [number for number in numbers if number is not None] if None not in numbers else None


def _curve(block: Any, x_name: str, y_name: str) -> tuple[list[float], list[float]] | None:
    """Two equally long lists of finite numbers under the block's keys, or None."""
    x, y = _numbers(_mapping(block).get(x_name)), _numbers(_mapping(block).get(y_name))
    if x is None or y is None or len(x) != len(y) or len(x) < 2:
        return None
    return x, y


def _labelled(name: str, block: Any, score_name: str, score_label: str) -> str:
    score = _number(_mapping(block).get(score_name))
    return name if score is None else f"{name} ({score_label} {score:.3f})"


def _compared_curves(details: Mapping[str, Any], section: str, x_name: str, y_name: str) -> tuple[
        tuple[list[float], list[float]] | None, tuple[list[float], list[float]] | None]:
    block = _mapping(details.get(section))
    return _curve(block.get("challenger"), x_name, y_name), _curve(block.get("champion"), x_name, y_name)


def _roc_plot(details: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "roc", "fpr", "tpr")
    if challenger is None:
        return "ROC curve: details.json has no usable challenger curve"
    blocks = _mapping(details.get("roc"))

    def draw(axes: Any) -> None:
        axes.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label="chance")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6,
                      label=_labelled("champion", blocks.get("champion"), "auc", "AUC"))
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2,
                  label=_labelled("this run", blocks.get("challenger"), "auc", "AUC"))
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
        axes.legend(loc="lower right")

    return _Plot("ROC curve", "Higher and further left is better: churners found for each false alarm.", draw)


def _precision_recall_plot(details: Mapping[str, Any], evaluation: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "precision_recall", "recall", "precision")
    if challenger is None:
        return "precision-recall curve: details.json has no usable challenger curve"
    blocks = _mapping(details.get("precision_recall"))
    rows = _mapping(evaluation.get("rows"))
    positives, total = _number(rows.get("positive")), _number(rows.get("test"))
    churn_rate = positives / total if positives is not None and total else None

    def draw(axes: Any) -> None:
        if churn_rate is not None:
            axes.axhline(churn_rate, color=REFERENCE_COLOUR, linestyle=":", linewidth=1,
                         label=f"share of churners ({churn_rate:.2f})")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6,
                      label=_labelled("champion", blocks.get("champion"), "average_precision", "AP"))
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2,
                  label=_labelled("this run", blocks.get("challenger"), "average_precision", "AP"))
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (share of churners found)",
                 ylabel="precision (flagged who churn)")
        axes.legend(loc="lower left")

    return _Plot("Precision and recall", "Of the customers flagged, how many churn, for each share of churners found.",
                 draw)


def _calibration_plot(details: Mapping[str, Any]) -> _Plot | str:
    challenger, champion = _compared_curves(details, "calibration", "mean_predicted", "fraction_positive")
    if challenger is None:
        return "calibration curve: details.json has no usable challenger curve"

    def draw(axes: Any) -> None:
        axes.plot([0, 1], [0, 1], color=REFERENCE_COLOUR, linestyle=":", linewidth=1, label="perfectly calibrated")
        if champion is not None:
            axes.plot(*champion, color=CHAMPION_COLOUR, linestyle="--", linewidth=1.6, marker="s", markersize=3.5,
                      label="champion")
        axes.plot(*challenger, color=CHALLENGER_COLOUR, linewidth=2, marker="o", markersize=4, label="this run")
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="predicted churn probability (bin mean)",
                 ylabel="observed share who churned")
        axes.legend(loc="upper left")

    return _Plot("Calibration", "Predicted probability against what happened, by score bin: the diagonal is "
                 "a probability that can be taken at its word.", draw)


def _confusion_plot(evaluation: Mapping[str, Any]) -> _Plot | str:
    matrix = _mapping(evaluation.get("confusion_matrix"))
    names = ("true_negatives", "false_positives", "false_negatives", "true_positives")
    counts = [_number(matrix.get(name)) for name in names]
    if any(count is None for count in counts):
        return "confusion matrix: evaluation.json has none"
    tn, fp, fn, tp = (count or 0.0 for count in counts)
    total = tn + fp + fn + tp or 1.0

    def draw(axes: Any) -> None:
        grid = [[tn, fp], [fn, tp]]
        axes.imshow(grid, cmap="Blues", vmin=0, vmax=max(tn, fp, fn, tp) or 1)
        for row in range(2):
            for column in range(2):
                value = grid[row][column]
                dark = value > 0.55 * max(tn, fp, fn, tp)
                axes.text(column, row, f"{value:,.0f}\n{100 * value / total:.1f} %", ha="center", va="center",
                          fontsize=11, color="white" if dark else "#111827")
        axes.set_xticks([0, 1], ["stays", "churns"])
        axes.set_yticks([0, 1], ["stayed", "churned"])
        axes.set(xlabel="predicted", ylabel="actual")
        axes.grid(False)
        for spine in axes.spines.values():
            spine.set_visible(False)

    return _Plot("Confusion matrix", "Test customers by what happened (rows) and what this run predicted (columns).",
                 draw)


def _importance_plot(details: Mapping[str, Any]) -> _Plot | str:
    block = _mapping(details.get("permutation_importance"))
    features = _objects(block.get("features"))
    ranked = [(str(item.get("name")), mean, _number(item.get("std")) or 0.0)
              for item in features if (mean := _number(item.get("mean"))) is not None]
    if not ranked:
        return "permutation importances: details.json has none"
    top = sorted(ranked, key=lambda item: -item[1])[:TOP_IMPORTANCES]
    metric = str(block.get("metric") or "the score")
    shown = f"the {len(top)} largest of {len(ranked)}" if len(top) < len(ranked) else f"all {len(top)} columns"
    caption = (f"Drop in {metric} when one input column is shuffled; {shown}"
               + (f", mean of {_count(block['repeats'])} repeats" if _number(block.get("repeats")) else "")
               + (f" on {_count(block['rows'])} test rows" if _number(block.get("rows")) else "")
               + "; whiskers: one standard deviation.")

    def draw(axes: Any) -> None:
        labels = [name if len(name) <= 28 else name[:27] + "…" for name, _, _ in reversed(top)]
        axes.barh(range(len(top)), [mean for _, mean, _ in reversed(top)],
                  xerr=[std for _, _, std in reversed(top)], color=CHALLENGER_COLOUR, ecolor="#374151",
                  error_kw={"linewidth": 1, "capsize": 2})
        axes.set_yticks(range(len(top)), labels)
        # room on the left for the longest name (a character at 9 pt is about 1.3 % of the width)
        axes.figure.subplots_adjust(left=min(0.45, 0.05 + 0.013 * max(len(label) for label in labels)))
        axes.axvline(0, color="#374151", linewidth=0.8)
        axes.set(xlabel=f"drop in {metric}")
        axes.grid(axis="y", visible=False)

    return _Plot(f"Top {len(top)} permutation importances", caption, draw)


def _plots_section(evaluation: Mapping[str, Any], details: Mapping[str, Any] | None) -> str:
    parts = ["<h2 id=\"plots\">Curves, errors and what the model uses</h2>"]
    if details is None:
        candidates: list[_Plot | str] = [
            "ROC, precision-recall and calibration curves and permutation importances: the evaluation wrote no "
            "details.json", _confusion_plot(evaluation)]
    else:
        candidates = [_roc_plot(details), _precision_recall_plot(details, evaluation), _calibration_plot(details),
                      _confusion_plot(evaluation), _importance_plot(details)]
    plots = [item for item in candidates if isinstance(item, _Plot)]
    missing = [item for item in candidates if isinstance(item, str)]
    figures = []
    for plot, (png, width, height) in zip(plots, _draw(plots), strict=True):
        source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        figures.append(f"<figure><img src=\"{source}\" width=\"{width}\" height=\"{height}\" alt=\"{_e(plot.title)}\">"
                       f"<figcaption><strong>{_e(plot.title)}.</strong> {_e(plot.caption)}</figcaption></figure>")
    if figures:
        parts.append("<div class=\"figures\">\n" + "\n".join(figures) + "\n</div>")
    parts += [_missing(f"Not drawn: {text}.") for text in missing]
    return "\n".join(parts)


def _draw(plots: Sequence[_Plot]) -> list[tuple[bytes, int, int]]:
    """PNG bytes and pixel size of each plot, drawn off-screen with Agg (no display, no pyplot state)."""
    if not plots:
        return []
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = []
    with matplotlib.rc_context(FIGURE_STYLE):
        for plot in plots:
            figure = Figure(figsize=FIGURE_INCHES, dpi=FIGURE_DPI)
            # fixed margins: a layout engine would lay every figure out twice for the same result
            figure.subplots_adjust(**FIGURE_MARGINS)
            canvas = FigureCanvasAgg(figure)
            axes = figure.add_subplot()
            axes.set_title(plot.title, loc="left")
            plot.draw(axes)
            buffer = io.BytesIO()
            # no "Software" text chunk: the bytes depend on the numbers, not on the matplotlib build
            figure.savefig(buffer, format="png", metadata={"Software": None})
            width, height = canvas.get_width_height()
            images.append((buffer.getvalue(), width, height))
    return images


# --- 4. drift ---------------------------------------------------------------------------------------

def _drift_section(drift: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> str:
    parts = ["<h2 id=\"drift\">Did the customers' data move?</h2>"]
    if drift is None:
        if decision.get("drift_mode") == "off":
            parts.append("<p>Drift check off for this run (drift mode off).</p>")
        else:
            parts.append(_missing("No drift report for this run (no drift.json)."))
        return "\n".join(parts)
    status = drift.get("status")
    if status == "no_baseline":
        parts.append("<p>No baseline yet (first run): there is no registered model's data profile to compare this "
                     "run's customers with. This run's profile becomes the baseline of the runs after it.</p>")
        return "\n".join(parts)
    if status != "compared":
        parts.append(_missing(f"The drift report has an unknown status ({status!r}); nothing to show."))
        return "\n".join(parts)
    parts.append(_drift_summary(drift))
    features = _objects(drift.get("features"))
    if features:
        parts.append(_drift_table(features))
    else:
        parts.append(_missing("The drift report lists no feature."))
    for key, text in (("missing_columns", "In the baseline, absent now"),
                      ("extra_columns", "New, not in the baseline")):
        columns = drift.get(key)
        if isinstance(columns, list) and columns:
            parts.append(f"<p class=\"attention\">{text}: " + ", ".join(f"<code>{_e(c)}</code>" for c in columns)
                         + "</p>")
    violations = _objects(drift.get("violations"))
    if violations:
        items = "".join(f"<li><code>{_e(item.get('feature_name', '?'))}</code> "
                        f"({_e(item.get('constraint_check_type', '?'))}): {_e(item.get('description', ''))}</li>"
                        for item in violations)
        parts.append("<p class=\"note\">Constraint violations (Model Monitor's format):</p>"
                     f"<ul class=\"note\">{items}</ul>")
    return "\n".join(parts)


def _drift_summary(drift: Mapping[str, Any]) -> str:
    baseline, current = _mapping(drift.get("baseline")), _mapping(drift.get("current"))
    counts = ", ".join(f"{_count(_level_count(drift, level))} {level}" for level in DRIFT_LEVELS)
    against = ""
    if baseline.get("identifier"):
        against = f" against the profile of <code>{_e(baseline['identifier'])}</code>"
    rows = f" on {_count(current['rows'])} rows" if _number(current.get("rows")) else ""
    source = f" ({_e(current['source'])})" if current.get("source") else ""
    return (f"<p>Population stability index per feature{against}{rows}{source}: {counts}. "
            f"Levels: ok below {PSI_WATCH_FROM}, watch from {PSI_WATCH_FROM}, drift from {PSI_DRIFT_FROM}.</p>")


def _drift_table(features: Sequence[Mapping[str, Any]]) -> str:
    def severity(item: Mapping[str, Any]) -> tuple[int, float, str]:
        level = item.get("level")
        rank = DRIFT_LEVELS.index(level) if level in DRIFT_LEVELS else len(DRIFT_LEVELS)
        return rank, -(_number(item.get("psi")) or 0.0), str(item.get("name"))

    header = [("", "feature"), ("", "type"), ("num", "PSI"), ("", "level"), ("num", "complete (baseline → now)"),
              ("num", "change"), ("num", "unseen categories")]
    rows = []
    for item in sorted(features, key=severity):
        level = str(item.get("level", "?"))
        completeness = _mapping(item.get("completeness"))
        unseen = _number(item.get("unseen_share"))
        cells = [
            ("", f"<code>{_e(item.get('name', '?'))}</code>"), ("", _e(item.get("type", "?"))),
            ("num", _fixed(item.get("psi"))), ("level", _e(level)),
            ("num", f"{_fixed(completeness.get('baseline'), 3)} → {_fixed(completeness.get('current'), 3)}"),
            ("num", _signed(completeness.get("change"), 3)),
            ("num", f"{100 * unseen:.1f} %" if unseen is not None else "–"),
        ]
        rows.append((f"level-{_e(level)}" if level in ("drift", "watch") else "", cells))
    return _table(header, rows)


# --- 5. data quality --------------------------------------------------------------------------------

def _quality_section(quality: Mapping[str, Any] | None) -> str:
    parts = ["<h2 id=\"quality\">Data quality (preprocessing)</h2>"]
    if quality is None:
        parts.append(_missing("No data-quality summary for this run (no data_quality.json)."))
        return "\n".join(parts)
    read = quality.get("rows_read")
    rows: list[tuple[str, str]] = [
        ("rows read", _count(read)),
        ("rows without a target (dropped)", _count(quality.get("rows_without_target"))),
        ("duplicate rows (dropped)", _count(quality.get("duplicate_rows"))),
        ("duplicate customer ids (dropped)", _count(quality.get("duplicate_ids"))),
        ("rows used", _count(quality.get("rows_used")) + _share(quality.get("rows_used"), read)),
    ]
    classes = _mapping(quality.get("class_counts"))
    class_total = sum(_number(value) or 0.0 for value in classes.values())
    if classes:
        rows.append(("classes", " · ".join(f"{_e(label)} {_count(count)}{_share(count, class_total)}"
                                            for label, count in classes.items())))
    splits = _mapping(quality.get("splits"))
    if splits:
        rows.append(("splits", " · ".join(
            f"{_e(name)} {_count(_mapping(split).get('rows'))} ({_count(_mapping(split).get('positive'))} churned)"
            for name, split in splits.items())))
    missing = _mapping(quality.get("missing_values"))
    gaps = sorted(((str(name), count) for name, count in missing.items() if (_number(count) or 0) > 0),
                  key=lambda item: (-(_number(item[1]) or 0.0), item[0]))
    if missing:
        rows.append(("missing values", " · ".join(f"<code>{_e(name)}</code> {_count(count)}" for name, count in gaps)
                     if gaps else "none"))
    features = _mapping(quality.get("features"))
    if isinstance(features.get("input"), list):
        rows.append(("features", f"{len(features['input'])} input columns"
                     + (f", {_count(features.get('encoded'))} after encoding" if _number(features.get("encoded"))
                        else "")))
    files = quality.get("files")
    if isinstance(files, list) and files:
        rows.append(("files", ", ".join(f"<code>{_e(name)}</code>" for name in files)))
    ignored = quality.get("ignored_columns")
    if isinstance(ignored, list) and ignored:
        rows.append(("columns ignored (not in the schema)", ", ".join(f"<code>{_e(name)}</code>" for name in ignored)))
    parts.append(_table([("", "what"), ("", "found")], [("", [("", label), ("", value)]) for label, value in rows]))
    return "\n".join(parts)


# --- 6. links ---------------------------------------------------------------------------------------

def _safe_href(href: str) -> str | None:
    """The link target if it is one a reader may click, else None. Local paths become file: URIs."""
    target = href.strip()
    # "//host/x" is not a path but a link to another host (a UNC share, even, on Windows)
    if target.startswith("/") and not target.startswith("//"):
        return PurePosixPath(target).as_uri()
    return target if target.lower().startswith(LINK_SCHEMES) else None


def _links_section(links: Sequence[Mapping[str, str]]) -> str:
    parts = ["<h2 id=\"links\">Artefacts and jobs</h2>"]
    items = []
    for link in links:
        if not isinstance(link, Mapping) or not link.get("href"):
            continue
        href = str(link["href"])
        label = _e(link.get("label") or href)
        target = _safe_href(href)
        # an s3:// URI or a path is worth reading and copying; a console URL is not
        shown = "" if target is not None and target.startswith("https://") else f" <code>{_e(href)}</code>"
        items.append(f"<li><a href=\"{_e(target)}\">{label}</a>{shown}</li>" if target is not None
                     else f"<li>{label}{shown}</li>")
    parts.append(f"<ul class=\"links\">{''.join(items)}</ul>" if items else _missing("No links were recorded."))
    return "\n".join(parts)


# --- command line -----------------------------------------------------------------------------------

def _read_optional(path: Path | None) -> bytes | None:
    return None if path is None or not path.is_file() else path.read_bytes()


def _link(text: str) -> dict[str, str]:
    label, separator, href = text.partition("=")
    if not separator or not label or not href:
        raise argparse.ArgumentTypeError(f"expected LABEL=HREF, got {text!r}")
    return {"label": label, "href": href}


def _render(args: argparse.Namespace) -> str:
    if not args.decision.is_file():
        raise FileNotFoundError(f"no gate decision at {args.decision}")
    inputs = ReportInputs.from_json(
        run_key=args.run_key, run_id=args.run_id, dag_id=args.dag_id, backend=args.backend,
        decision=args.decision.read_bytes(), evaluation=_read_optional(args.evaluation),
        details=_read_optional(args.details), drift=_read_optional(args.drift), quality=_read_optional(args.quality),
        links=args.link)
    args.output.write_bytes(render_report(inputs))
    return f"{args.output}" + "".join(f"\n  note: {note}" for note in inputs.notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.report.html", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render a report from a run's JSON files")
    render.add_argument("--decision", type=Path, required=True, help="the gate decision (GateDecision) as JSON")
    render.add_argument("--evaluation", type=Path, required=True, help="evaluation.json (may be absent)")
    for name in ("details", "drift", "quality"):
        render.add_argument(f"--{name}", type=Path)
    render.add_argument("--run-key", required=True)
    render.add_argument("--run-id", default="")
    render.add_argument("--dag-id", default="customer_churn_pipeline")
    render.add_argument("--backend", default="local")
    render.add_argument("--link", type=_link, action="append", default=[], metavar="LABEL=HREF")
    render.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(_render(args))
    except OSError as error:  # a missing file
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
